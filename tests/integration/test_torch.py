"""The PyTorch runtime: TorchScript models scripted and traced by torch itself, served by
ferry, checked against torch's own outputs over REST (tritonclient.http) and gRPC
(tritonclient.grpc).

torch comes from Debian (python3-torch 1.13, the version of the libtorch ferry links)
and is not importable from the test venv, so torch_models.py runs under
/usr/bin/python3 and leaves the models and torch's outputs (an npz) for these tests.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import grpc
import ml_dtypes
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

import ferry_helpers as fh

GENERATOR = Path(__file__).resolve().parent / "torch_models.py"
SYSTEM_PYTHON = "/usr/bin/python3"
SERVED = ["torch_mlp", "torch_multi_io", "torch_dtypes", "torch_embed", "torch_dict", "torch_strict"]
FAILING = ["torch_corrupt", "torch_extra_input", "torch_no_config"]
RTOL, ATOL = 1e-5, 1e-6


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, dict[str, np.ndarray]]:
    """Runs the generator; returns torch's arrays by model, then tensor name."""
    work = tmp_path_factory.mktemp("torch")
    proc = subprocess.run([SYSTEM_PYTHON, str(GENERATOR), str(work / "repo")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, f"torch_models.py failed:\n{proc.stdout}\n{proc.stderr}"
    by_model: dict[str, dict[str, np.ndarray]] = {"__repo__": work / "repo"}
    with np.load(work / "torch_reference.npz") as npz:
        for key in npz.files:
            model, tensor = key.split("/", 1)
            arr = npz[key]
            by_model.setdefault(model, {})[tensor] = arr.view(ml_dtypes.bfloat16) if "BF16" in tensor else arr
    return by_model


@pytest.fixture(scope="module")
def server(ferry_module_factory, reference):
    return fh.start_with_models(ferry_module_factory, reference["__repo__"], SERVED, name="torch")


def infer(client, module, model: str, inputs: dict[str, np.ndarray], outputs, binary: bool = True):
    """Runs one request with tritonclient's http or grpc module; returns outputs by name."""
    ins = []
    for name, arr in inputs.items():
        i = module.InferInput(name, list(arr.shape), np_to_triton_dtype(arr.dtype))
        if module is httpclient:
            i.set_data_from_numpy(arr, binary_data=binary)
        else:
            i.set_data_from_numpy(arr)
        ins.append(i)
    if module is httpclient:
        outs = [module.InferRequestedOutput(o, binary_data=binary) for o in outputs]
    else:
        outs = [module.InferRequestedOutput(o) for o in outputs]
    result = client.infer(model, ins, outputs=outs)
    return {o: result.as_numpy(o) for o in outputs}


def assert_same(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    assert actual is not None, f"{what}: missing"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype}, expected {expected.dtype}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, expected {expected.shape}"
    if expected.dtype.kind == "f" or expected.dtype == ml_dtypes.bfloat16:
        np.testing.assert_allclose(actual.astype(np.float64), expected.astype(np.float64), rtol=RTOL, atol=ATOL,
                                   err_msg=what)
    else:
        np.testing.assert_array_equal(actual, expected, err_msg=what)


def client_for(kind: str, http, grpc_client):
    return (http, httpclient) if kind == "http" else (grpc_client, grpcclient)


# --------------------------------------------------------------------------- tests


def test_repository_index_shows_failures_with_reasons(server, http):
    # libtorch's own reader message, without its C++ backtrace.
    fh.assert_repository_index(
        http, ready=SERVED,
        unavailable={"torch_corrupt": ["model.pt", "PytorchStreamReader"],
                     "torch_extra_input": ["'surplus'", "forward(features, scale)"]},
        absent_from_reason={"torch_corrupt": "Exception raised from"})


def test_metadata_names_the_platform(http):
    meta = http.get_model_metadata("torch_multi_io")
    assert meta["platform"] == "pytorch_libtorch", meta
    assert [i["name"] for i in meta["inputs"]] == ["scale", "features"], meta
    assert meta["outputs"][1] == {"name": "argmax", "datatype": "INT64", "shape": [-1, 1]}, meta
    # Chosen by the file name alone (no backend or platform in its config).
    assert http.get_model_metadata("torch_dtypes")["platform"] == "pytorch_libtorch"


@pytest.mark.parametrize("kind", ["http", "grpc"])
def test_mlp_matches_torch(http, grpc_client, reference, kind):
    client, module = client_for(kind, http, grpc_client)
    ref = reference["torch_mlp"]
    got = infer(client, module, "torch_mlp", {"INPUT__0": ref["INPUT__0"][:5]}, ["OUTPUT__0"])
    assert_same(got["OUTPUT__0"], ref["OUTPUT__0"][:5], f"torch_mlp over {kind}")


def test_mlp_over_json(http, reference):
    ref = reference["torch_mlp"]
    got = infer(http, httpclient, "torch_mlp", {"INPUT__0": ref["INPUT__0"][5:9]}, ["OUTPUT__0"], binary=False)
    assert_same(got["OUTPUT__0"], ref["OUTPUT__0"][5:9], "torch_mlp over JSON")


def test_concurrent_requests_are_batched_correctly(server, reference):
    """torch_mlp batches dynamically over two instances: each client gets its own rows."""
    ref = reference["torch_mlp"]

    def check(client, i: int, j: int) -> None:
        start, n = (i * 4 + j) % 40, 1 + (i + j) % 4
        got = infer(client, httpclient, "torch_mlp", {"INPUT__0": ref["INPUT__0"][start:start + n]}, ["OUTPUT__0"])
        assert_same(got["OUTPUT__0"], ref["OUTPUT__0"][start:start + n], f"client {i} request {j}")

    failures = fh.concurrent_http_clients(server, clients=6, requests_each=4, check=check)
    assert not failures, failures[:3]


@pytest.mark.parametrize("kind", ["http", "grpc"])
def test_multiple_inputs_bound_by_name_tuple_outputs(http, grpc_client, reference, kind):
    client, module = client_for(kind, http, grpc_client)
    ref = reference["torch_multi_io"]
    got = infer(client, module, "torch_multi_io", {"features": ref["features"], "scale": ref["scale"]},
                ["argmax", "weighted_sum"])
    assert_same(got["weighted_sum"], ref["weighted_sum"], "weighted_sum")
    assert_same(got["argmax"], ref["argmax"], "argmax")


@pytest.mark.parametrize("kind", ["http", "grpc"])
def test_every_numeric_datatype_round_trips(http, grpc_client, reference, kind):
    client, module = client_for(kind, http, grpc_client)
    ref = reference["torch_dtypes"]
    inputs = {k: v for k, v in ref.items() if k.startswith("IN_")}
    outputs = sorted(k for k in ref if k.startswith("OUT_"))
    assert len(inputs) == len(outputs) == 10
    got = infer(client, module, "torch_dtypes", inputs, outputs)
    for name in outputs:
        assert_same(got[name], ref[name], f"{name} over {kind}")


def test_int64_ids_into_a_traced_module(http, grpc_client, reference):
    ref = reference["torch_embed"]
    for client, module in ((http, httpclient), (grpc_client, grpcclient)):
        got = infer(client, module, "torch_embed", {"ids": ref["ids"]}, ["embedding"])
        assert_same(got["embedding"], ref["embedding"], f"torch_embed via {module.__name__}")


def test_dict_outputs_by_name_and_an_output_that_is_the_input(http, reference):
    ref = reference["torch_dict"]
    got = infer(http, httpclient, "torch_dict", {"x": ref["x"]}, ["same", "double", "negated"])
    for name in ("same", "double", "negated"):
        assert_same(got[name], ref[name], name)


def test_model_that_raises_is_400_with_torchs_message_and_the_server_goes_on(server, http, grpc_client, reference):
    ref = reference["torch_strict"]
    negative = -np.abs(ref["x"]) - 1
    body = fh.json_request({"x": negative})
    fh.assert_error(server.post("/v2/models/torch_strict/infer", json=body), 400, "torch_strict",
                    "AssertionError: inputs must be non-negative")
    # A width torch's own matmul check refuses (the config leaves it open).
    body = fh.json_request({"x": np.ones((2, 7), dtype=np.float32)})
    msg = fh.assert_error(server.post("/v2/models/torch_strict/infer", json=body), 400,
                          "mat1 and mat2 shapes cannot be multiplied")
    assert "Traceback" not in msg and "frame #" not in msg, msg
    with pytest.raises(InferenceServerException) as info:
        infer(grpc_client, grpcclient, "torch_strict", {"x": negative}, ["y"])
    assert info.value.status() == str(grpc.StatusCode.INVALID_ARGUMENT), info.value
    assert "inputs must be non-negative" in (info.value.message() or ""), info.value
    # The same instance still serves good requests.
    got = infer(http, httpclient, "torch_strict", {"x": ref["x"]}, ["y"])
    assert_same(got["y"], ref["y"], "torch_strict after errors")
    assert server.get("/v2/health/ready").status_code == 200


def test_failed_model_answers_unavailable(server):
    body = fh.json_request({"x": np.ones((1, 1), dtype=np.float32)})
    fh.assert_error(server.post("/v2/models/torch_corrupt/infer", json=body), 503, "torch_corrupt")
