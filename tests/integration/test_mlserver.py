"""MLServer compatibility: a model repository in MLServer's layout (model-settings.json
beside the model file, no version folders) holding XGBoost, scikit-learn and LightGBM
models trained here by those frameworks' own packages loads unchanged and answers what
each framework itself predicts, over REST (tritonclient.http) and gRPC
(tritonclient.grpc); its batching and worker settings become ferry's; malformed settings
and implementations ferry cannot serve leave their models UNAVAILABLE with a precise
reason.
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import joblib
import lightgbm as lgb
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
import xgboost as xgb
from sklearn.linear_model import LogisticRegression

import ferry_helpers as fh

N_FEATURES = 5
RTOL, ATOL = 1e-5, 1e-6


def _settings(folder: Path, settings: dict | str) -> None:
    folder.mkdir(parents=True)
    text = settings if isinstance(settings, str) else json.dumps(settings, indent=2)
    (folder / "model-settings.json").write_text(text)


class Repo:
    def __init__(self, root: Path):
        rng = np.random.default_rng(0)
        x = rng.standard_normal((200, N_FEATURES)).astype(np.float32)
        y = x[:, 0] * 3 - x[:, 1] + x[:, 2] * x[:, 3]
        self.booster = xgb.train({"objective": "reg:squarederror", "max_depth": 3, "eta": 0.3},
                                 xgb.DMatrix(x, label=y), 10)
        self.root = root
        # As MLServer's docs write them: uri, a version, adaptive batching, workers.
        _settings(root / "income", {
            "name": "income",
            "implementation": "mlserver_xgboost.XGBoostModel",
            "parameters": {"uri": "./income-model.json", "version": "2", "content_type": "np"},
            "inputs": [{"name": "features", "datatype": "FP32", "shape": [-1, N_FEATURES]}],
            "max_batch_size": 16,
            "max_batch_time": 0.005,
            "parallel_workers": 2,
        })
        self.booster.save_model(str(root / "income" / "income-model.json"))
        # The least an MLServer model needs: the implementation, and a file with one of
        # its runtime's well-known names (model.bst: XGBoost's legacy binary format).
        _settings(root / "minimal", {"implementation": "mlserver_xgboost.XGBoostModel"})
        self.booster.save_model(str(root / "minimal" / "model.bst"))
        # scikit-learn and LightGBM as MLServer's docs write them (served by ferry's
        # Python worker runtimes; inputs and outputs auto-completed with MLServer's names).
        self.classifier = LogisticRegression(max_iter=500).fit(x, y > 0)
        # Declared outputs are served as declared (sk_uri_only below shows what ferry
        # declares when a folder declares none).
        _settings(root / "sk_classifier", {
            "name": "sk_classifier", "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": "./model.joblib", "version": "v0.1.0"},
            "outputs": [{"name": "predict", "datatype": "INT64", "shape": [-1]},
                        {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 2]}]})
        joblib.dump(self.classifier, root / "sk_classifier" / "model.joblib")
        # Only the uri, as most MLServer folders are: the loaded estimator tells its outputs
        # (every method it has, by name) and predict's datatype (its integer labels).
        labels = np.digitize(y, [-1.0, 1.0]).astype(np.int64)  # classes 0, 1, 2
        self.labeller = LogisticRegression(max_iter=500).fit(x, labels)
        _settings(root / "sk_uri_only", {"implementation": "mlserver_sklearn.SKLearnModel",
                                         "parameters": {"uri": "./model.joblib"}})
        joblib.dump(self.labeller, root / "sk_uri_only" / "model.joblib")
        self.lgb_booster = lgb.train({"objective": "regression", "num_leaves": 8, "verbose": -1},
                                     lgb.Dataset(x, label=y), 10)
        _settings(root / "lgb_regressor", {
            "name": "lgb_regressor", "implementation": "mlserver_lightgbm.LightGBMModel",
            "parameters": {"uri": "./model.bst"}})
        self.lgb_booster.save_model(str(root / "lgb_regressor" / "model.bst"))
        # Adaptive batching as MLServer spells it: up to 8 requests or 50 ms.
        _settings(root / "sk_batched", {"implementation": "mlserver_sklearn.SKLearnModel",
                                        "parameters": {"uri": "./model.joblib"},
                                        "max_batch_size": 8, "max_batch_time": 0.05})
        joblib.dump(self.labeller, root / "sk_batched" / "model.joblib")
        # Failures.
        _settings(root / "broken_json", '{"implementation": "mlserver_xgboost.XGBoostModel",\n  "parameters": {]}')
        _settings(root / "unknown_impl", {"implementation": "mlserver_mllib.MLlibModel"})
        _settings(root / "bad_dtype", {"implementation": "mlserver_xgboost.XGBoostModel",
                                       "inputs": [{"name": "x", "datatype": "float32", "shape": [-1, 5]}]})

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.booster.predict(xgb.DMatrix(x))


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Repo:
    return Repo(tmp_path_factory.mktemp("mlserver") / "repo")


@pytest.fixture(scope="module")
def server(ferry_module_factory, repo):
    return fh.start_with_models(ferry_module_factory, repo.root, ["income", "minimal", "sk_classifier", "lgb_regressor",
                                                                    "sk_uri_only", "sk_batched"],
                                name="mlserver", args=["--python-executable", sys.executable], timeout=90)



def rows(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, N_FEATURES)).astype(np.float32)


def test_settings_become_ferry_config(http):
    config = http.get_model_config("income")
    assert config["backend"] == "xgboost"
    assert config["max_batch_size"] == 16
    assert config["dynamic_batching"]["max_queue_delay_microseconds"] == 5000  # 0.005 s
    assert sum(g["count"] for g in config["instance_group"]) == 2
    assert config["input"][0]["name"] == "features" and config["input"][0]["dims"] == [N_FEATURES]
    # parameters.version is the version served; MLServer's layout has no version folder.
    assert http.is_model_ready("income", "2")
    assert [e["version"] for e in http.get_model_repository_index() if e["name"] == "income"] == ["2"]
    assert http.is_model_ready("minimal", "1")


def test_answers_as_xgboost_over_rest_and_grpc(http, grpc_client, repo):
    x = rows(9, seed=1)
    inp = httpclient.InferInput("features", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    got = http.infer("income", [inp]).as_numpy("output__0")
    np.testing.assert_allclose(got.reshape(-1), repo.predict(x), rtol=RTOL, atol=ATOL)

    x = rows(4, seed=2)
    ginp = grpcclient.InferInput("input__0", list(x.shape), "FP32")
    ginp.set_data_from_numpy(x)
    got = grpc_client.infer("minimal", [ginp]).as_numpy("output__0")
    np.testing.assert_allclose(got.reshape(-1), repo.predict(x), rtol=RTOL, atol=ATOL)


def test_bad_settings_leave_the_model_unavailable_with_a_precise_reason(http):
    fh.assert_repository_index(http, ready=[], unavailable={
        "broken_json": ["model-settings.json", "invalid JSON at line 2"],
        "unknown_impl": ["implementation 'mlserver_mllib.MLlibModel' has no ferry runtime",
                         "mlserver_xgboost.XGBoostModel"],
        "bad_dtype": ["inputs 'x': unknown datatype 'float32'"],
    })


def test_sklearn_and_lightgbm_answer_as_their_frameworks(http, grpc_client, repo):
    x = rows(6, seed=3).astype(np.float64)
    # scikit-learn: each output is the estimator method of that name.
    inp = httpclient.InferInput("input-0", list(x.shape), "FP64")
    inp.set_data_from_numpy(x)
    got = http.infer("sk_classifier", [inp], outputs=[httpclient.InferRequestedOutput("predict")]).as_numpy("predict")
    np.testing.assert_array_equal(got.reshape(-1), repo.classifier.predict(x))
    ginp = grpcclient.InferInput("input-0", list(x.shape), "FP64")
    ginp.set_data_from_numpy(x)
    out = grpcclient.InferRequestedOutput("predict_proba")
    got = grpc_client.infer("sk_classifier", [ginp], outputs=[out]).as_numpy("predict_proba")
    np.testing.assert_allclose(got, repo.classifier.predict_proba(x), rtol=RTOL, atol=ATOL)
    # LightGBM.
    got = grpc_client.infer("lgb_regressor", [ginp]).as_numpy("predict")
    np.testing.assert_allclose(got.reshape(-1), repo.lgb_booster.predict(x), rtol=RTOL, atol=ATOL)


def test_uri_only_sklearn_answers_every_method_in_the_labels_datatype(http, grpc_client, repo):
    """An MLServer folder with only a uri: predict comes back as the estimator's own
    integer labels (not FP64), and predict_proba is there to be asked for by name, as
    MLServer answers."""
    md = http.get_model_metadata("sk_uri_only")
    outs = {o["name"]: o for o in md["outputs"]}
    assert md["outputs"][0]["name"] == "predict", md["outputs"]
    assert outs["predict"]["datatype"] == "INT64" and outs["predict"]["shape"] == [-1], outs
    assert outs["predict_proba"]["datatype"] == "FP64" and outs["predict_proba"]["shape"] == [-1, 3], outs
    assert sorted(outs) == ["predict", "predict_proba"], sorted(outs)
    x = rows(7, seed=5).astype(np.float64)
    inp = httpclient.InferInput("input-0", list(x.shape), "FP64")
    inp.set_data_from_numpy(x)
    res = http.infer("sk_uri_only", [inp], outputs=[httpclient.InferRequestedOutput("predict"),
                                                    httpclient.InferRequestedOutput("predict_proba")])
    got = res.as_numpy("predict")
    assert got.dtype == np.int64, got.dtype
    np.testing.assert_array_equal(got.reshape(-1), repo.labeller.predict(x))
    np.testing.assert_allclose(res.as_numpy("predict_proba"), repo.labeller.predict_proba(x), rtol=RTOL, atol=ATOL)
    # Without outputs asked for: every declared one (the protocol's rule), over gRPC too.
    ginp = grpcclient.InferInput("input-0", list(x.shape), "FP64")
    ginp.set_data_from_numpy(x)
    r = grpc_client.infer("sk_uri_only", [ginp])
    assert [o.name for o in r.get_response().outputs] == ["predict", "predict_proba"]
    np.testing.assert_array_equal(r.as_numpy("predict").reshape(-1), repo.labeller.predict(x))



def test_max_batch_size_and_time_batch_concurrent_sklearn_requests(http, server, repo):
    """max_batch_size / max_batch_time in model-settings.json turn on dynamic batching
    for a scikit-learn model: 8 concurrent one-row requests each get their own row's
    answer, from fewer predict calls than requests (the statistics extension's
    execution_count)."""
    config = http.get_model_config("sk_batched")
    assert config["max_batch_size"] == 8 and config["dynamic_batching"]["max_queue_delay_microseconds"] == 50000, config
    x = rows(8, seed=9).astype(np.float64)
    before = http.get_inference_statistics("sk_batched")["model_stats"][0]

    def one(i):
        c = httpclient.InferenceServerClient(server.url, network_timeout=60)
        try:
            inp = httpclient.InferInput("input-0", [1, N_FEATURES], "FP64")
            inp.set_data_from_numpy(x[i:i + 1])
            r = c.infer("sk_batched", [inp], outputs=[httpclient.InferRequestedOutput("predict_proba")])
            return r.as_numpy("predict_proba")
        finally:
            c.close()

    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(one, range(8)))
    np.testing.assert_allclose(np.concatenate(got), repo.labeller.predict_proba(x), rtol=RTOL, atol=ATOL)
    after = http.get_inference_statistics("sk_batched")["model_stats"][0]
    inferences = int(after["inference_count"]) - int(before["inference_count"])
    executions = int(after["execution_count"]) - int(before["execution_count"])
    assert inferences == 8, (before, after)
    assert 1 <= executions < inferences, f"{inferences} requests ran as {executions} predict calls"
