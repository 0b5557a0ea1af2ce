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


def test_grpc_traffic_is_counted_per_protocol_and_per_call(ferry_factory):
    server = ferry_factory.start(name="grpc-metrics")
    client = grpcclient.InferenceServerClient(fh.grpc_url(server))
    before = _scrape(server)
    sent = 4
    for i in range(sent):
        inputs = fh.make_inputs("add_sub", 1, seed=i)
        tensors = []
        for name, arr in inputs.items():
            t = grpcclient.InferInput(name, arr.shape, "FP32")
            t.set_data_from_numpy(arr)
            tensors.append(t)
        client.infer("add_sub", tensors, model_version="1")
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
