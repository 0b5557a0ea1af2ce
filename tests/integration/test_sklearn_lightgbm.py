"""The scikit-learn and LightGBM runtimes (ferry_sdk.runtimes, in Python worker
processes): models trained here with the frameworks' own packages, served by ferry
over REST and gRPC, checked against the same objects' predictions."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import joblib
import lightgbm as lgb
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tritonclient.utils import InferenceServerException

import ferry_helpers as fh

N_FEATURES = 5


def data(seed: int = 0, n: int = 200):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, N_FEATURES))
    score = 2 * x[:, 0] - x[:, 1] + 0.5 * x[:, 2] * x[:, 3]
    return x, score


class Models:
    def __init__(self, repo: Path):
        self.repo = repo
        x, score = data()
        label3 = np.digitize(score, [-1, 1])
        self.logreg = LogisticRegression(max_iter=500).fit(x, label3)
        self.regressor = LinearRegression().fit(x, score)
        self.pipeline = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=10, max_depth=4,
                                                                              random_state=0)).fit(x, score > 0)
        self.lgb_reg = lgb.train({"objective": "regression", "verbose": -1, "num_leaves": 8},
                                 lgb.Dataset(x, label=score), num_boost_round=10)
        self.lgb_multi = lgb.train({"objective": "multiclass", "num_class": 3, "verbose": -1, "num_leaves": 8},
                                   lgb.Dataset(x, label=label3), num_boost_round=10)

        def folder(name: str) -> Path:
            (repo / name / "1").mkdir(parents=True)
            return repo / name

        # Both outputs declared, inputs left to the runtime: a request picks the method
        # by output name, as with MLServer.
        joblib.dump(self.logreg, folder("sk_logreg") / "1" / "model.joblib")
        (repo / "sk_logreg" / "config.pbtxt").write_text("""
backend: "sklearn"
output [ { name: "predict" data_type: TYPE_INT64 dims: [ -1 ] },
         { name: "predict_proba" data_type: TYPE_FP64 dims: [ -1, 3 ] } ]
""")
        # Only the method parameter: the output is auto-completed as predict_proba.
        joblib.dump(self.logreg, folder("sk_logreg_proba") / "1" / "model.joblib")
        (repo / "sk_logreg_proba" / "config.pbtxt").write_text(
            'parameters { key: "method" value: { string_value: "predict_proba" } }\n')
        # No config at all, pickle file name.
        with open(folder("sk_regressor") / "1" / "model.pkl", "wb") as f:
            pickle.dump(self.regressor, f)
        # A Pipeline, FP32 requests, dynamic batching, two workers.
        joblib.dump(self.pipeline, folder("sk_pipeline") / "1" / "model.pickle")
        (repo / "sk_pipeline" / "config.pbtxt").write_text(f"""
backend: "sklearn"
max_batch_size: 64
input [ {{ name: "features" data_type: TYPE_FP32 dims: [ {N_FEATURES} ] }} ]
output [ {{ name: "predict_proba" data_type: TYPE_FP32 dims: [ 2 ] }} ]
instance_group [ {{ count: 2 }} ]
dynamic_batching {{ }}
""")
        self.lgb_reg.save_model(str(folder("lgb_regressor") / "1" / "model.txt"))
        self.lgb_multi.save_model(str(folder("lgb_multiclass") / "1" / "model.bst"))
        # Declared inputs narrower than what the estimator was fitted on: refused at load.
        joblib.dump(self.logreg, folder("sk_wrong_width") / "1" / "model.joblib")
        (repo / "sk_wrong_width" / "config.pbtxt").write_text(f"""
