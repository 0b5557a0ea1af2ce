"""Explanations: POST /v2/models/{m}[/versions/{v}]/explain on the real ferry binary.

- XGBoost (libxgboost's own TreeSHAP in the server) and LightGBM (its pred_contrib in the
  Python worker): equal to the xgboost / lightgbm packages' own contributions on the same
  model files and rows, within 1e-5 relative.
- The model-agnostic methods on models without their own (an ONNX MLP from
  examples/models, a scikit-learn linear regression): the attributions add up to the
  model's own answer (from /infer) minus the expected value, and on the linear model they
  move by exactly w_i * (x_i - x'_i) between two rows.
- Bad requests and settings: a 400 that names the field or setting, and the server goes
  on serving.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import joblib
import lightgbm as lgb
import numpy as np
import pytest
import xgboost as xgb
from sklearn.linear_model import LinearRegression

import ferry_helpers as fh

N = 5  # features of the trained models
RTOL = 1e-5


def train_data(seed: int = 0, n: int = 400):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, N)).astype(np.float32)
    score = 2 * x[:, 0] - x[:, 1] + 0.5 * x[:, 2] * x[:, 3] + 0.1 * rng.standard_normal(n)
    return x, score


def rows(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, N)).astype(np.float32)


EXPLAIN_ON = 'parameters { key: "monitoring.explain.enabled" value: { string_value: "true" } }\n'


def pbtxt_params(**settings: str) -> str:
    return "".join(f'parameters {{ key: "monitoring.explain.{k}" value: {{ string_value: "{v}" }} }}\n'
                   for k, v in settings.items())


class Models:
    def __init__(self, repo: Path, examples: Path):
        self.repo = repo
        x, score = train_data()
        label3 = np.digitize(score, [-1, 1])
        self.x_train = x

        def folder(name: str) -> Path:
            (repo / name / "1").mkdir(parents=True)
            return repo / name

        def xgb_model(name: str, params: dict, label):
            b = xgb.train({**params, "max_depth": 3, "eta": 0.3, "seed": 0}, xgb.DMatrix(x, label=label), 10)
            b.save_model(str(folder(name) / "1" / "model.json"))
            return b

        self.xgb = {
            "xgb_reg": xgb_model("xgb_reg", {"objective": "reg:squarederror"}, score),
            "xgb_binary": xgb_model("xgb_binary", {"objective": "binary:logistic"}, score > 0),
            "xgb_multi": xgb_model("xgb_multi", {"objective": "multi:softprob", "num_class": 3}, label3),
        }
        for name in self.xgb:
            (repo / name / "config.pbtxt").write_text('backend: "xgboost"\n' + EXPLAIN_ON +
                                                      pbtxt_params(max_rows="8"))
        # Explanations off (the default): refused, naming the setting.
        xgb_model("xgb_off", {"objective": "reg:squarederror"}, score)
        (repo / "xgb_off" / "config.pbtxt").write_text('backend: "xgboost"\n')

        # LightGBM in the Python worker, configured in model.yaml (monitoring: explain: block).
        self.lgb = {
            "lgb_reg": lgb.train({"objective": "regression", "verbose": -1, "num_leaves": 8, "seed": 0},
                                 lgb.Dataset(x, label=score), num_boost_round=10),
            "lgb_multi": lgb.train({"objective": "multiclass", "num_class": 3, "verbose": -1, "num_leaves": 8,
                                    "seed": 0}, lgb.Dataset(x, label=label3), num_boost_round=10),
        }
        for name, booster in self.lgb.items():
            booster.save_model(str(folder(name) / "1" / "model.txt"))
            (repo / name / "model.yaml").write_text("monitoring:\n  explain:\n    enabled: true\n")

        # A linear regression in the Python worker (no explanation of its own), configured
        # in model-settings.json, with a profile built from its training data.
        self.linear = LinearRegression().fit(x.astype(np.float64), score)
        lin = repo / "sk_linear"
        lin.mkdir()
        joblib.dump(self.linear, lin / "model.joblib")
        (lin / "model-settings.json").write_text(json.dumps({
            "name": "sk_linear", "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": "./model.joblib", "extra": {"monitoring.explain.enabled": "true",
                                                             "monitoring.explain.background_rows": "20"}},
            "inputs": [{"name": "x", "datatype": "FP64", "shape": [-1, N]}],
            "outputs": [{"name": "predict", "datatype": "FP64", "shape": [-1]}]}))
        build_profile(lin / "profile.json", x, [f"f{i}" for i in range(N)])

        # The example ONNX MLP (4 features, probabilities of 3 classes), explained
        # model-agnostically over a profile of its training-like data.
        for name, settings in {"mlp": {}, "mlp_perm": {"method": "permutation", "max_evaluations": "1200"},
                               "mlp_tree": {"method": "tree_shap"},
                               "mlp_tight": {"method": "kernel_shap", "max_evaluations": "100"},
                               "mlp_noprofile": {}}.items():
            shutil.copytree(examples / "mlp_classifier", repo / name)
            block = "".join(f"    {k}: {v}\n" for k, v in {"enabled": "true", "output": "probabilities",
                                                             "background_rows": "16", **settings}.items())
            (repo / name / "model.yaml").write_text("monitoring:\n  explain:\n" + block)
            if name != "mlp_noprofile":
                build_profile(repo / name / "profile.json",
                              np.random.default_rng(5).standard_normal((500, 4)).astype(np.float32),
                              ["sepal_length", "sepal_width", "petal_length", "petal_width"])
        # A typo in a setting: the model loads, the reason names the setting.
        shutil.copytree(examples / "mlp_classifier", repo / "mlp_typo")
        (repo / "mlp_typo" / "model.yaml").write_text("monitoring:\n  explain:\n    enabled: true\n    max_row: 3\n")


def build_profile(path: Path, x: np.ndarray, names: list[str]) -> None:
    csv = path.with_suffix(".csv")
    np.savetxt(csv, x, delimiter=",", header=",".join(names), comments="")
    proc = subprocess.run([str(fh.ferry_bin()), "profile", "build", "--data", str(csv), "-o", str(path)],
                          capture_output=True, text=True, timeout=120, env=fh.child_env())
    assert proc.returncode == 0, proc.stderr
    csv.unlink()


SERVED = ["xgb_reg", "xgb_binary", "xgb_multi", "xgb_off", "lgb_reg", "lgb_multi", "sk_linear", "mlp", "mlp_perm",
          "mlp_tree", "mlp_tight", "mlp_noprofile", "mlp_typo"]


@pytest.fixture(scope="module")
def models(tmp_path_factory, model_repo) -> Models:
    return Models(tmp_path_factory.mktemp("explain") / "repo", model_repo)


@pytest.fixture(scope="module")
def server(ferry_module_factory, models):
    return fh.start_with_models(ferry_module_factory, models.repo, SERVED,
                                "explain", args=["--python-executable", sys.executable], timeout=120)


def body(x: np.ndarray, name: str = "input__0", **extra) -> dict:
    dt = {np.float32: "FP32", np.float64: "FP64"}[x.dtype.type]
    return {"inputs": [{"name": name, "shape": list(x.shape), "datatype": dt, "data": x.ravel().tolist()}], **extra}


def post(server, path: str, payload) -> tuple[int, dict]:
    data = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
    r = server.post(path, data=data, headers={"Content-Type": "application/json"})
    return r.status_code, r.json() if r.content else {}


def explain(server, model: str, x: np.ndarray, name: str = "input__0", **extra):
    status, doc = post(server, f"/v2/models/{model}/explain", body(x, name, **extra))
    assert status == 200, doc
    out = {o["name"]: o for o in doc["outputs"]}
    a = np.array(out["attributions"]["data"], dtype=np.float64).reshape(out["attributions"]["shape"])
    return a, out, doc


def infer(server, model: str, x: np.ndarray, name: str, output: str) -> np.ndarray:
    status, doc = post(server, f"/v2/models/{model}/infer", body(x, name, outputs=[{"name": output}]))
    assert status == 200, doc
    o = doc["outputs"][0]
    return np.array(o["data"], dtype=np.float64).reshape(o["shape"])


def assert_close(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    # Relative to each row's scale, so a contribution that is 0 in one and 1e-9 in the other passes.
    scale = np.maximum(np.abs(expected).max(axis=-1, keepdims=True), 1e-6)
    err = np.abs(actual - expected) / scale
    assert err.max() <= RTOL, f"{what}: max relative error {err.max():.3g}"


@pytest.mark.parametrize("model", ["xgb_reg", "xgb_binary", "xgb_multi"])
def test_xgboost_tree_shap_matches_pred_contribs(server, models, model):
    x = rows(7, seed=1)
    a, out, doc = explain(server, model, x)
    expected = models.xgb[model].predict(xgb.DMatrix(x), pred_contribs=True)
    assert_close(a, expected, model)
    assert doc["parameters"]["method"] == "tree_shap" and doc["parameters"]["output_space"] == "margin", doc
    assert out["attributions"]["datatype"] == "FP32"
    # A row's contributions add up to XGBoost's raw margin.
    margin = models.xgb[model].predict(xgb.DMatrix(x), output_margin=True)
    np.testing.assert_allclose(a.sum(axis=-1), margin, rtol=1e-4, atol=1e-5)
    groups = 3 if model == "xgb_multi" else 1
    assert out["expected_value"]["shape"] == [groups]
    np.testing.assert_allclose(out["expected_value"]["data"], expected[0, ..., -1].reshape(-1), rtol=RTOL)
    assert out["feature_names"]["data"] == [f"input__0[{i}]" for i in range(N)] + ["bias"]
    # The versioned route answers the same.
    status, doc1 = post(server, f"/v2/models/{model}/versions/1/explain", body(x))
    assert status == 200 and doc1["outputs"][0]["data"] == out["attributions"]["data"]


@pytest.mark.parametrize("model", ["lgb_reg", "lgb_multi"])
def test_lightgbm_tree_shap_matches_pred_contrib(server, models, model):
    x = rows(6, seed=2).astype(np.float64)
    a, out, doc = explain(server, model, x, name="input-0")
    expected = np.asarray(models.lgb[model].predict(x, pred_contrib=True))
    if model == "lgb_multi":
        expected = expected.reshape(len(x), 3, N + 1)
    assert_close(a, expected, model)
    assert doc["parameters"]["method"] == "tree_shap", doc
    raw = models.lgb[model].predict(x, raw_score=True)
    np.testing.assert_allclose(a.sum(axis=-1), raw, rtol=1e-9, atol=1e-9)


def test_kernel_shap_on_onnx_adds_up_to_the_prediction(server):
    x = rows(3, seed=3)[:, :4]
    a, out, doc = explain(server, "mlp", x, name="input")
    p = doc["parameters"]
    assert p["method"] == "kernel_shap" and p["explained_output"] == "probabilities", p
    assert p["background_rows"] == 16 and p["evaluations"] == 3 * 16 * 16, p  # 2^4 coalitions
    assert a.shape == (3, 3, 5)
    probs = infer(server, "mlp", x, "input", "probabilities")
    expected_value = np.array(out["expected_value"]["data"])
    np.testing.assert_allclose(a[..., 4], np.broadcast_to(expected_value, (3, 3)), rtol=1e-12)
    # Additivity: sum_i phi_i = f(x) - E[f] exactly (up to the model's FP32 output).
    np.testing.assert_allclose(a[..., :4].sum(axis=-1), probs - expected_value, atol=1e-6)
    # Probabilities sum to one, so each feature's attributions over the classes sum to zero.
    np.testing.assert_allclose(a[..., :4].sum(axis=1), 0.0, atol=1e-6)
    assert out["feature_names"]["data"] == ["sepal_length", "sepal_width", "petal_length", "petal_width", "bias"]


def test_permutation_within_the_evaluation_budget(server):
    x = rows(2, seed=4)[:, :4]
    a, out, doc = explain(server, "mlp_perm", x, name="input")
    p = doc["parameters"]
    # 1200 rows / 16 background rows = 75 coalitions: none, all, and 12 pairs of orders
    # with 3 inner prefixes each (72), for each of the 2 rows.
    assert p["method"] == "permutation", p
    assert p["permutations"] == 24 and p["evaluations"] == 2 * 74 * 16, p
    probs = infer(server, "mlp_perm", x, "input", "probabilities")
    np.testing.assert_allclose(a[..., :4].sum(axis=-1), probs - np.array(out["expected_value"]["data"]), atol=1e-6)


def test_linear_model_attributions_are_weight_times_distance(server, models):
    x = np.random.default_rng(6).standard_normal((4, N))
    a, out, doc = explain(server, "sk_linear", x, name="x")
    assert doc["parameters"]["method"] == "kernel_shap", doc
    assert a.shape == (4, N + 1)
    w = models.linear.coef_
    # phi_i(x) = w_i (x_i - mean_i): between two rows it moves by exactly w_i (x_i - x'_i).
    np.testing.assert_allclose(a[1:, :N] - a[0, :N], w * (x[1:] - x[0]), rtol=1e-9, atol=1e-9)
    pred = infer(server, "sk_linear", x, "x", "predict")
    np.testing.assert_allclose(a.sum(axis=-1), pred, rtol=1e-9, atol=1e-9)
    # And the implied background mean is the profile's: close to the training mean.
    # (features 0 and 1, whose weights are far from 0).
    implied_mean = x[0, :2] - a[0, :2] / w[:2]
    assert np.all(np.abs(implied_mean - models.x_train.mean(axis=0)[:2]) < 0.2), implied_mean


def bad(server, path: str, payload, status: int, *needles: str) -> None:
    got, doc = post(server, path, payload)
    assert got == status, (got, doc)
    for n in needles:
        assert n in doc.get("error", ""), doc


def test_bad_requests_name_the_field_and_the_server_goes_on(server, models):
    x = rows(2, seed=7)
    bad(server, "/v2/models/xgb_off/explain", body(x), 400, "monitoring.explain.enabled")
    bad(server, "/v2/models/xgb_reg/explain", body(x, name="nope"), 400, "'nope'")
    bad(server, "/v2/models/xgb_reg/explain", body(x[:, :3]), 400, "input__0")
    bad(server, "/v2/models/xgb_reg/explain", body(rows(9, seed=8)), 400, "monitoring.explain.max_rows", "9 rows")
    bad(server, "/v2/models/xgb_reg/explain", "{not json", 400)
    bad(server, "/v2/models/xgb_reg/explain", body(x.astype(np.float64)), 400, "FP64")
    bad(server, "/v2/models/no_such_model/explain", body(x), 404, "no_such_model")
    bad(server, "/v2/models/xgb_reg/versions/9/explain", body(x), 404)
    four = x[:, :4]
    bad(server, "/v2/models/mlp_tree/explain", body(four, name="input"), 400, "monitoring.explain.method",
        "tree_shap", "onnxruntime")
    bad(server, "/v2/models/mlp_tight/explain", body(four, name="input"), 400, "monitoring.explain.max_evaluations")
    bad(server, "/v2/models/mlp_noprofile/explain", body(four, name="input"), 400, "profile.json")
    bad(server, "/v2/models/mlp/explain", body(four, name="input", outputs=[{"name": "nope"}]), 400, "'nope'")
    r = server.get("/v2/models/xgb_reg/explain")
    assert r.status_code == 405
    # The typo is reported at load, and by the request.
    index = server.post("/v2/repository/index", json={}).json()
    typo = [e for e in index if e["name"] == "mlp_typo"][0]
    assert "monitoring.explain.max_row" in typo.get("reason", ""), typo
    bad(server, "/v2/models/mlp_typo/explain", body(four, name="input"), 400, "monitoring.explain.max_row")
    # Still serving, explanations and predictions alike.
    explain(server, "xgb_reg", x)
    assert infer(server, "xgb_reg", x, "input__0", "output__0").shape == (2, 1)


def test_a_requested_output_is_the_one_explained(server):
    x = rows(2, seed=9)[:, :4]
    a, out, doc = explain(server, "mlp", x, name="input", outputs=[{"name": "label"}])
    assert doc["parameters"]["explained_output"] == "label", doc
    label = infer(server, "mlp", x, "input", "label")
    np.testing.assert_allclose(a[..., :4].sum(axis=-1), label.reshape(a.shape[0], -1)[:, 0] -
                               np.array(out["expected_value"]["data"])[0], atol=1e-9)
