"""The statistics extension over REST, checked against the traffic the test sends."""

from __future__ import annotations

import tritonclient.http as httpclient

import ferry_helpers as fh


def _stats(server, path):
    resp = server.get(path)
    assert resp.status_code == 200, resp.text
    return resp.json()["model_stats"]


def test_statistics_count_what_was_sent(ferry_factory):
    server = ferry_factory.start(name="stats")
    before = _stats(server, "/v2/models/int_ops/versions/1/stats")[0]
    batches = [1, 3, 2]
    for i, b in enumerate(batches):
        resp = server.post("/v2/models/int_ops/versions/1/infer",
                           json=fh.json_request(fh.make_inputs("int_ops", b, seed=i)))
        assert resp.status_code == 200, resp.text
    bad = fh.json_request(fh.make_inputs("int_ops", 1, seed=9))
    bad["inputs"][0]["shape"] = [1, 5]  # wrong shape: a failure of this model
    assert server.post("/v2/models/int_ops/versions/1/infer", json=bad).status_code == 400

    after = _stats(server, "/v2/models/int_ops/versions/1/stats")[0]
    assert after["name"] == "int_ops" and after["version"] == "1"
    assert after["inference_count"] - before["inference_count"] == sum(batches)
    assert after["execution_count"] - before["execution_count"] == len(batches)
    s = after["inference_stats"]
    assert s["success"]["count"] - before["inference_stats"]["success"]["count"] == len(batches)
    assert s["fail"]["count"] - before["inference_stats"]["fail"]["count"] == 1
    for phase in ("queue", "compute_input", "compute_infer", "compute_output"):
        assert s[phase]["count"] == s["success"]["count"], phase
        assert s[phase]["ns"] > 0, phase
    assert s["success"]["ns"] >= s["compute_infer"]["ns"]
    sizes = {b["batch_size"]: b["compute_infer"]["count"] for b in after["batch_stats"]}
    assert sizes == {1: 1, 2: 1, 3: 1}
    assert after["last_inference"] > 1_600_000_000_000  # ms since the epoch

    # The all-models form lists every ready version; tritonclient reads the same shape.
    names = {(m["name"], m["version"]) for m in _stats(server, "/v2/models/stats")}
    assert {("add_sub", "1"), ("add_sub", "2"), ("int_ops", "1"), ("mlp_classifier", "1")} <= names
    client = httpclient.InferenceServerClient(server.url)
    assert client.get_inference_statistics("int_ops")["model_stats"][0]["execution_count"] == len(batches)
    assert "statistics" in client.get_server_metadata()["extensions"]


def test_statistics_errors(ferry_server):
    fh.assert_error(ferry_server.get("/v2/models/nope/stats"), 404, "nope")
    fh.assert_error(ferry_server.get("/v2/models/add_sub/versions/9/stats"), 404, "add_sub")
    assert ferry_server.post("/v2/models/stats").status_code == 405
