"""Online drift inside `ferry serve` (docs/monitoring.md, "Reference profiles and
drift"): a profile built by `ferry profile build` from the example mlp_classifier's
training-like data is loaded with the model (monitoring.drift.* in its config); requests
from the same distribution leave the model undrifted, requests with one feature shifted
are flagged, in GET /v2/models/{m}/monitoring and in the Prometheus metrics; bad
settings are reported naming the setting while the model keeps serving."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

import ferry_helpers as fh

WINDOW = 400


def build_profile(repo, rows: np.ndarray, tmp_path) -> None:
    data = tmp_path / "train.npy"
    np.save(data, rows)
    proc = subprocess.run([str(fh.ferry_bin()), "profile", "build", "--model-repository", str(repo),
                           "--model", "mlp_classifier", "--data", str(data)],
                          capture_output=True, text=True, timeout=120, env=fh.child_env())
    assert proc.returncode == 0, proc.stderr[-2000:]


def send(server, rows: np.ndarray, batch: int = 20) -> None:
    for i in range(0, len(rows), batch):
        chunk = rows[i:i + batch]
        body = {"inputs": [{"name": "input", "datatype": "FP32", "shape": list(chunk.shape),
                            "data": chunk.ravel().tolist()}]}
        resp = server.post("/v2/models/mlp_classifier/infer", json=body)
        assert resp.status_code == 200, resp.text[:300]


def report(server) -> dict:
    resp = server.get("/v2/models/mlp_classifier/monitoring")
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest.fixture
def drift_server(ferry_factory, model_repo, tmp_path):
    repo = fh.copy_repo(model_repo, tmp_path / "repo")
    rng = np.random.default_rng(5)
    build_profile(repo, rng.standard_normal((5000, 4)).astype(np.float32), tmp_path)
    with open(repo / "mlp_classifier" / "config.pbtxt", "a") as f:
        for k, v in (("monitoring.drift.enabled", "true"), ("monitoring.drift.window", str(WINDOW)),
                     ("monitoring.drift.buckets", "1")):
            f.write(f'parameters {{ key: "{k}" value: {{ string_value: "{v}" }} }}\n')
    return ferry_factory.start(repos=repo), rng


def evaluated(server, count: int):
    def done():
        r = report(server)
        d = r["versions"][0]["drift"]
        return r if d["evaluations"] >= count and d["last"] else None
    return fh.wait_until(done, 30, f"{count} drift evaluations")


def test_undrifted_stream_is_quiet_and_a_shifted_feature_is_flagged(drift_server):
    server, rng = drift_server
    send(server, rng.standard_normal((WINDOW, 4)).astype(np.float32))
    quiet = evaluated(server, 1)["versions"][0]["drift"]["last"]
    assert quiet["drift"] is False, quiet
    names = {f["name"] for f in quiet["features"]}
    assert len(names) >= 4, names  # four inputs (and the predictions)

    shifted = rng.standard_normal((WINDOW, 4)).astype(np.float32)
    shifted[:, 2] += 1.0  # one feature's mean moves by one standard deviation
    send(server, shifted)
    # The shifted window closes within the default 1 s rate limit of the first one: the
    # GET evaluates it (a window is never judged a step late when asked for).
    second = evaluated(server, 2)["versions"][0]["drift"]
    assert second["eval_interval_seconds"] == 1, second
    last = second["last"]
    assert last["drift"] is True, last
    flagged = [f for f in last["features"] if f["drift"] and f["role"] == "input"]
    assert [f["test"] for f in flagged] == ["ks"] and flagged[0]["p_value"] < last["threshold"], flagged
    untouched = [f for f in last["features"] if f["role"] == "input" and f not in flagged]
    assert len(untouched) == 3 and not any(f["drift"] for f in untouched)

    samples = fh.parse_metrics(fh.http_request("GET", f"http://{server.metrics_url}/metrics").text)
    assert fh.metric_sum(samples, "ferry_drift_detected", model="mlp_classifier", version="1") == 1
    assert fh.metric_sum(samples, "ferry_drift_evaluations_total", model="mlp_classifier", version="1") >= 2
    assert fh.metric_sum(samples, "ferry_drift_rows_total", model="mlp_classifier", version="1") == 2 * WINDOW
    evaluated_at = fh.metric_sum(samples, "ferry_drift_last_evaluation_timestamp_seconds", model="mlp_classifier",
                                 version="1")
    assert abs(evaluated_at * 1000 - last["evaluated_at_ms"]) < 1000, (evaluated_at, last["evaluated_at_ms"])


def test_unmonitored_unknown_and_badly_configured_models(ferry_factory, model_repo, tmp_path):
    repo = fh.copy_repo(model_repo, tmp_path / "repo")
    with open(repo / "mlp_classifier" / "config.pbtxt", "a") as f:
        f.write('parameters { key: "monitoring.drift.enabled" value: { string_value: "true" } }\n'
                'parameters { key: "monitoring.drift.alpha" value: { string_value: "2" } }\n')
    server = ferry_factory.start(repos=repo)
    # The bad setting is named; the model still serves, without drift.
    resp = server.post("/v2/repository/index", json={})
    entry = next(e for e in resp.json() if e["name"] == "mlp_classifier")
    assert entry["state"] == "READY" and "monitoring.drift.alpha" in entry.get("reason", ""), entry
    send(server, np.zeros((2, 4), np.float32))
    fh.assert_error(server.get("/v2/models/mlp_classifier/monitoring"), 404, "no drift monitoring")
    fh.assert_error(server.get("/v2/models/add_sub/monitoring"), 404, "no drift monitoring")
    fh.assert_error(server.get("/v2/models/no_such_model/monitoring"), 404, "no_such_model")
