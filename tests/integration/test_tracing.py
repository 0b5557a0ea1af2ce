"""OpenTelemetry tracing of `ferry serve` (--trace-endpoint) into a real OpenTelemetry
Collector (tools/otelcol, built from the Go module proxy by scripts/setup.sh): spans
named as Triton's, joined to the caller's W3C traceparent over REST and gRPC, sampled by
the caller's flag, errors marked."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

import ferry_helpers as fh
from monitoring_helpers import Collector, attributes


@pytest.fixture
def traced(ferry_binary, model_repo, tmp_path):
    collector = Collector(tmp_path).start()
    server = None
    try:
        # Rate 0: only callers that sample are traced, so every span here is accounted for.
        server = fh.FerryServer(ferry_binary, [model_repo], [
            "--trace-endpoint", collector.traces_url, "--trace-sample-rate", "0"], tmp_path / "ferry.log").start()
        yield server, collector
    finally:
        if server is not None and server.is_running():
            server.stop_and_check()
        collector.stop()


def traceparent(sampled: bool = True) -> tuple[str, str, str]:
    trace_id, parent = os.urandom(16).hex(), os.urandom(8).hex()
    return f"00-{trace_id}-{parent}-{'01' if sampled else '00'}", trace_id, parent


MLP = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [2, 4], "data": [0.1, 0.2, 0.3, 0.4] * 2}]}


def grpc_infer(url: str, header: str) -> None:
    """One mlp_classifier inference over gRPC (tritonclient) carrying `header` as traceparent."""
    c = grpcclient.InferenceServerClient(url)
    try:
        inp = grpcclient.InferInput("input", [1, 4], "FP32")
        inp.set_data_from_numpy(np.array([[0.1, 0.2, 0.3, 0.4]], np.float32))
        c.infer("mlp_classifier", [inp], headers={"traceparent": header})
    finally:
        c.close()


def test_rest_request_spans_join_the_callers_trace(traced):
    server, collector = traced
    header, trace_id, parent = traceparent()
    resp = server.post("/v2/models/mlp_classifier/infer", json=dict(MLP, id="req-7"), headers={"traceparent": header})
    assert resp.status_code == 200, resp.text
    spans = collector.wait_for_spans(lambda s: s["traceId"] == trace_id and s["name"] == "InferRequest")
    by_name = {s["name"]: s for s in collector.spans() if s["traceId"] == trace_id}
    assert set(by_name) == {"InferRequest", "mlp_classifier", "queue", "compute"}, sorted(by_name)
    req, model, queue, compute = (by_name[n] for n in ("InferRequest", "mlp_classifier", "queue", "compute"))
    assert req["parentSpanId"] == parent and req["kind"] == 2  # SERVER, under the caller's span
    assert model["parentSpanId"] == req["spanId"]
    assert queue["parentSpanId"] == model["spanId"] and compute["parentSpanId"] == model["spanId"]
    a = attributes(req["attributes"])
    assert a["ferry.model_name"] == "mlp_classifier" and a["ferry.model_version"] == "1"
    assert a["ferry.request_id"] == "req-7" and a["ferry.protocol"] == "http" and a["ferry.batch_size"] == "2"
    assert [e["name"] for e in compute["events"]] == ["COMPUTE_INPUT_END", "COMPUTE_OUTPUT_START"]
    start, end = int(req["startTimeUnixNano"]), int(req["endTimeUnixNano"])
    for s in (model, queue, compute):  # children lie inside the request
        assert start <= int(s["startTimeUnixNano"]) <= int(s["endTimeUnixNano"]) <= end, s["name"]
    assert int(queue["endTimeUnixNano"]) <= int(compute["startTimeUnixNano"])
    assert spans[0]["_resource"]["service.name"] == "ferry"
    assert req.get("status", {}).get("code", 0) == 0


def test_unsampled_callers_and_bad_requests(traced):
    server, collector = traced
    quiet, quiet_id, _ = traceparent(sampled=False)
    assert server.post("/v2/models/mlp_classifier/infer", json=MLP, headers={"traceparent": quiet}).status_code == 200
    assert server.post("/v2/models/mlp_classifier/infer", json=MLP).status_code == 200  # no context, rate 0
    garbled = server.post("/v2/models/mlp_classifier/infer", json=MLP, headers={"traceparent": "00-zz-yy-01"})
    assert garbled.status_code == 200  # a malformed traceparent is ignored, never an error
    header, trace_id, _ = traceparent()
    bad = dict(MLP, inputs=[dict(MLP["inputs"][0], shape=[2, 3], data=[0.1] * 6)])
    resp = server.post("/v2/models/mlp_classifier/infer", json=bad, headers={"traceparent": header})
    assert resp.status_code == 400
    [req] = collector.wait_for_spans(lambda s: s["traceId"] == trace_id)
    assert req["name"] == "InferRequest"
    assert req["status"]["code"] == 2 and "does not match" in req["status"]["message"], req["status"]
    assert not [s for s in collector.spans() if s["traceId"] == quiet_id]
    # Everything exported so far is the one failed request's span: nothing else was sampled.
    metrics = fh.http_request("GET", f"http://{server.metrics_url}/metrics").text
    assert 'ferry_trace_spans_total{result="exported"} 1' in metrics, [
        line for line in metrics.splitlines() if "trace_spans" in line]


def test_grpc_metadata_traceparent(traced):
    server, collector = traced
    header, trace_id, parent = traceparent()
    grpc_infer(f"127.0.0.1:{server.grpc_port}", header)
    collector.wait_for_spans(lambda s: s["traceId"] == trace_id and s["name"] == "compute")
    [req] = [s for s in collector.spans() if s["traceId"] == trace_id and s["name"] == "InferRequest"]
    assert req["parentSpanId"] == parent
    assert attributes(req["attributes"])["ferry.protocol"] == "grpc"


def test_an_unreachable_receiver_costs_spans_not_requests(ferry_binary, model_repo, tmp_path):
    """Nothing listens at the endpoint: every request is still answered, and the spans
    that could not be delivered (after the exporter's retries) are counted as failed."""
    closed, = fh.free_ports(1)
    server = fh.FerryServer(ferry_binary, [model_repo], [
        "--trace-endpoint", f"http://127.0.0.1:{closed}/v1/traces", "--trace-sample-rate", "1"],
        tmp_path / "ferry.log").start()
    try:
        for _ in range(20):
            assert server.post("/v2/models/mlp_classifier/infer", json=MLP).status_code == 200
        metrics = lambda: fh.http_request("GET", f"http://{server.metrics_url}/metrics").text
        # 20 requests x 4 spans, exported in batches at least once a second, 3 retries with
        # back-off (0.2 + 0.4 + 0.8 s) before a batch counts as failed.
        fh.wait_until(lambda: 'ferry_trace_spans_total{result="failed"} 80' in metrics(), 30,
                      "the 80 spans to be counted as failed",
                      on_timeout=lambda: "\n".join(line for line in metrics().splitlines() if "trace_spans" in line))
        assert 'ferry_trace_spans_total{result="exported"} 0' in metrics()
        assert server.post("/v2/models/mlp_classifier/infer", json=MLP).status_code == 200
    finally:
        server.stop_and_check()


# ---- through `ferry engine`: the gateway's spans between the caller's and the replica's


@pytest.fixture
def traced_engine(ferry_binary, model_repo, tmp_path):
    from engine_helpers import FerryEngine, write_spec

    collector = Collector(tmp_path).start()
    engine = None
    try:
        # The replica samples everything that reaches it without a traceparent (rate 1), so
        # a request the gateway did not sample shows up unless the gateway says "not sampled".
        spec = write_spec(tmp_path / "spec.yaml", f"""\
deployments:
- name: classifier
  revisions:
  - name: v1
    models: [{model_repo / 'mlp_classifier'}]
    serve: {{http-threads: 1, intra-op-threads: 1, trace-sample-rate: 1}}
""")
        engine = FerryEngine(ferry_binary, tmp_path / "state", spec, tmp_path / "engine.log", extra_args=[
            "--trace-endpoint", collector.traces_url, "--trace-sample-rate", "0"]).start(wait="live")
        engine.wait_ready_replicas("classifier", 1)
        yield engine, collector
    finally:
        if engine is not None and engine.is_running():
            engine.stop_and_check(timeout=40)
        collector.stop()


def _one_trace(collector, trace_id: str) -> dict[str, dict]:
    """The trace's spans by name, once the replica's compute span and the gateway's own are in."""
    collector.wait_for_spans(lambda s: s["traceId"] == trace_id and s["name"] == "compute")
    collector.wait_for_spans(lambda s: s["traceId"] == trace_id and s["name"] == "GatewayRequest")
    spans = [s for s in collector.spans() if s["traceId"] == trace_id]
    names = sorted(s["name"] for s in spans)
    assert names == sorted(["GatewayRequest", "upstream", "InferRequest", "mlp_classifier", "queue", "compute"]), names
    return {s["name"]: s for s in spans}


def _assert_gateway_between(by_name: dict[str, dict], parent: str, protocol: str, status_key: str, status: str):
    gateway, upstream, replica = by_name["GatewayRequest"], by_name["upstream"], by_name["InferRequest"]
    assert gateway["parentSpanId"] == parent and gateway["kind"] == 2  # SERVER, under the caller
    assert upstream["parentSpanId"] == gateway["spanId"] and upstream["kind"] == 3  # CLIENT
    assert replica["parentSpanId"] == upstream["spanId"]  # the replica's request under the try
    assert gateway["_resource"]["service.name"] == "ferry-engine"
    assert replica["_resource"]["service.name"] == "ferry"
    g = attributes(gateway["attributes"])
    assert g["ferry.deployment"] == "classifier" and g["ferry.revision"] == "v1", g
    assert g["ferry.model_name"] == "mlp_classifier" and g["ferry.protocol"] == protocol, g
    assert g[status_key] == status and g["ferry.attempts"] == "1", g
    assert attributes(upstream["attributes"])["ferry.replica"] == "classifier/v1/0"
    start, end = int(gateway["startTimeUnixNano"]), int(gateway["endTimeUnixNano"])
    assert start <= int(upstream["startTimeUnixNano"]) <= int(upstream["endTimeUnixNano"]) <= end


def test_engine_rest_gateway_span_sits_between_caller_and_replica(traced_engine):
    engine, collector = traced_engine
    header, trace_id, parent = traceparent()
    resp = engine.post("/v2/models/mlp_classifier/infer", json=MLP, headers={"traceparent": header})
    assert resp.status_code == 200, resp.text
    _assert_gateway_between(_one_trace(collector, trace_id), parent, "http", "http.response.status_code", "200")


def test_engine_grpc_gateway_span_sits_between_caller_and_replica(traced_engine):
    engine, collector = traced_engine
    header, trace_id, parent = traceparent()
    grpc_infer(engine.grpc_url, header)
    _assert_gateway_between(_one_trace(collector, trace_id), parent, "grpc", "rpc.grpc.status_code", "0")


def test_engine_unsampled_requests_are_traced_nowhere(traced_engine):
    engine, collector = traced_engine
    quiet, quiet_id, _ = traceparent(sampled=False)
    assert engine.post("/v2/models/mlp_classifier/infer", json=MLP, headers={"traceparent": quiet}).status_code == 200
    # No traceparent and the engine's rate 0: not sampled at the gateway, so not at the
    # replica either, although the replica samples everything without a context itself.
    for _ in range(5):
        assert engine.post("/v2/models/mlp_classifier/infer", json=MLP).status_code == 200
    # A sampled request afterwards proves the exporters are working; nothing else came.
    header, trace_id, _ = traceparent()
    assert engine.post("/v2/models/mlp_classifier/infer", json=MLP, headers={"traceparent": header}).status_code == 200
    _one_trace(collector, trace_id)
    others = [(s["name"], s["traceId"]) for s in collector.spans() if s["traceId"] != trace_id]
    assert others == [], others
    metrics = lambda: fh.http_request("GET", f"http://127.0.0.1:{engine.metrics_port}/metrics").text
    fh.wait_until(lambda: 'ferry_engine_trace_spans_total{result="exported"} 2' in metrics(), 10,
                  "the engine to count its 2 exported spans (GatewayRequest, upstream)",
                  on_timeout=lambda: "\n".join(line for line in metrics().splitlines() if "trace_spans" in line))
