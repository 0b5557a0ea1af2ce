"""FP16 inputs in JSON `data` (as KServe accepts them): JSON numbers are rounded to the
nearest binary16 (ties to even) exactly as numpy's float16 conversion does, checked on an
ONNX model that doubles its FP16 input (Y = X + X, exact in FP16)."""

from __future__ import annotations

import numpy as np
import pytest

import grpc_helpers as gh


@pytest.fixture(scope="module")
def server(ferry_module_factory, tmp_path_factory):
    repo = gh.build_dtype_repo(tmp_path_factory.mktemp("fp16") / "repo")
    return ferry_module_factory.start(repos=repo, name="fp16")


def test_fp16_json_data_rounds_like_numpy(server):
    rng = np.random.default_rng(7)
    values = np.concatenate([
        rng.standard_normal(200) * 10,
        rng.uniform(-1e-5, 1e-5, 100),                         # subnormals
        [1.00048828125, 1.00146484375, 2049.0, 2051.0, -0.0],  # exact ties
        [30000.0, 65504.0, 65519.0, 65520.0, -1e6],           # largest, last below and at overflow
    ])
    values = values[: len(values) // 4 * 4]
    x = values.reshape(-1, 4)  # 77 rows in one request: config-less, max_batch_size 1024
    resp = server.post("/v2/models/fp16_add/infer", json={"inputs": [
        {"name": "X", "shape": list(x.shape), "datatype": "FP16", "data": x.ravel().tolist()}]})
    assert resp.status_code == 200, resp.text
    out = resp.json()["outputs"][0]
    assert out["datatype"] == "FP16"
    # Overflow comes back as Infinity, which json reads as inf, like numpy's.
    want = (x.astype(np.float16) + x.astype(np.float16)).astype(np.float64)
    got = np.array(out["data"], dtype=np.float64).reshape(x.shape)
    np.testing.assert_array_equal(got, want)


def test_fp16_json_data_that_is_not_a_number_names_the_input(server):
    resp = server.post("/v2/models/fp16_add/infer", json={"inputs": [
        {"name": "X", "shape": [1, 4], "datatype": "FP16", "data": [1, 2, "3", 4]}]})
    assert resp.status_code == 400
    assert "'X'" in resp.json()["error"] and "JSON number" in resp.json()["error"]
