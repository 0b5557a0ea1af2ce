"""ferry against the stock Triton HTTP client (tritonclient.http)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

import ferry_helpers as fh

MODELS = fh.MODEL_NAMES

EXPECTED_METADATA = fh.EXPECTED_METADATA

# Version each infer test addresses explicitly, and whose ONNX file is the reference.
TEST_VERSION = {"mlp_classifier": "1", "add_sub": "1", "int_ops": "1"}


def make_client(server) -> httpclient.InferenceServerClient:
    return httpclient.InferenceServerClient(server.url, connection_timeout=fh.HTTP_TIMEOUT_S,
                                            network_timeout=fh.HTTP_TIMEOUT_S)


@pytest.fixture
def client(ferry_server):
    c = make_client(ferry_server)
    yield c
    c.close()


def client_infer(client, model, inputs, version="", in_binary=True, out_mode="binary", **kw):
    """Run one infer through tritonclient; out_mode is "binary", "json" or "none" (list no outputs)."""
    infer_inputs = []
    for name, arr in inputs.items():
        inp = httpclient.InferInput(name, list(arr.shape), np_to_triton_dtype(arr.dtype))
        inp.set_data_from_numpy(arr, binary_data=in_binary)
        infer_inputs.append(inp)
    outputs = None
    if out_mode != "none" and model in fh.MODEL_OUTPUTS:
        outputs = [httpclient.InferRequestedOutput(n, binary_data=(out_mode == "binary"))
                   for n in fh.MODEL_OUTPUTS[model]]
    return client.infer(model, infer_inputs, model_version=version, outputs=outputs, **kw)


def result_arrays(result, names):
    return {n: result.as_numpy(n) for n in names if result.get_output(n) is not None}


def check_result(result, repo, model, version, inputs, names=None):
    names = list(names or fh.MODEL_OUTPUTS[model])
    expected = fh.reference(repo, model, version, inputs)
    got = result_arrays(result, fh.MODEL_OUTPUTS[model])
    fh.assert_outputs_match(got, {n: expected[n] for n in names}, names)
    for name in names:
        out = result.get_output(name)
        assert out["datatype"] == EXPECTED_METADATA[model]["outputs"][name][0]
        assert out["shape"] == list(expected[name].shape)
    resp = result.get_response()
    assert resp["model_name"] == model
    if "model_version" in resp:
        assert resp["model_version"] == str(version)


# --------------------------------------------------------------------------- health and metadata


def test_server_live_and_ready(client):
    assert client.is_server_live()
    assert client.is_server_ready()


def test_server_metadata(client):
    md = client.get_server_metadata()
    assert isinstance(md["name"], str) and md["name"]
    assert isinstance(md["version"], str) and md["version"]
    for ext in ("binary_tensor_data", "model_repository", "model_configuration"):
        assert ext in md["extensions"], f"extension {ext!r} not advertised: {md['extensions']}"


@pytest.mark.parametrize("model", MODELS)
def test_model_ready(client, model):
    assert client.is_model_ready(model)


def test_model_versions_ready(client):
    assert client.is_model_ready("add_sub", "1")
    assert client.is_model_ready("add_sub", "2")
    assert not client.is_model_ready("add_sub", "3")
    assert not client.is_model_ready("mlp_classifier", "2")
    assert not client.is_model_ready("no_such_model")


@pytest.mark.parametrize("model", MODELS)
def test_model_metadata(client, model):
    md = client.get_model_metadata(model)
    assert md["name"] == model
    assert md["platform"] == "onnxruntime_onnx"
    expected = EXPECTED_METADATA[model]
    for kind in ("inputs", "outputs"):
        got = {t["name"]: (t["datatype"], t["shape"]) for t in md[kind]}
        want = {n: (dt, shape) for n, (dt, shape) in expected[kind].items()}
        assert got == want, f"{kind}: {got} != {want}"
    if "versions" in md:
        want_versions = ["1", "2"] if model == "add_sub" else ["1"]
        assert sorted(md["versions"]) == want_versions


def test_model_metadata_for_one_version(client):
    md = client.get_model_metadata("add_sub", "1")
    assert md["name"] == "add_sub"
    if "versions" in md:
        assert md["versions"] == ["1"]


def test_model_metadata_unknown_model(client):
    with pytest.raises(InferenceServerException):
        client.get_model_metadata("no_such_model")


def _config_io(cfg, key):
    return {t["name"]: (t["data_type"], t["dims"]) for t in cfg[key]}


def test_model_config_add_sub(client):
    cfg = client.get_model_config("add_sub")
    assert cfg["name"] == "add_sub"
    assert cfg["platform"] == "onnxruntime_onnx"
    assert cfg["max_batch_size"] == 8
    assert _config_io(cfg, "input") == {"INPUT0": ("TYPE_FP32", [16]), "INPUT1": ("TYPE_FP32", [16])}
    assert _config_io(cfg, "output") == {"OUTPUT0": ("TYPE_FP32", [16]), "OUTPUT1": ("TYPE_FP32", [16])}


def test_model_config_int_ops_from_model_yaml(client):
    cfg = client.get_model_config("int_ops")
    assert cfg["name"] == "int_ops"
    assert cfg["platform"] == "onnxruntime_onnx"
    assert cfg["max_batch_size"] == 8
    assert _config_io(cfg, "input") == {"X": ("TYPE_INT64", [4]), "Y": ("TYPE_INT64", [4])}
    assert _config_io(cfg, "output") == {
        "SUM": ("TYPE_INT64", [4]), "PROD": ("TYPE_INT64", [4]), "GREATER": ("TYPE_BOOL", [4])}


def test_model_config_mlp_autocompleted(client):
    cfg = client.get_model_config("mlp_classifier")
    assert cfg["name"] == "mlp_classifier"
    assert cfg["platform"] == "onnxruntime_onnx"
    mbs = cfg["max_batch_size"]
    assert isinstance(mbs, int) and mbs >= 0
    inputs = _config_io(cfg, "input")
    outputs = _config_io(cfg, "output")
    assert {n: t for n, (t, _) in inputs.items()} == {"input": "TYPE_FP32"}
    assert {n: t for n, (t, _) in outputs.items()} == {"probabilities": "TYPE_FP32", "label": "TYPE_INT64"}
    # Whether the batch dim is folded into max_batch_size or kept in dims, the full shape is the same.
    full = (lambda dims: [-1] + dims) if mbs > 0 else (lambda dims: dims)
    assert full(inputs["input"][1]) == [-1, 4]
    assert full(outputs["probabilities"][1]) == [-1, 3]
    assert full(outputs["label"][1]) == [-1, 1]


# --------------------------------------------------------------------------- inference


@pytest.mark.parametrize("out_mode", ["binary", "json", "none"])
@pytest.mark.parametrize("in_binary", [True, False], ids=["in_binary", "in_json"])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("model", MODELS)
def test_infer(client, ferry_server, model, batch, in_binary, out_mode):
    inputs = fh.make_inputs(model, batch, seed=batch * 10 + int(in_binary))
    version = TEST_VERSION[model]
    result = client_infer(client, model, inputs, version=version, in_binary=in_binary, out_mode=out_mode)
    check_result(result, ferry_server.repo, model, version, inputs)
    # binary_data_size marks the binary outputs; json outputs carry data instead.
    for name in fh.MODEL_OUTPUTS[model]:
        params = result.get_output(name).get("parameters") or {}
        if out_mode == "json":
            assert "binary_data_size" not in params, f"{name} came back binary though JSON was asked for"
        else:
            assert "binary_data_size" in params, f"{name} came back as JSON though binary was asked for"


def test_infer_subset_of_outputs(client, ferry_server):
    inputs = fh.make_inputs("add_sub", 2, seed=7)
    infer_inputs = []
    for name, arr in inputs.items():
        inp = httpclient.InferInput(name, list(arr.shape), "FP32")
        inp.set_data_from_numpy(arr)
        infer_inputs.append(inp)
    result = client.infer("add_sub", infer_inputs, model_version="1",
                          outputs=[httpclient.InferRequestedOutput("OUTPUT1", binary_data=False)])
    outputs = result.get_response()["outputs"]
    assert [o["name"] for o in outputs] == ["OUTPUT1"]
    expected = fh.reference(ferry_server.repo, "add_sub", 1, inputs)
    fh.assert_tensor_equal(result.as_numpy("OUTPUT1"), expected["OUTPUT1"], "OUTPUT1")


def test_add_sub_versions_differ(client, ferry_server):
    inputs = fh.make_inputs("add_sub", 3, seed=3)
    r1 = client_infer(client, "add_sub", inputs, version="1")
    r2 = client_infer(client, "add_sub", inputs, version="2")
    check_result(r1, ferry_server.repo, "add_sub", 1, inputs)
    check_result(r2, ferry_server.repo, "add_sub", 2, inputs)
    np.testing.assert_allclose(r2.as_numpy("OUTPUT0") - r1.as_numpy("OUTPUT0"), 1.0, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(r1.as_numpy("OUTPUT1"), r2.as_numpy("OUTPUT1"))


def test_default_version_is_latest(client, ferry_server):
    """No version in the request: the latest ready version (2) answers, as in Triton."""
    inputs = fh.make_inputs("add_sub", 1, seed=4)
    result = client_infer(client, "add_sub", inputs)
    assert result.get_response()["model_version"] == "2"
    check_result(result, ferry_server.repo, "add_sub", 2, inputs)


def test_request_id_echoed(client):
    inputs = fh.make_inputs("int_ops", 1, seed=5)
    result = client_infer(client, "int_ops", inputs, request_id="abc")
    assert result.get_response()["id"] == "abc"
    result = client_infer(client, "int_ops", inputs, out_mode="json", request_id="id with spaces/ünïcode")
    assert result.get_response()["id"] == "id with spaces/ünïcode"


@pytest.mark.parametrize("req_alg,resp_alg", [
    ("gzip", "deflate"),
    ("deflate", "gzip"),
    ("gzip", None),
    (None, "gzip"),
    ("deflate", "deflate"),
])
@pytest.mark.parametrize("out_mode", ["binary", "json"])
def test_compression(client, ferry_server, req_alg, resp_alg, out_mode):
    inputs = fh.make_inputs("mlp_classifier", 3, seed=6)
    result = client_infer(client, "mlp_classifier", inputs, version="1", out_mode=out_mode,
                          request_compression_algorithm=req_alg, response_compression_algorithm=resp_alg)
    check_result(result, ferry_server.repo, "mlp_classifier", 1, inputs)


def test_infer_unknown_model_raises(client):
    inputs = fh.make_inputs("add_sub", 1)
    with pytest.raises(InferenceServerException):
        client_infer(client, "no_such_model", inputs)


# --------------------------------------------------------------------------- model repository


def index_by_name(index):
    by_name: dict[str, list[dict]] = {}
    for entry in index:
        by_name.setdefault(entry["name"], []).append(entry)
    return by_name


def test_repository_index(client):
    index = client.get_model_repository_index()
    by_name = index_by_name(index)
    assert sorted(by_name) == sorted(MODELS), index
    for name, entries in by_name.items():
        for entry in entries:
            assert entry.get("state") == "READY", entry
    add_sub_versions = sorted(e["version"] for e in by_name["add_sub"] if "version" in e)
    if add_sub_versions:
        assert add_sub_versions == ["1", "2"]


def test_load_unload_rejected_in_none_mode(client):
    with pytest.raises(InferenceServerException):
        client.load_model("int_ops")
    with pytest.raises(InferenceServerException):
        client.unload_model("int_ops")
    assert client.is_model_ready("int_ops")


def _not_ready_state(entry):
    # A model that is not loaded is UNAVAILABLE; a server may also leave `state` out.
    return entry.get("state", "UNAVAILABLE") == "UNAVAILABLE"


def test_explicit_mode_load_unload(ferry_factory, model_repo):
    server = ferry_factory.start(args=["--model-control-mode", "explicit", "--load-model", "mlp_classifier"],
                                 name="explicit")
    c = make_client(server)
    try:
        assert c.is_model_ready("mlp_classifier")
        assert not c.is_model_ready("int_ops")
        assert not c.is_model_ready("add_sub")
        by_name = index_by_name(c.get_model_repository_index())
        assert set(by_name) >= set(MODELS), by_name  # the index lists loaded and unloaded models
        assert all(e.get("state") == "READY" for e in by_name["mlp_classifier"])
        assert all(e.get("state") != "READY" for e in by_name["int_ops"] + by_name["add_sub"])

        inputs = fh.make_inputs("int_ops", 2, seed=8)
        with pytest.raises(InferenceServerException):
            client_infer(c, "int_ops", inputs)

        c.load_model("int_ops")
        assert c.is_model_ready("int_ops")
        check_result(client_infer(c, "int_ops", inputs), model_repo, "int_ops", 1, inputs)
        assert all(e.get("state") == "READY" for e in index_by_name(c.get_model_repository_index())["int_ops"])

        c.unload_model("int_ops")
        fh.wait_until(lambda: not c.is_model_ready("int_ops"), 10, "int_ops to unload")
        entries = index_by_name(c.get_model_repository_index()).get("int_ops")
        assert entries, "unloaded model missing from the repository index"
        assert all(_not_ready_state(e) for e in entries), entries
        with pytest.raises(InferenceServerException):
            client_infer(c, "int_ops", inputs)

        # loading again after an unload works, and the other model was never disturbed
        c.load_model("int_ops")
        assert c.is_model_ready("int_ops")
        assert c.is_model_ready("mlp_classifier")

        with pytest.raises(InferenceServerException):
            c.load_model("no_such_model")
    finally:
        c.close()


def test_corrupt_model_is_unavailable(ferry_factory):
    repo = ferry_factory.new_repo()
    garbage = bytes(range(256)) * 16
    (repo / "broken" / "1").mkdir(parents=True)
    (repo / "broken" / "1" / "model.onnx").write_bytes(garbage)
    # same failure with a valid config file, so the failure is in loading the ONNX file
    (repo / "broken_cfg" / "1").mkdir(parents=True)
    (repo / "broken_cfg" / "1" / "model.onnx").write_bytes(garbage)
    config = (repo / "add_sub" / "config.pbtxt").read_text().replace('"add_sub"', '"broken_cfg"')
    (repo / "broken_cfg" / "config.pbtxt").write_text(config)

    # A failed model may keep the server from reporting ready, so wait for live and then
    # for the good models.
    server = ferry_factory.start(repos=repo, wait="live", name="corrupt")
    c = make_client(server)
    try:
        fh.wait_until(lambda: all(c.is_model_ready(m) for m in MODELS), 30, "the good models to be ready",
                      on_timeout=server.describe)
        by_name = index_by_name(c.get_model_repository_index())
        for name in ("broken", "broken_cfg"):
            assert not c.is_model_ready(name)
            assert name in by_name, f"{name} missing from the index: {by_name}"
            for entry in by_name[name]:
                assert entry.get("state") == "UNAVAILABLE", entry
                assert isinstance(entry.get("reason"), str) and entry["reason"].strip(), entry
        for name in MODELS:
            assert all(e.get("state") == "READY" for e in by_name[name]), by_name[name]
        inputs = fh.make_inputs("add_sub", 2, seed=9)
        check_result(client_infer(c, "add_sub", inputs, version="1"), repo, "add_sub", 1, inputs)
        with pytest.raises(InferenceServerException):
            client_infer(c, "broken_cfg", inputs)
    finally:
        c.close()


def test_multiple_repositories(ferry_factory, model_repo, tmp_path):
    repo_a, repo_b = tmp_path / "repo_a", tmp_path / "repo_b"
    shutil.copytree(model_repo / "mlp_classifier", repo_a / "mlp_classifier")
    shutil.copytree(model_repo / "add_sub", repo_b / "add_sub")
    shutil.copytree(model_repo / "int_ops", repo_b / "int_ops")
    server = ferry_factory.start(repos=[repo_a, repo_b], name="multirepo")
    c = make_client(server)
    try:
        for model in MODELS:
            assert c.is_model_ready(model), model
        assert sorted(index_by_name(c.get_model_repository_index())) == sorted(MODELS)
        inputs = fh.make_inputs("mlp_classifier", 2, seed=10)
        check_result(client_infer(c, "mlp_classifier", inputs), repo_a, "mlp_classifier", 1, inputs)
        inputs = fh.make_inputs("int_ops", 2, seed=11)
        check_result(client_infer(c, "int_ops", inputs), repo_b, "int_ops", 1, inputs)
    finally:
        c.close()
