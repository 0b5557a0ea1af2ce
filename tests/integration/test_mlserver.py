"""MLServer compatibility: a model repository in MLServer's layout (model-settings.json
beside the model file, no version folders) holding XGBoost models trained here by the
xgboost package loads unchanged and answers what xgboost itself predicts, over REST
(tritonclient.http) and gRPC (tritonclient.grpc); its batching and worker settings
become ferry's; malformed settings and implementations ferry cannot serve leave their
models UNAVAILABLE with a precise reason.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
import xgboost as xgb

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
    srv = ferry_module_factory.start(repos=repo.root, wait="live", name="mlserver")
    fh.wait_models_ready(srv, ["income", "minimal"])
    return srv



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
    by_name = {e["name"]: e for e in http.get_model_repository_index()}
    expectations = {
        "broken_json": ("model-settings.json", "invalid JSON at line 2"),
        "unknown_impl": ("implementation 'mlserver_mllib.MLlibModel' has no ferry runtime",
                         "mlserver_xgboost.XGBoostModel"),
        "bad_dtype": ("inputs 'x': unknown datatype 'float32'",),
    }
    for model, mentions in expectations.items():
        entry = by_name.get(model)
        assert entry is not None and entry.get("state") == "UNAVAILABLE", entry
        for m in mentions:
            assert m in entry.get("reason", ""), f"{model}: {m!r} not in {entry.get('reason')!r}"
