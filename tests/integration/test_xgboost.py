"""The XGBoost runtime: models trained here with the xgboost package, served by ferry,
checked against xgboost's own predictions over REST (tritonclient.http) and gRPC
(tritonclient.grpc).

The package (pinned to 1.7, the C library's minor version) writes the models; two more
come from tests/integration/data/xgboost3/, written by xgboost 3.2 with their reference
outputs, since 1.7 cannot write base_score the way 3.x does.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import grpc
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
import xgboost as xgb
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

import ferry_helpers as fh

XGB3_DIR = Path(__file__).resolve().parent / "data" / "xgboost3"
N_FEATURES = 6
RTOL, ATOL = 1e-5, 1e-6


# --------------------------------------------------------------------------- models


def _train_data(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((300, N_FEATURES)).astype(np.float32)
    score = x[:, 0] * 2 + x[:, 1] - x[:, 2] * x[:, 3]
    return x, score


def _train(params: dict, label_of, rounds: int = 8) -> xgb.Booster:
    x, score = _train_data()
    return xgb.train({"max_depth": 3, "eta": 0.3, **params}, xgb.DMatrix(x, label=label_of(score)), rounds)


def _write(repo: Path, name: str, booster: xgb.Booster, filename: str, config: str | None = None,
           yaml: str | None = None) -> None:
    (repo / name / "1").mkdir(parents=True)
    booster.save_model(str(repo / name / "1" / filename))
    if config is not None:
        (repo / name / "config.pbtxt").write_text(config)
    if yaml is not None:
        (repo / name / "model.yaml").write_text(yaml)


class Models:
    """The trained boosters, by served model name, and how to get xgboost's reference output."""

    def __init__(self, repo: Path):
        self.repo = repo
        self.reg = _train({"objective": "reg:squarederror"}, lambda s: s)
        self.binary = _train({"objective": "binary:logistic"}, lambda s: (s > 0).astype(np.float32))
        self.multi = _train({"objective": "multi:softprob", "num_class": 3},
                            lambda s: np.digitize(s, [-1, 1]).astype(np.float32))
        self.linear = _train({"booster": "gblinear", "objective": "reg:squarederror"}, lambda s: s, rounds=5)

        # No config at all, UBJSON: everything comes from the file.
        _write(repo, "xgb_regressor", self.reg, "model.ubj")
        # No config, JSON: a classifier answers predict_proba [1-p, p].
        _write(repo, "xgb_binary", self.binary, "model.json")
        # Triton config naming the backend, its own tensor names, and dynamic batching.
        _write(repo, "xgb_multiclass", self.multi, "model.json", config=f"""
name: "xgb_multiclass"
backend: "xgboost"
max_batch_size: 32
input [ {{ name: "features" data_type: TYPE_FP32 dims: [ {N_FEATURES} ] }} ]
output [ {{ name: "probabilities" data_type: TYPE_FP32 dims: [ 3 ] }} ]
dynamic_batching {{ max_queue_delay_microseconds: 2000 }}
""")
        # Raw margins, by parameter.
        _write(repo, "xgb_binary_margin", self.binary, "model.json", config="""
backend: "xgboost"
parameters { key: "output_margin" value: { string_value: "true" } }
""")
        # model.yaml, predict_proba off: the booster's own p, one column.
        _write(repo, "xgb_binary_p", self.binary, "model.json", yaml="""
backend: xgboost
parameters:
  predict_proba: "false"
""")
        # FP64 requests, read by XGBoost in place.
        _write(repo, "xgb_fp64", self.reg, "model.json", config=f"""
backend: "xgboost"
max_batch_size: 8
input [ {{ name: "x" data_type: TYPE_FP64 dims: [ {N_FEATURES} ] }} ]
""")
        # A width the config leaves open: the runtime itself checks the feature count.
        _write(repo, "xgb_anywidth", self.reg, "model.json", config="""
backend: "xgboost"
max_batch_size: 8
input [ { name: "x" data_type: TYPE_FP32 dims: [ -1 ] } ]
""")
        # gblinear, in the third accepted file name (XGBoost's old binary format): no
        # in-place prediction in XGBoost, so the DMatrix path.
        _write(repo, "xgb_linear", self.linear, "xgboost.model")
        # Models written by xgboost 3.2 (vector base_score, per class for multi-class).
        for name, file, target in (("xgb3_multi", "multi_softprob.json", "model.json"),
                                   ("xgb3_regression", "regression.ubj", "model.ubj")):
            (repo / name / "1").mkdir(parents=True)
            shutil.copy(XGB3_DIR / file, repo / name / "1" / target)
        self.xgb3 = json.loads((XGB3_DIR / "expected.json").read_text())

        # Failures: a corrupt file, and a config whose input width is not the model's.
        (repo / "xgb_corrupt" / "1").mkdir(parents=True)
        (repo / "xgb_corrupt" / "1" / "model.json").write_text('{"learner": {"gradient_booster": oops')
        _write(repo, "xgb_wrong_width", self.reg, "model.json", config=f"""
backend: "xgboost"
max_batch_size: 8
input [ {{ name: "wide_input" data_type: TYPE_FP32 dims: [ {N_FEATURES + 2} ] }} ]
""")

    # name -> (input name, input dtype, output name, expected-output function)
    def spec(self, name: str):
        def proba(b):
            return lambda x: np.stack([1 - b.inplace_predict(x), b.inplace_predict(x)], axis=1)

        def col(f):
            return lambda x: f(x).reshape(-1, 1)

        return {
            "xgb_regressor": ("input__0", np.float32, "output__0", col(self.reg.inplace_predict)),
            "xgb_binary": ("input__0", np.float32, "output__0", proba(self.binary)),
            "xgb_multiclass": ("features", np.float32, "probabilities", self.multi.inplace_predict),
            "xgb_binary_margin": ("input__0", np.float32, "output__0",
                                  col(lambda x: self.binary.inplace_predict(x, predict_type="margin"))),
            "xgb_binary_p": ("input__0", np.float32, "output__0", col(self.binary.inplace_predict)),
            "xgb_fp64": ("x", np.float64, "output__0", col(self.reg.inplace_predict)),
            "xgb_anywidth": ("x", np.float32, "output__0", col(self.reg.inplace_predict)),
            "xgb_linear": ("input__0", np.float32, "output__0",
                           col(lambda x: self.linear.predict(xgb.DMatrix(x)))),
        }[name]


