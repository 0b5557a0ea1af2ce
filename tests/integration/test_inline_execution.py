"""Inline execution (--inline-execution-us): a model version measured as tiny runs on
the IO thread that received the request; a slow one never does, so one IO thread keeps
answering while it computes. Answers, statistics and metrics are the same either way."""

from __future__ import annotations

import concurrent.futures
import json

import numpy as np
import pytest
import requests
import tritonclient.grpc as grpcclient

import ferry_helpers as fh

N = fh.SLOW_MODEL_N
INLINE = "ferry_inline_executions_total"


def _metrics(server):
    return fh.parse_metrics(requests.get(f"http://{server.metrics_url}/metrics", timeout=fh.HTTP_TIMEOUT_S).text)


def _stats(server, model, version):
    resp = server.get(f"/v2/models/{model}/versions/{version}/stats")
    assert resp.status_code == 200, resp.text
    return resp.json()["model_stats"][0]


def _slow_post(server):
    header = json.dumps({"inputs": [{"name": "x", "shape": [N, N], "datatype": "FP32",
                                     "parameters": {"binary_data_size": N * N * 4}}]}).encode()
    body = header + np.ones((N, N), np.float32).tobytes()
    return requests.post(f"{server.base}/v2/models/slow/infer", data=body,
                         headers={fh.IHCL: str(len(header))}, timeout=120)


def test_slow_model_never_blocks_the_io_thread(ferry_factory, tmp_path):
    repo = tmp_path / "repo"
    fh.write_slow_model(repo, seconds=0.5)
    server = ferry_factory.start(repos=repo, args=["--http-threads", "1", "--inline-execution-us", "50"],
                                 name="inline-slow")
    # More executions than the gate needs to decide (8): had it misjudged the model, the
    # last ones would already run on the one IO thread.
    for _ in range(9):
        resp = _slow_post(server)
        assert resp.status_code == 200, resp.text[:300]
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        slow = pool.submit(_slow_post, server)
        # The metrics port has its own event loop: it shows the request in flight, i.e.
        # read by the REST IO thread and handed to the model.
        fh.wait_until(lambda: fh.metric_sum(_metrics(server), "ferry_inflight_requests", model="slow") == 1,
                      60, "the slow request to be in flight", interval=0.01)
        # The one REST IO thread answers health and metadata while the model computes.
        assert server.get("/v2/health/ready").status_code == 200
        md = server.get("/v2/models/slow")
        assert md.status_code == 200 and md.json()["name"] == "slow"
        assert not slow.done(), "the slow request finished before health and metadata were answered"
        assert slow.result().status_code == 200
    samples = _metrics(server)
    assert fh.metric_sum(samples, "ferry_inference_executions_total", model="slow") == 10
    assert fh.metric_sum(samples, INLINE, model="slow") == 0


# On: a threshold far above add_sub's execution time even under AddressSanitizer on a
# loaded machine (with the default 50 us the gate stayed shut there: no inline run to see).
@pytest.mark.parametrize("threshold_us", ["20000", "0"])
def test_tiny_model_answers_are_identical_over_every_protocol(ferry_factory, model_repo, threshold_us):
    server = ferry_factory.start(args=["--http-threads", "1", "--inline-execution-us", threshold_us],
                                 name=f"inline-{threshold_us}")
    model, version = "add_sub", "1"
    before = _stats(server, model, version)
    client = grpcclient.InferenceServerClient(fh.grpc_url(server))
    sent = 0
    for i in range(20):
        inputs = fh.make_inputs(model, 1 + i % 3, seed=i)
        expected = fh.reference(model_repo, model, version, inputs)
        # REST JSON
        resp = server.post(f"/v2/models/{model}/versions/{version}/infer", json=fh.json_request(inputs))
        assert resp.status_code == 200, resp.text
        fh.assert_outputs_match(fh.parse_infer_response(resp)[1], expected)
        # REST binary, both ways
        body, headers = fh.binary_request(inputs, outputs={name: True for name in expected})
        resp = server.post(f"/v2/models/{model}/versions/{version}/infer", data=body, headers=headers)
        assert resp.status_code == 200, resp.text
        fh.assert_outputs_match(fh.parse_infer_response(resp)[1], expected)
        # gRPC
        grpc_inputs = []
        for name, arr in inputs.items():
            t = grpcclient.InferInput(name, list(arr.shape), "FP32")
            t.set_data_from_numpy(arr)
            grpc_inputs.append(t)
        result = client.infer(model, grpc_inputs, model_version=version)
        fh.assert_outputs_match({name: result.as_numpy(name) for name in expected}, expected)
        sent += 3 * (1 + i % 3)
    client.close()

    after = _stats(server, model, version)
    assert after["inference_count"] - before["inference_count"] == sent
    assert after["execution_count"] - before["execution_count"] == 60
    s, s0 = after["inference_stats"], before["inference_stats"]
    assert s["success"]["count"] - s0["success"]["count"] == 60
    assert s["fail"]["count"] == s0["fail"]["count"]
    for phase in ("queue", "compute_input", "compute_infer", "compute_output"):
        assert s[phase]["count"] == s["success"]["count"], phase
        assert s[phase]["ns"] > 0, phase
    samples = _metrics(server)
    for protocol in ("http", "grpc"):
        executions = fh.metric_sum(samples, "ferry_inference_executions_total", model=model, version=version,
                                   protocol=protocol)
        inline = fh.metric_sum(samples, INLINE, model=model, version=version, protocol=protocol)
        assert executions == (40 if protocol == "http" else 20)
        if threshold_us == "0":
            assert inline == 0, protocol
        else:
            # The first executions are measured on workers; once the gate has seen them,
            # requests sent one at a time find the instance free and run inline.
            assert inline > 0, protocol
            assert inline <= executions


def test_negative_threshold_is_refused_naming_the_flag(ferry_binary, model_repo):
    import subprocess

    for argv, env in ((["--inline-execution-us", "-5"], {}), ([], {"FERRY_INLINE_EXECUTION_US": "-1"})):
        out = subprocess.run([str(ferry_binary), "serve", "--model-repository", str(model_repo), *argv],
                             capture_output=True, text=True, timeout=10, env={**fh.child_env(), **env})
        assert out.returncode == 2, out.stderr
        assert "--inline-execution-us must be 0 or more" in out.stderr
    help_text = subprocess.run([str(ferry_binary), "serve", "--help"], capture_output=True, text=True, timeout=10).stdout
    assert "--inline-execution-us" in help_text and "FERRY_INLINE_EXECUTION_US" in help_text
