"""Ground-truth feedback and live quality inside `ferry serve` (docs/monitoring.md,
"Ground-truth feedback and live quality"): real models from examples/models (the ONNX
mlp_classifier, the scikit-learn iris_sklearn, the libtorch torch_linear regressor) and a
scikit-learn binary classifier fitted here answer requests with ids; feedback with true
values is posted to POST /v2/models/{m}/feedback; the quality in GET .../monitoring and
in /metrics is compared with sklearn.metrics computed here on the same predictions and
truths. Bad feedback is a 400 naming the field and the server keeps serving."""

from __future__ import annotations

import json
import sys
import time

import joblib
import numpy as np
import pytest
from sklearn import metrics as skm

import ferry_helpers as fh

ROWS = 120


def pbtxt_settings(settings: dict[str, str]) -> str:
    return "".join(f'parameters {{ key: "monitoring.{k}" value: {{ string_value: "{v}" }} }}\n'
                   for k, v in settings.items())


def write_binary_model(repo, settings: dict[str, str], name: str = "cancer") -> None:
    """A scikit-learn logistic regression on the bundled breast-cancer set, in the same
    MLServer-style folder as examples' iris_sklearn (fitted on the even rows; with
    feedback.calibration, the folder also gets calibration.json from the odd rows' first
    half: the model's probabilities and the truth)."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load_breast_cancer(return_X_y=True)
    folder = repo / name
    folder.mkdir()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.05)).fit(x[::2], y[::2])
    joblib.dump(model, folder / "model.joblib")
    if settings.get("feedback.calibration") == "calibration.json":
        ref_x, ref_y = x[1::2][:140], y[1::2][:140]
        (folder / "calibration.json").write_text(json.dumps(
            {"probability": model.predict_proba(ref_x)[:, 1].tolist(), "label": ref_y.tolist()}))
    (folder / "model-settings.json").write_text(json.dumps({
        "name": name, "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib", "version": "1",
                       "extra": {f"monitoring.{k}": v for k, v in settings.items()}},
        "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, 30]}],
        "outputs": [{"name": "predict", "datatype": "INT64", "shape": [-1]},
                    {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 2]}]}))


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    import subprocess
    repo = fh.generate_repo(tmp_path_factory.mktemp("feedback") / "repo")
    proc = subprocess.run([sys.executable, str(fh.REPO_ROOT / "examples" / "generate_runtime_models.py"), str(repo)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    with open(repo / "mlp_classifier" / "config.pbtxt", "a") as f:
        f.write(pbtxt_settings({"feedback.enabled": "true", "feedback.window": "1000"}))
    iris = json.loads((repo / "iris_sklearn" / "model-settings.json").read_text())
    iris["parameters"]["extra"] = {"monitoring.feedback.enabled": "true"}  # default output: "predict" (labels)
    (repo / "iris_sklearn" / "model-settings.json").write_text(json.dumps(iris))
    if (repo / "torch_linear").is_dir():
        with open(repo / "torch_linear" / "config.pbtxt", "a") as f:
            f.write(pbtxt_settings({"feedback.enabled": "true", "feedback.task": "regression"}))
    write_binary_model(repo, {"feedback.enabled": "true", "feedback.output": "predict_proba",
                              "feedback.ttl_s": "2"})
    write_binary_model(repo, {"feedback.enabled": "true", "feedback.output": "predict_proba",
                              "feedback.calibration": "calibration.json"}, name="cancer_calibrated")
    write_binary_model(repo, {"feedback.enabled": "true", "feedback.calibration": "absent.json"}, name="cancer_bad")
    return repo


@pytest.fixture(scope="module")
def server(ferry_module_factory, repo):
    models = ["mlp_classifier", "iris_sklearn", "cancer", "cancer_calibrated", "cancer_bad", "add_sub"] + \
        (["torch_linear"] if (repo / "torch_linear").is_dir() else [])
    return fh.start_with_models(ferry_module_factory, repo, models, name="feedback", timeout=90,
                                args=["--python-executable", sys.executable])


def infer(server, model: str, name: str, datatype: str, x: np.ndarray, rid: str, how: str = "body") -> dict:
    body = {"inputs": [{"name": name, "datatype": datatype, "shape": list(x.shape), "data": x.ravel().tolist()}]}
    headers = {}
    if how == "body":
        body["id"] = rid
    elif how == "header":
        headers["X-Request-Id"] = rid
    resp = server.post(f"/v2/models/{model}/infer", json=body, headers=headers)
    assert resp.status_code == 200, resp.text[:300]
    doc = resp.json()
    if how != "none":
        assert doc["id"] == rid, doc.get("id")
    return doc


def output(doc: dict, name: str) -> np.ndarray:
    out = next(o for o in doc["outputs"] if o["name"] == name)
    return np.array(out["data"], dtype=np.float64).reshape(out["shape"])


def stored(server, model: str) -> int:
    resp = server.get(f"/v2/models/{model}/monitoring")
    assert resp.status_code == 200, resp.text
    return sum(v["feedback"]["predictions_total"] for v in resp.json()["versions"])


def answered(server, model: str) -> int:
    resp = server.get(f"/v2/models/{model}/stats")
    assert resp.status_code == 200, resp.text
    return sum(m["inference_stats"]["success"]["count"] for m in resp.json()["model_stats"])


def wait_stored(server, model: str) -> None:
    """Until the monitoring thread has stored every answered prediction of the model (it
    takes them from its queue within milliseconds; feedback that overtakes its own
    prediction is "unknown", as documented)."""
    if server.get(f"/v2/models/{model}/monitoring").status_code == 200:
        fh.wait_until(lambda: stored(server, model) >= answered(server, model), 10, f"{model}'s predictions stored")


def post_feedback(server, model: str, items: list[dict], version: str = ""):
    wait_stored(server, model)
    path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/feedback"
    return server.post(path, json={"feedback": items})


def quality(server, model: str) -> dict:
    resp = server.get(f"/v2/models/{model}/monitoring")
    assert resp.status_code == 200, resp.text
    return resp.json()["versions"][0]["quality"]


def gauges(server, name: str, model: str) -> dict[str, float]:
    text = fh.http_request("GET", f"http://{server.metrics_url}/metrics").text
    return {labels["metric"]: v for n, labels, v in fh.parse_metrics(text) if n == name and labels.get("model") == model}


def wait_gauge(server, name: str, model: str, metric: str, expected: float) -> dict[str, float]:
    def ok():
        g = gauges(server, name, model)
        return g if metric in g and abs(g[metric] - expected) < 1e-6 else None
    return fh.wait_until(ok, 10, f"{name}{{model={model},metric={metric}}} = {expected}")


def test_multiclass_probabilities_match_sklearn(server):
    rng = np.random.default_rng(21)
    probs, truths, items = [], [], []
    for i in range(ROWS // 3):
        x = rng.standard_normal((3, 4)).astype(np.float32)  # three rows per request
        rid = f"mlp-{i}"
        doc = infer(server, "mlp_classifier", "input", "FP32", x, rid, how="header" if i % 2 else "body")
        p = output(doc, "probabilities")
        truth = [int(rng.choice(3, p=row / row.sum())) if j else int(rng.integers(3)) for j, row in enumerate(p)]
        probs.append(p)
        truths += truth
        items.append({"id": rid, "target": truth})
    resp = post_feedback(server, "mlp_classifier", items)
    assert resp.status_code == 200, resp.text
    assert resp.json()["joined"] == len(items) and resp.json()["unknown"] == 0

    p = np.concatenate(probs)
    y = np.array(truths)
    pred = p.argmax(axis=1)
    q = quality(server, "mlp_classifier")
    real = q["realised"]
    assert q["rows"] == len(y) and real["average"] == "macro" and real["classes"] == 3
    expected = {
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred, average="macro", zero_division=0),
        "recall": skm.recall_score(y, pred, average="macro", zero_division=0),
        "f1": skm.f1_score(y, pred, average="macro", zero_division=0),
        "roc_auc": skm.roc_auc_score(y, p, multi_class="ovr", average="macro"),
        "log_loss": skm.log_loss(y, p, labels=[0, 1, 2]),
    }
    for k, v in expected.items():
        assert real[k] == pytest.approx(v, abs=1e-6), (k, real[k], v)
    assert q["estimated"] is None  # CBPE is for binary classifiers
    g = wait_gauge(server, "ferry_model_quality", "mlp_classifier", "accuracy", expected["accuracy"])
    assert g["roc_auc"] == pytest.approx(expected["roc_auc"], abs=1e-6)

    # The same ids again are duplicates; the joined ones stay counted once.
    again = post_feedback(server, "mlp_classifier", items[:2])
    assert again.status_code == 400 and again.json()["duplicate"] == 2, again.text
    assert "feedback[0].id: 'mlp-0' was already joined" in fh.error_message(again)
    text = fh.http_request("GET", f"http://{server.metrics_url}/metrics").text
    samples = fh.parse_metrics(text)
    assert fh.metric_sum(samples, "ferry_feedback_total", model="mlp_classifier", result="joined") == len(items)
    assert fh.metric_sum(samples, "ferry_feedback_total", model="mlp_classifier", result="duplicate") == 2


def test_binary_classifier_quality_and_cbpe_estimate(server):
    from sklearn.datasets import load_breast_cancer
    x, y = load_breast_cancer(return_X_y=True)
    x, y = x[1::2], y[1::2]  # rows the model was not fitted on
    p1, items = [], []
    for i in range(0, len(x), 4):
        doc = infer(server, "cancer", "input-0", "FP64", x[i:i + 4], f"c-{i}")
        p1.append(output(doc, "predict_proba")[:, 1])
        items.append({"id": f"c-{i}", "target": [int(t) for t in y[i:i + 4]]})
    p = np.concatenate(p1)
    pred = (p >= 0.5).astype(int)

    # Before any feedback: the estimate exists, realised quality has no rows.
    wait_stored(server, "cancer")
    q = quality(server, "cancer")
    est = q["estimated"]
    assert q["rows"] == 0 and est["method"] == "cbpe" and est["rows"] == len(p)
    conf = np.where(pred == 1, p, 1 - p)
    assert est["accuracy"] == pytest.approx(conf.mean(), abs=1e-9)
    tp, fp, fn = p[pred == 1].sum(), (1 - p[pred == 1]).sum(), p[pred == 0].sum()
    assert est["precision"] == pytest.approx(tp / (tp + fp), abs=1e-9)
    assert est["recall"] == pytest.approx(tp / (tp + fn), abs=1e-9)
    g = wait_gauge(server, "ferry_model_quality_estimated", "cancer", "accuracy", conf.mean())
    assert 0.5 < g["roc_auc"] <= 1

    resp = post_feedback(server, "cancer", items, version="1")
    assert resp.status_code == 200, resp.text
    real = quality(server, "cancer")["realised"]
    assert real["average"] == "binary"
    assert real["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-9)
    assert real["precision"] == pytest.approx(skm.precision_score(y, pred), abs=1e-9)
    assert real["recall"] == pytest.approx(skm.recall_score(y, pred), abs=1e-9)
    assert real["f1"] == pytest.approx(skm.f1_score(y, pred), abs=1e-9)
    assert real["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p), abs=1e-9)
    assert real["log_loss"] == pytest.approx(skm.log_loss(y, np.column_stack([1 - p, p])), abs=1e-9)
    # A well-fitted model on held-out rows: the label-free estimate lands near the truth.
    assert abs(est["accuracy"] - real["accuracy"]) < 0.05, (est, real)


def test_label_output_classifier_matches_sklearn(server):
    from sklearn.datasets import load_iris
    x, y = load_iris(return_X_y=True)
    rng = np.random.default_rng(4)
    idx = rng.permutation(len(x))[:60]
    preds, items = [], []
    for n, i in enumerate(idx):
        doc = infer(server, "iris_sklearn", "input-0", "FP64", x[i:i + 1], f"iris-{n}")
        preds.append(int(output(doc, "predict").ravel()[0]))
        # Some truths as class names' text, the rest as numbers: labels compare as text.
        items.append({"id": f"iris-{n}", "target": str(y[i]) if n % 2 else int(y[i])})
    resp = post_feedback(server, "iris_sklearn", items)
    assert resp.status_code == 200, resp.text
    real = quality(server, "iris_sklearn")["realised"]
    truth = y[idx]
    assert real["accuracy"] == pytest.approx(skm.accuracy_score(truth, preds), abs=1e-9)
    assert real["f1"] == pytest.approx(skm.f1_score(truth, preds, average="macro"), abs=1e-9)
    assert real["roc_auc"] is None and real["log_loss"] is None  # labels only


def test_regressor_matches_sklearn(server, repo):
    if not (repo / "torch_linear").is_dir():
        pytest.skip("torch_linear was not generated (no python3-torch)")
    rng = np.random.default_rng(8)
    preds, truths, items = [], [], []
    for i in range(40):
        x = rng.standard_normal((2, 4)).astype(np.float32)
        doc = infer(server, "torch_linear", "INPUT__0", "FP32", x, f"t-{i}")
        pred = output(doc, "OUTPUT__0")
        truth = pred + rng.normal(0, 0.3, pred.shape) + 0.1
        preds.append(pred)
        truths.append(truth)
        items.append({"id": f"t-{i}", "target": truth.tolist()})  # [[3 outputs] x 2 rows]
    resp = post_feedback(server, "torch_linear", items)
    assert resp.status_code == 200, resp.text
    p, t = np.concatenate(preds), np.concatenate(truths)
    real = quality(server, "torch_linear")["realised"]
    assert real["task"] == "regression" and real["outputs"] == 3
    assert real["rmse"] == pytest.approx(skm.root_mean_squared_error(t, p), rel=1e-5)
    assert real["mae"] == pytest.approx(skm.mean_absolute_error(t, p), rel=1e-5)
    assert real["r2"] == pytest.approx(skm.r2_score(t, p), rel=1e-5)
    wait_gauge(server, "ferry_model_quality", "torch_linear", "mae", real["mae"])


def test_expired_ids_and_generated_ids(server):
    x = np.zeros((1, 30))
    infer(server, "cancer", "input-0", "FP64", x, "late-1")
    doc = infer(server, "cancer", "input-0", "FP64", x, "", how="none")
    generated = doc["id"]
    assert len(generated) >= 32, doc  # a UUID the server made, to name in feedback
    time.sleep(2.5)  # cancer's feedback.ttl_s is 2
    resp = post_feedback(server, "cancer", [{"id": "late-1", "target": 1}])
    assert resp.status_code == 400 and resp.json()["expired"] == 1, resp.text
    assert "feedback[0].id: 'late-1' expired" in fh.error_message(resp)
    doc = infer(server, "cancer", "input-0", "FP64", x, "", how="none")
    resp = post_feedback(server, "cancer", [{"id": doc["id"], "target": 0}])
    assert resp.status_code == 200 and resp.json()["joined"] == 1, resp.text


@pytest.mark.parametrize("body, status, field", [
    (b"{not json", 400, "body: not JSON"),
    (b"[1]", 400, "body: expected an object"),
    (b"{}", 400, "feedback: missing"),
    (b'{"feedback": [{"target": 1}]}', 400, "feedback[0].id: missing"),
    (b'{"feedback": [{"id": "x"}]}', 400, "feedback[0].target: missing"),
    (b'{"feedback": [{"id": 3, "target": 1}]}', 400, "feedback[0].id: expected a string"),
    (b'{"feedback": [{"id": "x", "target": {"a": 1}}]}', 400, "feedback[0].target: expected a number"),
    (b'{"feedback": [{"id": "never-answered", "target": 1}]}', 400, "feedback[0].id: 'never-answered' is unknown"),
])
def test_bad_feedback_is_a_400_naming_the_field(server, body, status, field):
    resp = server.post("/v2/models/mlp_classifier/feedback", data=body, headers={"Content-Type": "application/json"})
    fh.assert_error(resp, status, field)
    infer(server, "mlp_classifier", "input", "FP32", np.zeros((1, 4), np.float32), "still-serving")


def test_targets_that_do_not_fit_and_models_without_feedback(server):
    infer(server, "mlp_classifier", "input", "FP32", np.zeros((2, 4), np.float32), "two-rows")
    fh.assert_error(post_feedback(server, "mlp_classifier", [{"id": "two-rows", "target": 1}]), 400,
                    "feedback[0].target: expected 2 values")
    fh.assert_error(post_feedback(server, "mlp_classifier", [{"id": "two-rows", "target": [0, 7]}]), 400,
                    "feedback[0].target[1]: '7' is not a class")
    fh.assert_error(post_feedback(server, "mlp_classifier", [{"id": "two-rows", "target": ["a", "b"]}]), 400,
                    "feedback[0].target[0]: 'a' is not a class")
    # Nothing was joined by the refused bodies: the right one still joins.
    resp = post_feedback(server, "mlp_classifier", [{"id": "two-rows", "target": [0, 2]}])
    assert resp.status_code == 200, resp.text
    fh.assert_error(post_feedback(server, "add_sub", [{"id": "x", "target": 1}]), 400,
                    "model 'add_sub' has no feedback monitoring")
    fh.assert_error(post_feedback(server, "no_such_model", [{"id": "x", "target": 1}]), 404, "no_such_model")
    resp = server.get("/v2/models/mlp_classifier/feedback")
    assert resp.status_code == 405, resp.text


def test_calibration_from_a_reference_set_and_a_bad_one(server, repo):
    from sklearn.datasets import load_breast_cancer
    x = load_breast_cancer(return_X_y=True)[0][1::2][140:]  # after the calibration rows
    p = np.concatenate([output(infer(server, "cancer_calibrated", "input-0", "FP64", x[i:i + 10], f"cal-{i}"),
                               "predict_proba")[:, 1] for i in range(0, len(x), 10)])
    wait_stored(server, "cancer_calibrated")
    est = quality(server, "cancer_calibrated")["estimated"]
    assert est["rows"] == len(p) and est["calibration"] in ("isotonic", "not_needed"), est
    if est["calibration"] == "isotonic":
        # The calibrated scores are a step function of the raw ones: the estimate moved.
        raw = np.where(p >= 0.5, p, 1 - p).mean()
        assert est["accuracy"] != pytest.approx(raw, abs=1e-12), (est, raw)
    # A calibration file that is not there: the version serves without feedback
    # monitoring and says why, naming the setting.
    resp = server.post("/v2/repository/index", json={})
    entry = next(e for e in resp.json() if e["name"] == "cancer_bad")
    assert entry["state"] == "READY" and "monitoring.feedback.calibration" in entry.get("reason", ""), entry
    assert "absent.json: cannot be read" in entry["reason"], entry
    fh.assert_error(post_feedback(server, "cancer_bad", [{"id": "x", "target": 1}]), 400,
                    "has no feedback monitoring")