SERVED = ["xgb_regressor", "xgb_binary", "xgb_multiclass", "xgb_binary_margin", "xgb_binary_p", "xgb_fp64",
          "xgb_anywidth", "xgb_linear"]
FAILING = ["xgb_corrupt", "xgb_wrong_width"]


def rows(n: int, seed: int, dtype=np.float32, width: int = N_FEATURES) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, width)).astype(dtype)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Models:
    return Models(tmp_path_factory.mktemp("xgb") / "repo")


@pytest.fixture(scope="module")
def server(ferry_module_factory, models):
    return fh.start_with_models(ferry_module_factory, models.repo, SERVED + ["xgb3_multi", "xgb3_regression"],
                                name="xgboost")



def http_infer(client, model: str, x: np.ndarray, in_name: str, out_name: str, binary: bool = True) -> np.ndarray:
    inp = httpclient.InferInput(in_name, list(x.shape), np_to_triton_dtype(x.dtype))
    inp.set_data_from_numpy(x, binary_data=binary)
    out = httpclient.InferRequestedOutput(out_name, binary_data=binary)
    return client.infer(model, [inp], outputs=[out]).as_numpy(out_name)


def grpc_infer(client, model: str, x: np.ndarray, in_name: str, out_name: str) -> np.ndarray:
    inp = grpcclient.InferInput(in_name, list(x.shape), np_to_triton_dtype(x.dtype))
    inp.set_data_from_numpy(x)
    return client.infer(model, [inp], outputs=[grpcclient.InferRequestedOutput(out_name)]).as_numpy(out_name)


