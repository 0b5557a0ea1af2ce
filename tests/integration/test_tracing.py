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
    c = grpcclient.InferenceServerClient(f"127.0.0.1:{server.grpc_port}")
    try:
        inp = grpcclient.InferInput("input", [1, 4], "FP32")
        inp.set_data_from_numpy(np.array([[0.1, 0.2, 0.3, 0.4]], np.float32))
        c.infer("mlp_classifier", [inp], headers={"traceparent": header})
    finally:
        c.close()
    collector.wait_for_spans(lambda s: s["traceId"] == trace_id and s["name"] == "compute")
    [req] = [s for s in collector.spans() if s["traceId"] == trace_id and s["name"] == "InferRequest"]
    assert req["parentSpanId"] == parent
    assert attributes(req["attributes"])["ferry.protocol"] == "grpc"
