"""Metrics carry the protocol, and gRPC calls are counted by method and status code."""

from __future__ import annotations

import numpy as np
import pytest
import requests
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

import ferry_helpers as fh

INFER = "/inference.GRPCInferenceService/ModelInfer"


def _scrape(server):
    resp = requests.get(f"http://{server.metrics_url}/metrics", timeout=fh.HTTP_TIMEOUT_S)
    assert resp.status_code == 200
    return fh.parse_metrics(resp.text)


def _add_sub_inputs(seed):
    tensors = []
    for name, arr in fh.make_inputs("add_sub", 1, seed=seed).items():
        t = grpcclient.InferInput(name, arr.shape, "FP32")
        t.set_data_from_numpy(arr)
        tensors.append(t)
    return tensors


def test_grpc_traffic_is_counted_per_protocol_and_per_call(ferry_factory):
    server = ferry_factory.start(name="grpc-metrics")
    client = grpcclient.InferenceServerClient(fh.grpc_url(server))
    before = _scrape(server)
    sent = 4
    for i in range(sent):
        client.infer("add_sub", _add_sub_inputs(i), model_version="1")
    bad = grpcclient.InferInput("INPUT0", [1, 3], "FP32")
    bad.set_data_from_numpy(np.zeros((1, 3), np.float32))
    with pytest.raises(InferenceServerException):
        client.infer("add_sub", [bad], model_version="1")
    client.close()
    after = _scrape(server)

    def delta(name, **labels):
        return fh.metric_sum(after, name, **labels) - fh.metric_sum(before, name, **labels)

    v1 = {"model": "add_sub", "version": "1"}
    assert delta("ferry_inference_requests_total", protocol="grpc", **v1) == sent
    assert delta("ferry_inference_requests_total", protocol="http", **v1) == 0
    assert delta("ferry_inference_failures_total", protocol="grpc", **v1) == 1
    assert delta("ferry_request_duration_seconds_count", protocol="grpc", **v1) == sent
    assert delta("ferry_grpc_requests_total", method=INFER, code="OK") == sent
    assert delta("ferry_grpc_requests_total", method=INFER, code="INVALID_ARGUMENT") == 1


def test_every_service_and_unknown_methods_are_counted(ferry_factory):
    """Health, the unary inference methods, streams and methods ferry does not serve are
    each counted once with the status they finished with; unknown methods share one label
    value (the name is the client's choice) and still answer UNIMPLEMENTED."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    server = ferry_factory.start(name="grpc-metrics-all")
    client = grpcclient.InferenceServerClient(fh.grpc_url(server))
    before = _scrape(server)
    assert client.is_server_live()
    with pytest.raises(InferenceServerException):
        client.get_model_metadata("no_such_model")
    channel = grpc.insecure_channel(fh.grpc_url(server))
    health = health_pb2_grpc.HealthStub(channel)
    assert health.Check(health_pb2.HealthCheckRequest(service="")).status == health_pb2.HealthCheckResponse.SERVING
    for method in ("/inference.GRPCInferenceService/NoSuchMethod", "/no.such.Service/Call"):
        call = channel.unary_unary(method, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        with pytest.raises(grpc.RpcError) as err:
            call(b"", timeout=10)
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert method in err.value.details()
    channel.close()
    # A stream of two requests, closed by the client: one finished call.
    stream_results = []
    client.start_stream(callback=lambda result, error: stream_results.append((result, error)))
    for i in range(2):
        client.async_stream_infer("add_sub", _add_sub_inputs(i), model_version="1")
    client.stop_stream()
    client.close()
    assert len(stream_results) == 2 and all(error is None for _, error in stream_results)
    after = _scrape(server)

    def delta(**labels):
        return fh.metric_sum(after, "ferry_grpc_requests_total", **labels) - fh.metric_sum(
            before, "ferry_grpc_requests_total", **labels)

    svc = "/inference.GRPCInferenceService/"
    assert delta(method=svc + "ServerLive", code="OK") == 1
    assert delta(method=svc + "ModelMetadata", code="NOT_FOUND") == 1
    assert delta(method="/grpc.health.v1.Health/Check", code="OK") == 1
    assert delta(method="(unknown)", code="UNIMPLEMENTED") == 2
    assert delta(method=svc + "ModelStreamInfer", code="OK") == 1
    assert delta(method=svc + "NoSuchMethod") == 0