def assert_close(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    expected = np.asarray(expected, dtype=np.float32)
    assert actual.dtype == np.float32, f"{what}: dtype {actual.dtype}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, expected {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL, err_msg=what)


# --------------------------------------------------------------------------- tests


def test_repository_index_shows_failures_with_reasons(server, http):
    # XGBoost's own parser message, without its stack trace.
    fh.assert_repository_index(
        http, ready=SERVED + ["xgb3_multi", "xgb3_regression"],
        unavailable={"xgb_corrupt": ["model.json", "character position"],
                     "xgb_wrong_width": ["wide_input", str(N_FEATURES)]},
        absent_from_reason={"xgb_corrupt": "Stack trace"})


def test_autocompleted_config_and_metadata(server, http):
    meta = http.get_model_metadata("xgb_regressor")
    assert meta["platform"] == "xgboost", meta
    assert meta["inputs"] == [{"name": "input__0", "datatype": "FP32", "shape": [-1, N_FEATURES]}], meta
    assert meta["outputs"] == [{"name": "output__0", "datatype": "FP32", "shape": [-1, 1]}], meta
    config = http.get_model_config("xgb_regressor")
    assert config["backend"] == "xgboost" and config["max_batch_size"] == 1024, config
    binary = http.get_model_metadata("xgb_binary")
    assert binary["outputs"][0]["shape"] == [-1, 2], binary
    multi = http.get_model_metadata("xgb_multiclass")
    assert [i["name"] for i in multi["inputs"]] == ["features"], multi
    assert multi["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]}], multi


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("model", SERVED)
def test_http_matches_xgboost(http, models, model, binary):
    in_name, dtype, out_name, expected = models.spec(model)
    x = rows(7, seed=SERVED.index(model), dtype=dtype)
    if binary and model == "xgb_binary":  # a missing value (NaN), which XGBoost routes its own way
        x[2, 1] = np.nan
    got = http_infer(http, model, x, in_name, out_name, binary=binary)
    assert_close(got, expected(x), f"{model} over REST")


@pytest.mark.parametrize("model", SERVED)
def test_grpc_matches_xgboost(grpc_client, models, model):
    in_name, dtype, out_name, expected = models.spec(model)
    x = rows(5, seed=17, dtype=dtype)
    got = grpc_infer(grpc_client, model, x, in_name, out_name)
    assert_close(got, expected(x), f"{model} over gRPC")


def test_a_whole_table_in_one_request(http, models):
    x = rows(1024, seed=3)
    assert_close(http_infer(http, "xgb_regressor", x, "input__0", "output__0"),
                 models.reg.inplace_predict(x).reshape(-1, 1), "1024 rows")


def test_models_written_by_xgboost3(http, grpc_client, models):
    ref = models.xgb3
    x = np.asarray(ref["inputs"], dtype=np.float32)
    assert_close(http_infer(http, "xgb3_multi", x, "input__0", "output__0"), ref["multi_softprob"],
                 f"xgb3_multi (written by xgboost {ref['xgboost_version']})")
    assert_close(grpc_infer(grpc_client, "xgb3_regression", x, "input__0", "output__0"),
                 np.asarray(ref["regression"]).reshape(-1, 1), "xgb3_regression")


def test_concurrent_requests_are_batched_correctly(server, models):
    """xgb_multiclass batches dynamically: each client still gets its own rows."""

    def check(client, i: int, j: int) -> None:
        x = rows(1 + (i + j) % 4, seed=100 * i + j)
        got = http_infer(client, "xgb_multiclass", x, "features", "probabilities")
        assert_close(got, models.multi.inplace_predict(x), f"client {i} request {j}")

    failures = fh.concurrent_http_clients(server, clients=6, requests_each=5, check=check)
    assert not failures, failures[:3]


def test_wrong_feature_count_is_400_naming_the_input(server):
    body = fh.json_request({"input__0": rows(2, seed=1, width=N_FEATURES - 1)})
    fh.assert_error(server.post("/v2/models/xgb_regressor/infer", json=body), 400, "input__0")
    # Where the config leaves the width open, the runtime's own check answers.
    body = fh.json_request({"x": rows(2, seed=1, width=N_FEATURES + 3)})
    msg = fh.assert_error(server.post("/v2/models/xgb_anywidth/infer", json=body), 400, "'x'")
    assert str(N_FEATURES) in msg, msg


def test_wrong_feature_count_over_grpc(grpc_client):
    x = rows(2, seed=1, width=N_FEATURES + 1)
    with pytest.raises(InferenceServerException) as info:
        grpc_infer(grpc_client, "xgb_multiclass", x, "features", "probabilities")
    assert info.value.status() == str(grpc.StatusCode.INVALID_ARGUMENT), info.value
    assert "features" in (info.value.message() or ""), info.value


def test_failed_model_answers_unavailable(http):
    with pytest.raises(InferenceServerException):
        http_infer(http, "xgb_corrupt", rows(1, seed=0), "input__0", "output__0")