backend: "sklearn"
max_batch_size: 8
input [ {{ name: "narrow" data_type: TYPE_FP64 dims: [ {N_FEATURES - 1} ] }} ]
""")
        # A file that is not a pickle: the load error names it.
        (folder("sk_corrupt") / "1" / "model.joblib").write_bytes(b"definitely not a pickle")


HTTP_TIMEOUT_S = 30  # the conftest http client's timeout: workers may be (re)starting


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Models:
    return Models(tmp_path_factory.mktemp("sk") / "repo")


SERVED = ["sk_logreg", "sk_logreg_proba", "sk_regressor", "sk_pipeline", "lgb_regressor", "lgb_multiclass"]


@pytest.fixture(scope="module")
def server(ferry_module_factory, models):
    return fh.start_with_models(ferry_module_factory, models.repo, SERVED, "sklearn",
                                args=["--python-executable", sys.executable], timeout=90)


def infer(client, module, model: str, x: np.ndarray, out: str, in_name: str = "input-0"):
    dt = {np.float64: "FP64", np.float32: "FP32"}[x.dtype.type]
    inp = module.InferInput(in_name, list(x.shape), dt)
    inp.set_data_from_numpy(x)
    return client.infer(model, [inp], outputs=[module.InferRequestedOutput(out)]).as_numpy(out)


def test_logistic_regression_predict_and_predict_proba(http, models):
    x, _ = data(seed=1, n=9)
    labels = infer(http, httpclient, "sk_logreg", x, "predict")
    np.testing.assert_array_equal(labels, models.logreg.predict(x))
    assert labels.dtype == np.int64
    np.testing.assert_allclose(infer(http, httpclient, "sk_logreg", x, "predict_proba"),
                               models.logreg.predict_proba(x), rtol=1e-12)
    np.testing.assert_allclose(infer(http, httpclient, "sk_logreg_proba", x, "predict_proba"),
                               models.logreg.predict_proba(x), rtol=1e-12)


def test_autocompleted_configs(http):
    meta = http.get_model_metadata("sk_regressor")
    assert meta["platform"] == "sklearn", meta
    assert meta["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, -1]}], meta
    assert meta["outputs"] == [{"name": "predict", "datatype": "FP64", "shape": [-1]}], meta
    proba = http.get_model_metadata("sk_logreg_proba")
    # The loaded estimator tells its class count (no predict: method names the default).
    assert proba["outputs"] == [{"name": "predict_proba", "datatype": "FP64", "shape": [-1, 3]}], proba
    # LightGBM's text header gives the feature count and the classes.
    multi = http.get_model_metadata("lgb_multiclass")
    assert multi["platform"] == "lightgbm", multi
    assert multi["inputs"][0]["shape"] == [-1, N_FEATURES], multi
    assert multi["outputs"] == [{"name": "predict", "datatype": "FP64", "shape": [-1, 3]}], multi


def test_regressor_over_grpc(server, models):
    c = grpcclient.InferenceServerClient(fh.grpc_url(server))
    try:
        x, _ = data(seed=2, n=16)
        np.testing.assert_allclose(infer(c, grpcclient, "sk_regressor", x, "predict"), models.regressor.predict(x),
                                   rtol=1e-12)
        np.testing.assert_allclose(infer(c, grpcclient, "lgb_multiclass", x, "predict"),
                                   models.lgb_multi.predict(x), rtol=1e-12)
    finally:
        c.close()


def test_pipeline_with_batching(http, models):
    x, _ = data(seed=3, n=4)
    x32 = x.astype(np.float32)
    got = infer(http, httpclient, "sk_pipeline", x32, "predict_proba", in_name="features")
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, models.pipeline.predict_proba(x32).astype(np.float32), rtol=1e-6)


def test_lightgbm_regressor(http, models):
    x, _ = data(seed=4, n=32)
    np.testing.assert_allclose(infer(http, httpclient, "lgb_regressor", x, "predict"), models.lgb_reg.predict(x),
                               rtol=1e-12)


def test_bad_requests_and_files_name_the_problem(http, models):
    wide = np.zeros((2, N_FEATURES + 1))
    with pytest.raises(InferenceServerException) as e:
        infer(http, httpclient, "sk_regressor", wide, "predict")
    assert "400" in str(e.value.status()) and "6 features" in e.value.message() and "takes 5" in e.value.message()
    # The LightGBM config was completed from the file's header: the server itself refuses.
    with pytest.raises(InferenceServerException) as e:
        infer(http, httpclient, "lgb_regressor", wide, "predict")
    assert "400" in str(e.value.status()) and "[-1,5]" in e.value.message(), e.value.message()
    corrupt = {m["name"]: m for m in http.get_model_repository_index()}["sk_corrupt"]
    try:
        joblib.load(models.repo / "sk_corrupt" / "1" / "model.joblib")
        pytest.fail("joblib loaded the corrupt file")
    except Exception as exc:  # noqa: BLE001 - joblib's own reason, whatever it is
        reason = f"{type(exc).__name__}: {exc}"
    assert corrupt["state"] == "UNAVAILABLE", corrupt
    assert "model.joblib" in corrupt["reason"] and reason in corrupt["reason"], corrupt


def test_declared_width_that_disagrees_with_the_estimator_is_refused_at_load(server, http):
    fh.assert_repository_index(http, ready=[], unavailable={
        "sk_wrong_width": ["'narrow'", f"declares {N_FEATURES - 1} features", f"takes {N_FEATURES}"]})
