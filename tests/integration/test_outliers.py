"""Per-request outlier scores inside `ferry serve` (docs/monitoring.md, "Outliers"): a
profile built by `ferry profile build` from the example mlp_classifier's training-like
data; rows from the same distribution are seldom flagged (at most about the threshold),
rows far out are flagged; the score comes back in the response's parameters over REST
and gRPC when asked; the counts are in the metrics and the monitoring JSON; bad settings
are named while the model keeps serving."""

from __future__ import annotations

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

import ferry_helpers as fh
from test_drift_serving import build_profile

MODEL = "mlp_classifier"


def add_params(config, settings: dict[str, str]) -> None:
    with open(config, "a") as f:
        for k, v in settings.items():
            f.write(f'parameters {{ key: "monitoring.{k}" value: {{ string_value: "{v}" }} }}\n')


@pytest.fixture(scope="module")
def served(ferry_module_factory, model_repo, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("outliers")
    repo = fh.copy_repo(model_repo, tmp / "repo")
    build_profile(repo, np.random.default_rng(5).standard_normal((5000, 4)).astype(np.float32), tmp)
    add_params(repo / MODEL / "config.pbtxt", {"outliers.enabled": "true", "outliers.threshold": "0.01",
                                               "outliers.return_score": "true"})
    # The add_sub example with a bad threshold: named, and the model serves unscored.
    add_params(repo / "add_sub" / "config.pbtxt", {"outliers.enabled": "true", "outliers.threshold": "1.5"})
    server = fh.start_with_models(ferry_module_factory, repo, [MODEL, "add_sub"], "outliers")
    return server


def infer(server, rows: np.ndarray):
    body = {"inputs": [{"name": "input", "datatype": "FP32", "shape": list(rows.shape), "data": rows.ravel().tolist()}]}
    resp = server.post(f"/v2/models/{MODEL}/infer", json=body)
    assert resp.status_code == 200, resp.text[:300]
    return resp.json()


def counted(server) -> tuple[float, float]:
    samples = fh.parse_metrics(fh.http_request("GET", f"http://{server.metrics_url}/metrics").text)
    return (fh.metric_sum(samples, "ferry_outlier_rows_total", model=MODEL, version="1"),
            fh.metric_sum(samples, "ferry_outliers_total", model=MODEL, version="1"))


def test_in_distribution_rows_are_seldom_flagged_and_far_rows_are(served):
    server = served
    rows0, out0 = counted(server)
    rng = np.random.default_rng(77)
    flagged = 0
    n = 600
    for i in range(n):
        params = infer(server, rng.standard_normal((1, 4)).astype(np.float32))["parameters"]
        assert set(params) >= {"outlier_score", "is_outlier", "outlier_feature"}, params
        assert params["outlier_score"] >= 0
        flagged += params["is_outlier"]
    # Threshold 0.01: at most ~1 % of reference-like rows; 600 rows give at most ~15
    # at four standard deviations of a binomial(600, 0.01).
    assert flagged <= 15, flagged
    far = np.array([[0.1, -0.2, 9.0, 0.3]], np.float32)  # feature 2 nine sigma out
    params = infer(server, far)["parameters"]
    assert params["is_outlier"] is True and params["outlier_feature"] == "input[2]", params
    assert params["outlier_score"] > 4, params  # p below 1e-4 (the Laplace tail is deliberately heavy)
    # A batch: the worst row speaks for the answer.
    batch = np.vstack([rng.standard_normal((3, 4)).astype(np.float32), far])
    params = infer(server, batch)["parameters"]
    assert params["is_outlier"] is True
    rows1, out1 = counted(server)
    assert rows1 - rows0 == n + 1 + 4
    assert out1 - out0 == flagged + 2
    report = server.get(f"/v2/models/{MODEL}/monitoring").json()
    summary = report["versions"][0]["outliers"]
    assert summary["threshold"] == 0.01 and summary["rows"] == rows1 and summary["outliers"] == out1
    assert abs(summary["rate"] - out1 / rows1) < 1e-12


def test_score_over_grpc(served):
    with grpcclient.InferenceServerClient(fh.grpc_url(served)) as g:
        inp = grpcclient.InferInput("input", [1, 4], "FP32")
        inp.set_data_from_numpy(np.array([[0.0, 0.0, 0.0, -12.0]], np.float32))
        r = g.infer(MODEL, [inp])
        params = r.get_response().parameters
        assert params["is_outlier"].bool_param is True
        assert params["outlier_score"].double_param > 5
        assert params["outlier_feature"].string_param == "input[3]"
        inp.set_data_from_numpy(np.zeros((1, 4), np.float32))
        params = g.infer(MODEL, [inp]).get_response().parameters
        assert params["is_outlier"].bool_param is False
        assert params["outlier_score"].double_param < 0.5


def test_bad_settings_are_named_and_the_model_serves(served):
    ready = [e for e in served.post("/v2/repository/index", json={}).json()
             if e["name"] == "add_sub" and e.get("state") == "READY"]
    assert ready, "add_sub serves"
    entry = ready[0]
    assert entry["reason"] == (f"model 'add_sub' version {entry['version']}: monitoring: monitoring.outliers.threshold: "
                               "'1.5' is not a number between 0 and 1 (a p-value, e.g. 0.01)"), entry
    x = fh.make_inputs("add_sub", 1)
    resp = served.post("/v2/models/add_sub/infer", json=fh.json_request(x))
    assert resp.status_code == 200 and "outlier_score" not in resp.json().get("parameters", {})


def test_no_profile_is_named(ferry_factory, model_repo, tmp_path):
    repo = fh.copy_repo(model_repo, tmp_path / "repo")
    add_params(repo / MODEL / "config.pbtxt", {"outliers.enabled": "true"})
    server = fh.start_with_models(ferry_factory, repo, [MODEL], "outliers-noprofile")
    index = {(e["name"], e.get("version")): e for e in server.post("/v2/repository/index", json={}).json()}
    reason = index[(MODEL, "1")]["reason"]
    assert "monitoring.outliers.profile: " in reason and "profile.json" in reason and "ferry profile build" in reason, reason
