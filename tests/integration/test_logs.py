"""Logs: --log-format json writes one JSON object per line (every line, start-up
included), and --log-requests adds an access line per answered request with its id,
status and the W3C trace id it belongs to, over REST and gRPC."""

from __future__ import annotations

import json
import os

import numpy as np
import tritonclient.grpc as grpcclient

import ferry_helpers as fh

MLP = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [0.1, 0.2, 0.3, 0.4]}]}


def json_lines(server: fh.FerryServer) -> list[dict]:
    out = []
    for line in server.log_path.read_text().splitlines():
        if line.startswith("$ "):  # the command line, written by the test helper
            continue
        out.append(json.loads(line))  # every line ferry writes must parse
    return out


def request_lines(server: fh.FerryServer) -> list[dict]:
    return [l for l in json_lines(server) if l.get("msg") == "request"]


def test_json_logs_carry_request_and_trace_ids(ferry_binary, model_repo, tmp_path):
    # "--log-requests=true" is the form an engine spec's serve map passes (log-requests: true).
    server = fh.FerryServer(ferry_binary, [model_repo], ["--log-format", "json", "--log-requests=true"],
                            tmp_path / "ferry.log").start()
    try:
        trace_id = os.urandom(16).hex()
        tp = f"00-{trace_id}-{os.urandom(8).hex()}-00"
        ok = server.post("/v2/models/mlp_classifier/infer", json=dict(MLP, id="req-1"), headers={"traceparent": tp})
        assert ok.status_code == 200, ok.text
        bad = dict(MLP, id="req-2", inputs=[dict(MLP["inputs"][0], datatype="INT64", data=[1, 2, 3, 4])])
        assert server.post("/v2/models/mlp_classifier/infer", json=bad).status_code == 400

        client = grpcclient.InferenceServerClient(url=f"127.0.0.1:{server.grpc_port}")
        inp = grpcclient.InferInput("input", [1, 4], "FP32")
        inp.set_data_from_numpy(np.array([[0.1, 0.2, 0.3, 0.4]], dtype=np.float32))
        grpc_trace = os.urandom(16).hex()
        client.infer("mlp_classifier", [inp], request_id="req-3",
                     headers={"traceparent": f"00-{grpc_trace}-{os.urandom(8).hex()}-00"})

        lines = fh.wait_until(lambda: (lambda r: r if len(r) >= 3 else None)(request_lines(server)), 10,
                              "three request log lines")
        by_id = {l["id"]: l for l in lines}
        assert by_id["req-1"]["status"] == "OK" and by_id["req-1"]["protocol"] == "http"
        assert by_id["req-1"]["model"] == "mlp_classifier" and by_id["req-1"]["version"] == "1"
        assert by_id["req-1"]["trace_id"] == trace_id
        assert int(by_id["req-1"]["duration_us"]) >= 0
        assert by_id["req-2"]["status"] == "INVALID_ARGUMENT" and "INT64" in by_id["req-2"]["error"]
        assert by_id["req-2"]["version"] == "1"  # the version that refused it
        assert "trace_id" not in by_id["req-2"]  # no traceparent, not traced: no trace id to give
        assert by_id["req-3"]["protocol"] == "grpc" and by_id["req-3"]["trace_id"] == grpc_trace
        starts = [l for l in json_lines(server) if l["level"] == "info" and l["msg"] != "request"]
        assert starts and all("ts" in l for l in starts)  # start-up lines are JSON too
    finally:
        server.stop_and_check()


def test_default_is_text_without_request_lines(ferry_binary, model_repo, tmp_path):
    server = fh.FerryServer(ferry_binary, [model_repo], [], tmp_path / "ferry.log").start()
    try:
        assert server.post("/v2/models/mlp_classifier/infer", json=dict(MLP, id="quiet")).status_code == 200
    finally:
        server.stop_and_check()
    # (After the exit, a sanitizer build may add its own report lines: only ferry's count.)
    lines = server.log_path.read_text().splitlines()
    logged = [l for l in lines if l.startswith("ts=")]
    assert logged and not [l for l in lines if l.startswith("{")], "text is the default"
    assert not [l for l in logged if "msg=request" in l or "id=quiet" in l], "no access lines by default"


def test_bad_log_format_is_refused(ferry_binary, model_repo, tmp_path):
    import subprocess
    proc = subprocess.run([str(ferry_binary), "serve", "--model-repository", str(model_repo), "--log-format", "xml"],
                          capture_output=True, text=True, timeout=30, env=fh.child_env())
    assert proc.returncode == 2 and "--log-format must be text or json" in proc.stderr
