"""The response cache: hits answer without running the model, reloads never serve stale
results, and the counters say what happened."""

from __future__ import annotations

import shutil

import requests

import ferry_helpers as fh


def _stats(server):
    return server.get("/v2/models/add_sub/versions/1/stats").json()["model_stats"][0]


def _metric(server, name):
    text = requests.get(f"http://{server.metrics_url}/metrics", timeout=fh.HTTP_TIMEOUT_S).text
    return fh.metric_sum(fh.parse_metrics(text), name, model="add_sub", version="1")


def test_cache_hits_skip_execution_and_reload_invalidates(ferry_factory):
    repo = ferry_factory.new_repo("cache")
    config = repo / "add_sub" / "config.pbtxt"
    config.write_text(config.read_text().replace("version_policy: { all { } }", "version_policy: { specific { versions: [1] } }")
                      + "\nresponse_cache { enable: true }\n")
    server = ferry_factory.start(repos=repo, args=["--model-control-mode", "explicit"], name="cache")
    inputs = fh.make_inputs("add_sub", 2, seed=5)
    expected = fh.reference(repo, "add_sub", 1, inputs)
    for _ in range(3):
        resp = server.post("/v2/models/add_sub/versions/1/infer", json=fh.json_request(inputs))
        assert resp.status_code == 200, resp.text
        fh.assert_outputs_match(fh.parse_infer_response(resp)[1], expected)
    s = _stats(server)
    assert s["execution_count"] == 1  # two of the three came from the cache
    assert s["inference_stats"]["cache_hit"]["count"] == 2
    assert s["inference_stats"]["cache_miss"]["count"] == 1
    assert s["inference_stats"]["success"]["count"] == 3
    assert _metric(server, "ferry_cache_hits_total") == 2
    assert _metric(server, "ferry_cache_misses_total") == 1

    # Different inputs miss.
    other = fh.make_inputs("add_sub", 2, seed=6)
    resp = server.post("/v2/models/add_sub/versions/1/infer", json=fh.json_request(other))
    fh.assert_outputs_match(fh.parse_infer_response(resp)[1], fh.reference(repo, "add_sub", 1, other))
    assert _stats(server)["execution_count"] == 2

    # Replace version 1's file with version 2's graph and reload: the same request must
    # now get the new model's answer, not the cached one.
    shutil.copy(repo / "add_sub" / "2" / "model.onnx", repo / "add_sub" / "1" / "model.onnx")
    assert server.post("/v2/repository/models/add_sub/load").status_code == 200
    resp = server.post("/v2/models/add_sub/versions/1/infer", json=fh.json_request(inputs))
    assert resp.status_code == 200, resp.text
    fh.assert_outputs_match(fh.parse_infer_response(resp)[1], fh.reference(repo, "add_sub", 2, inputs))
