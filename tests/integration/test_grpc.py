"""ferry's gRPC endpoint against real clients: tritonclient.grpc, raw grpcio stubs built from
tritonclient's generated service_pb2, grpcio-health-checking, grpcio-reflection and grpcurl.

Outputs are compared with onnxruntime's own Python session on the same model files
(floats rtol 1e-5, integers and booleans exactly).  Every connection is to 127.0.0.1.
"""

from __future__ import annotations

import functools
import queue
import subprocess
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from tritonclient.grpc import service_pb2 as pb
from tritonclient.utils import InferenceServerException

import ferry_helpers as fh
import grpc_helpers as gh

MODELS = fh.MODEL_NAMES
GRPCURL = fh.REPO_ROOT / "third_party" / "bin" / "grpcurl"
INFERENCE_SERVICE = "inference.GRPCInferenceService"
HEALTH_SERVICE = "grpc.health.v1.Health"
REFLECTION_SERVICE = "grpc.reflection.v1alpha.ServerReflection"
WAIT_S = 20.0

EXPECTED_METADATA = fh.EXPECTED_METADATA
EXPECTED_MAX_BATCH = {"mlp_classifier": 1024, "add_sub": 8, "int_ops": 8}  # mlp_classifier: no config, --default-max-batch-size


# --------------------------------------------------------------------------- helpers


def make_client(server) -> grpcclient.InferenceServerClient:
    return grpcclient.InferenceServerClient(fh.grpc_url(server))


@pytest.fixture
def client(ferry_server):
    c = make_client(ferry_server)
    yield c
    c.close()


@pytest.fixture(scope="module")
def raw_channel(ferry_server):
    ch = gh.channel(ferry_server)
    yield ch
    ch.close()


@pytest.fixture
def raw(raw_channel):
    return gh.stub(raw_channel)


infer_inputs = gh.infer_inputs


def requested(names) -> list[grpcclient.InferRequestedOutput] | None:
    return None if names is None else [grpcclient.InferRequestedOutput(n) for n in names]


def check_result(result, repo, model, version, inputs, names=None, request_id=None):
    """The result holds exactly `names` (default: all outputs, in model order), equal to onnxruntime's."""
    names = list(names or fh.MODEL_OUTPUTS[model])
    resp = result.get_response()
    assert [o.name for o in resp.outputs] == names
    expected = fh.reference(repo, model, version, inputs)
    fh.assert_outputs_match({n: result.as_numpy(n) for n in names}, {n: expected[n] for n in names}, names)
    for o in resp.outputs:
        assert o.datatype == EXPECTED_METADATA[model]["outputs"][o.name][0], o
        assert list(o.shape) == list(expected[o.name].shape), o
    assert resp.model_name == model
    assert resp.model_version == str(version)
    if request_id is not None:
        assert resp.id == request_id


def expect_error(fn, code: grpc.StatusCode, *mentions: str) -> str:
    with pytest.raises(InferenceServerException) as info:
        fn()
    err = info.value
    msg = err.message() or ""
    assert err.status() == str(code), f"status {err.status()}, expected {code}; message {msg!r}"
    for m in mentions:
        assert m in msg, f"error message {msg!r} does not mention {m!r}"
    return msg


def assert_server_still_serves(server, client=None) -> None:
    assert server.is_running(), f"ferry died\n{server.describe()}"
    own = client is None
    c = make_client(server) if own else client
    try:
        inputs = fh.make_inputs("add_sub", 2, seed=99)
        result = c.infer("add_sub", infer_inputs(inputs), model_version="1")
        check_result(result, server.repo, "add_sub", 1, inputs)
    finally:
        if own:
            c.close()


# --------------------------------------------------------------------------- 1. tritonclient.grpc: health, metadata, config


def test_server_live_and_ready(client):
    assert client.is_server_live()
    assert client.is_server_ready()


def test_server_metadata(client):
    md = client.get_server_metadata()
    assert md.name and md.version
    for ext in ("binary_tensor_data", "model_repository", "model_configuration"):
        assert ext in md.extensions, f"extension {ext!r} not advertised: {list(md.extensions)}"
    js = client.get_server_metadata(as_json=True)
    assert js["name"] == md.name and js["version"] == md.version
    assert js["extensions"] == list(md.extensions)


def test_model_ready(client):
    for model in MODELS:
        assert client.is_model_ready(model), model
    assert client.is_model_ready("add_sub", "1")
    assert client.is_model_ready("add_sub", "2")
    assert not client.is_model_ready("add_sub", "3")
    assert not client.is_model_ready("mlp_classifier", "2")
    assert not client.is_model_ready("no_such_model")
    assert not client.is_model_ready("no_such_model", "1")


@pytest.mark.parametrize("model", MODELS)
def test_model_metadata(client, model):
    md = client.get_model_metadata(model)
    assert md.name == model
    assert md.platform == "onnxruntime_onnx"
    assert sorted(md.versions) == (["1", "2"] if model == "add_sub" else ["1"])
    expected = EXPECTED_METADATA[model]
    assert {t.name: (t.datatype, list(t.shape)) for t in md.inputs} == expected["inputs"]
    assert {t.name: (t.datatype, list(t.shape)) for t in md.outputs} == expected["outputs"]
    # as_json: protobuf's JSON mapping (int64 shapes come as strings)
    js = client.get_model_metadata(model, as_json=True)
    assert js["name"] == model and js["platform"] == "onnxruntime_onnx"
    assert {t["name"]: (t["datatype"], [int(d) for d in t["shape"]]) for t in js["inputs"]} == expected["inputs"]
    assert {t["name"]: (t["datatype"], [int(d) for d in t["shape"]]) for t in js["outputs"]} == expected["outputs"]


def test_model_metadata_for_one_version(client):
    md = client.get_model_metadata("add_sub", "2")
    assert md.name == "add_sub"
    assert list(md.versions) in (["2"], ["1", "2"])


def test_model_metadata_errors(client):
    expect_error(lambda: client.get_model_metadata("no_such_model"), grpc.StatusCode.NOT_FOUND, "no_such_model")
    expect_error(lambda: client.get_model_metadata("add_sub", "7"), grpc.StatusCode.NOT_FOUND, "add_sub", "7")
    expect_error(lambda: client.get_model_metadata("add_sub", "x"), grpc.StatusCode.INVALID_ARGUMENT, "'x'")


def _config_io(tensors):
    return {t.name: (t.data_type, list(t.dims)) for t in tensors}


@pytest.mark.parametrize("model", MODELS)
def test_model_config(client, model):
    from tritonclient.grpc import model_config_pb2 as mc

    cfg = client.get_model_config(model).config
    assert cfg.name == model
    assert cfg.platform == "onnxruntime_onnx"
    assert cfg.max_batch_size == EXPECTED_MAX_BATCH[model]
    expected = EXPECTED_METADATA[model]
    for kind, tensors in (("inputs", cfg.input), ("outputs", cfg.output)):
        want = {n: (mc.DataType.Value("TYPE_" + ("STRING" if dt == "BYTES" else dt)), shape[1:])
                for n, (dt, shape) in expected[kind].items()}
        assert _config_io(tensors) == want, kind
    js = client.get_model_config(model, as_json=True)["config"]
    assert js["name"] == model
    assert int(js["max_batch_size"]) == EXPECTED_MAX_BATCH[model]
    assert {t["name"]: t["data_type"] for t in js["input"]} == \
        {n: "TYPE_" + dt for n, (dt, _) in expected["inputs"].items()}
    assert {t["name"]: [int(d) for d in t["dims"]] for t in js["output"]} == \
        {n: shape[1:] for n, (_, shape) in expected["outputs"].items()}


def test_model_config_errors(client):
    expect_error(lambda: client.get_model_config("no_such_model"), grpc.StatusCode.NOT_FOUND, "no_such_model")
    expect_error(lambda: client.get_model_config("add_sub", "9"), grpc.StatusCode.NOT_FOUND, "add_sub")


# --------------------------------------------------------------------------- 1. tritonclient.grpc: inference


@pytest.mark.parametrize("outputs", ["all", "none", "last"])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("model", MODELS)
def test_infer(client, ferry_server, model, batch, outputs):
    inputs = fh.make_inputs(model, batch, seed=batch * 7 + len(outputs))
    names = {"all": list(fh.MODEL_OUTPUTS[model]), "none": None, "last": [fh.MODEL_OUTPUTS[model][-1]]}[outputs]
    result = client.infer(model, infer_inputs(inputs), model_version="1", outputs=requested(names))
    check_result(result, ferry_server.repo, model, 1, inputs, names=names)


def test_add_sub_versions(client, ferry_server):
    inputs = fh.make_inputs("add_sub", 3, seed=3)
    r1 = client.infer("add_sub", infer_inputs(inputs), model_version="1")
    r2 = client.infer("add_sub", infer_inputs(inputs), model_version="2")
    check_result(r1, ferry_server.repo, "add_sub", 1, inputs)
    check_result(r2, ferry_server.repo, "add_sub", 2, inputs)
    np.testing.assert_allclose(r2.as_numpy("OUTPUT0") - r1.as_numpy("OUTPUT0"), 1.0, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(r1.as_numpy("OUTPUT1"), r2.as_numpy("OUTPUT1"))
    # no version: the latest ready one (2) answers
    r = client.infer("add_sub", infer_inputs(inputs))
    check_result(r, ferry_server.repo, "add_sub", 2, inputs)


def test_request_id_echoed(client, ferry_server):
    inputs = fh.make_inputs("int_ops", 2, seed=5)
    for rid in ("abc", "id with spaces/ünïcode", ""):
        result = client.infer("int_ops", infer_inputs(inputs), request_id=rid)
        check_result(result, ferry_server.repo, "int_ops", 1, inputs, request_id=rid)


def test_async_infer(client, ferry_server):
    done: queue.Queue = queue.Queue()

    def callback(index, result, error):
        done.put((index, result, error))

    jobs = []
    for i in range(24):
        model = MODELS[i % len(MODELS)]
        version = "2" if (model == "add_sub" and i % 2) else "1"
        inputs = fh.make_inputs(model, 1 + i % 3, seed=100 + i)
        jobs.append((model, version, inputs))
        client.async_infer(model, infer_inputs(inputs), functools.partial(callback, i),
                           model_version=version, request_id=f"async-{i}")
    seen = set()
    for _ in jobs:
        index, result, error = done.get(timeout=WAIT_S)
        assert error is None, f"request {index}: {error}"
        model, version, inputs = jobs[index]
        check_result(result, ferry_server.repo, model, version, inputs, request_id=f"async-{index}")
        seen.add(index)
    assert seen == set(range(len(jobs)))


# --------------------------------------------------------------------------- 1. repository, control, statistics, unimplemented


def test_repository_index(client):
    index = client.get_model_repository_index()
    entries = sorted((m.name, m.version, m.state) for m in index.models)
    assert entries == [("add_sub", "1", "READY"), ("add_sub", "2", "READY"),
                       ("int_ops", "1", "READY"), ("mlp_classifier", "1", "READY")], entries
    js = client.get_model_repository_index(as_json=True)
    assert sorted(m["name"] for m in js["models"]) == ["add_sub", "add_sub", "int_ops", "mlp_classifier"]


def test_load_unload_refused_in_none_mode(client):
    for fn in (lambda: client.load_model("int_ops"), lambda: client.unload_model("int_ops")):
        with pytest.raises(InferenceServerException) as info:
            fn()
        assert info.value.status() != str(grpc.StatusCode.OK)
        assert "explicit" in (info.value.message() or ""), info.value.message()
    assert client.is_model_ready("int_ops")


def test_explicit_mode_load_unload(ferry_factory, model_repo):
    server = ferry_factory.start(args=["--model-control-mode", "explicit", "--load-model", "mlp_classifier"],
                                 name="explicit")
    c = make_client(server)
    try:
        assert c.is_model_ready("mlp_classifier")
        assert not c.is_model_ready("int_ops")
        states = {(m.name, m.version): m.state for m in c.get_model_repository_index().models}
        assert states.get(("mlp_classifier", "1")) == "READY", states
        assert {n for n, _ in states} >= set(MODELS), states
        inputs = fh.make_inputs("int_ops", 2, seed=8)
        with pytest.raises(InferenceServerException) as info:
            c.infer("int_ops", infer_inputs(inputs))
        # not loaded: unknown (NOT_FOUND) or known but without a ready version (UNAVAILABLE)
        assert info.value.status() in (str(grpc.StatusCode.NOT_FOUND), str(grpc.StatusCode.UNAVAILABLE)), info.value
        assert "int_ops" in info.value.message()

        c.load_model("int_ops")
        assert c.is_model_ready("int_ops")
        check_result(c.infer("int_ops", infer_inputs(inputs)), model_repo, "int_ops", 1, inputs)

        c.unload_model("int_ops")
        fh.wait_until(lambda: not c.is_model_ready("int_ops"), 10, "int_ops to unload")
        with pytest.raises(InferenceServerException):
            c.infer("int_ops", infer_inputs(inputs))
        c.load_model("int_ops")
        assert c.is_model_ready("int_ops") and c.is_model_ready("mlp_classifier")
        with pytest.raises(InferenceServerException) as info:
            c.load_model("no_such_model")
        assert "no_such_model" in info.value.message()
    finally:
        c.close()


def _stats(c, model="", version=""):
    return c.get_inference_statistics(model, version)


def test_model_statistics(ferry_factory, model_repo):
    """ModelStatistics in Triton's shape, on a fresh server so the counts are known."""
    server = ferry_factory.start(name="stats")
    c = make_client(server)
    try:
        before = {(s.name, s.version): s for s in _stats(c, "add_sub").model_stats}
        assert set(before) == {("add_sub", "1"), ("add_sub", "2")}, before
        for s in before.values():
            assert s.inference_count == 0 and s.execution_count == 0 and s.last_inference == 0, s
            assert s.inference_stats.success.count == 0 and s.inference_stats.fail.count == 0, s

        t0_ms = int(time.time() * 1000)
        for batch in (1, 1, 3):
            inputs = fh.make_inputs("add_sub", batch, seed=batch)
            c.infer("add_sub", infer_inputs(inputs), model_version="1")
        bad = {"INPUT0": np.zeros((1, 15), np.float32), "INPUT1": np.zeros((1, 15), np.float32)}
        with pytest.raises(InferenceServerException):
            c.infer("add_sub", infer_inputs(bad), model_version="1")
        t1_ms = int(time.time() * 1000)

        (s1,) = _stats(c, "add_sub", "1").model_stats
        assert (s1.name, s1.version) == ("add_sub", "1")
        assert s1.inference_count == 5, s1  # batch sizes summed
        assert s1.execution_count == 3, s1
        st = s1.inference_stats
        assert st.success.count == 3 and st.success.ns > 0, st
        assert st.fail.count == 1, st
        assert st.queue.count == 3, st
        for part in (st.compute_input, st.compute_infer, st.compute_output):
            assert part.count == 3, st
        assert st.compute_infer.ns > 0, st
        assert st.success.ns >= st.compute_infer.ns, st
        assert t0_ms - 1000 <= s1.last_inference <= t1_ms + 1000, (s1.last_inference, t0_ms, t1_ms)
        if s1.batch_stats:  # per batch size executions, as Triton reports them
            by_size = {b.batch_size: b for b in s1.batch_stats}
            assert sorted(by_size) == [1, 3], s1.batch_stats
            assert by_size[1].compute_infer.count == 2 and by_size[3].compute_infer.count == 1, s1.batch_stats

        (s2,) = _stats(c, "add_sub", "2").model_stats
        assert s2.inference_count == 0 and s2.execution_count == 0 and s2.inference_stats.success.count == 0, s2

        everything = {(s.name, s.version) for s in _stats(c).model_stats}
        assert everything >= {("add_sub", "1"), ("add_sub", "2"), ("int_ops", "1"), ("mlp_classifier", "1")}
        js = c.get_inference_statistics("add_sub", "1", as_json=True)
        assert int(js["model_stats"][0]["inference_count"]) == 5

        expect_error(lambda: c.get_inference_statistics("no_such_model"), grpc.StatusCode.NOT_FOUND, "no_such_model")
        expect_error(lambda: c.get_inference_statistics("add_sub", "7"), grpc.StatusCode.NOT_FOUND, "add_sub")
    finally:
        c.close()


def test_unimplemented_rpcs(client):
    calls = {
        "system shared memory status": client.get_system_shared_memory_status,
        "system shared memory register": lambda: client.register_system_shared_memory("r", "/ferry_test", 64),
        "system shared memory unregister": client.unregister_system_shared_memory,
        "cuda shared memory status": client.get_cuda_shared_memory_status,
        "cuda shared memory unregister": client.unregister_cuda_shared_memory,
        "trace settings": client.get_trace_settings,
        "log settings": client.get_log_settings,
    }
    for what, fn in calls.items():
        with pytest.raises(InferenceServerException) as info:
            fn()
        assert info.value.status() == str(grpc.StatusCode.UNIMPLEMENTED), (what, info.value)
        assert (info.value.message() or "").strip(), f"{what}: UNIMPLEMENTED without a message"


# --------------------------------------------------------------------------- 2. more datatypes


@pytest.fixture(scope="module")
def dtype_server(ferry_module_factory, tmp_path_factory):
    repo = gh.build_dtype_repo(tmp_path_factory.mktemp("dtype") / "repo")
    return ferry_module_factory.start(repos=repo, name="dtypes")


def _dtype_inputs(model: str, batch: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if model == "fp16_add":
        return (rng.standard_normal((batch, 4)) * 100).astype(np.float16)
    if model == "string_identity":
        pool = [b"", b"hello", "ünïcödé €".encode(), "日本語".encode(), b"x" * 300, b" ", b"tab\tnew\nline"]
        return np.array([[pool[(i * 2 + j + seed) % len(pool)] for j in range(2)] for i in range(batch)],
                        dtype=np.object_)
    if model == "bool_not":
        return rng.random((batch, 4)) < 0.5
    if model == "int64_neg":
        arr = rng.integers(-(2**62), 2**62, size=(batch, 4), dtype=np.int64)
        arr[0, 0] = 3_000_000_000
        return arr
    if model == "fp32_mul":
        return rng.standard_normal((batch, 4)).astype(np.float32)
    raise ValueError(model)


DTYPE_DATATYPES = {"fp16_add": "FP16", "string_identity": "BYTES", "bool_not": "BOOL",
                   "int64_neg": "INT64", "fp32_mul": "FP32"}


@pytest.mark.parametrize("model", list(gh.DTYPE_MODELS))
def test_dtype_metadata(dtype_server, model):
    c = make_client(dtype_server)
    try:
        md = c.get_model_metadata(model)
        in_name, out_name = gh.DTYPE_MODELS[model]
        cols = 2 if model == "string_identity" else 4
        assert [(t.name, t.datatype, list(t.shape)) for t in md.inputs] == \
            [(in_name, DTYPE_DATATYPES[model], [-1, cols])]
        assert [(t.name, t.datatype, list(t.shape)) for t in md.outputs] == \
            [(out_name, DTYPE_DATATYPES[model], [-1, cols])]
        assert c.get_model_config(model).config.max_batch_size == 1024  # --default-max-batch-size
    finally:
        c.close()


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("model", list(gh.DTYPE_MODELS))
def test_dtype_roundtrip(dtype_server, model, batch):
    in_name, out_name = gh.DTYPE_MODELS[model]
    arr = _dtype_inputs(model, batch, seed=batch)
    c = make_client(dtype_server)
    try:
        result = c.infer(model, infer_inputs({in_name: arr}), outputs=requested([out_name]))
    finally:
        c.close()
    out = result.get_output(out_name)
    assert out.datatype == DTYPE_DATATYPES[model]
    got = result.as_numpy(out_name)
    expected = gh.dtype_reference(dtype_server.repo, model, arr)
    if model == "string_identity":
        assert got.dtype == np.object_ and got.shape == expected.shape
        assert got.tolist() == expected.tolist()
        assert got.tolist() == arr.tolist()
    elif model == "fp16_add":
        assert got.dtype == np.float16
        np.testing.assert_allclose(got.astype(np.float32), expected.astype(np.float32), rtol=1e-5)
    else:
        fh.assert_tensor_equal(got, expected, out_name)


def test_bytes_not_utf8(dtype_server):
    """BYTES elements that are not UTF-8 or hold NUL bytes (onnxruntime's Python API can't
    take them, so the Identity model's answer is the input itself)."""
    arr = np.array([[b"\xff\xfe", b"\x80abc"], [b"", b"\xc3"], [b"a\x00b", b"\x00"]], dtype=np.object_)
    c = make_client(dtype_server)
    try:
        result = c.infer("string_identity", infer_inputs({"S": arr}))
    finally:
        c.close()
    assert result.as_numpy("T").tolist() == arr.tolist()


@pytest.mark.parametrize("model", ["string_identity", "bool_not", "int64_neg", "fp32_mul"])
def test_dtype_typed_contents(dtype_server, model):
    """The same inputs in InferTensorContents instead of raw_input_contents."""
    in_name, out_name = gh.DTYPE_MODELS[model]
    arr = _dtype_inputs(model, 2, seed=11)
    ch = gh.channel(dtype_server)
    try:
        resp = gh.stub(ch).ModelInfer(gh.infer_request(model, {in_name: arr}, typed=True), timeout=gh.RPC_TIMEOUT_S)
    finally:
        ch.close()
    got = gh.response_arrays(resp)[out_name]
    expected = gh.dtype_reference(dtype_server.repo, model, arr)
    if model == "string_identity":
        assert got.tolist() == expected.tolist()
    else:
        fh.assert_tensor_equal(got, expected, out_name)


def test_fp16_has_no_typed_contents(dtype_server):
    req = pb.ModelInferRequest(model_name="fp16_add")
    t = req.inputs.add(name="X", datatype="FP16", shape=[1, 4])
    t.contents.fp32_contents.extend([1.0, 2.0, 3.0, 4.0])
    ch = gh.channel(dtype_server)
    try:
        err = gh.rpc_error(gh.stub(ch).ModelInfer, req)
    finally:
        ch.close()
    gh.assert_rpc_error(err, grpc.StatusCode.INVALID_ARGUMENT, "'X'")


# --------------------------------------------------------------------------- 3. streaming


def _stream_add_sub(server, n: int, tag: str, seed: int, version: str = "1"):
    """n requests of batch 1 on add_sub over one tritonclient stream; checks every answer."""
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal((n, 16)).astype(np.float32)
    x1 = rng.standard_normal((n, 16)).astype(np.float32)
    x0[:, 0] = np.arange(n, dtype=np.float32)  # every request's input differs
    collector = gh.StreamCollector(n)
    c = make_client(server)
    try:
        c.start_stream(callback=collector)
        for i in range(n):
            c.async_stream_infer("add_sub", infer_inputs({"INPUT0": x0[i:i + 1], "INPUT1": x1[i:i + 1]}),
                                 model_version=version, request_id=f"{tag}-{i}")
        items = collector.wait()
        c.stop_stream()
    finally:
        c.close()
    assert len(items) == n
    expected = fh.reference(server.repo, "add_sub", int(version), {"INPUT0": x0, "INPUT1": x1})
    for i, (result, error) in enumerate(items):
        assert error is None, f"response {i}: {error}"
        resp = result.get_response()
        assert resp.id == f"{tag}-{i}", f"response {i} has id {resp.id!r}: out of order"
        for name in ("OUTPUT0", "OUTPUT1"):
            fh.assert_tensor_equal(result.as_numpy(name), expected[name][i:i + 1], f"{resp.id} {name}")


def test_stream_1000_in_order(ferry_server):
    _stream_add_sub(ferry_server, 1000, "s", seed=1)


def _bad_stream_requests():
    """(request, expected error mentions or None for a good request) in send order."""
    good = lambda i: fh.make_inputs("add_sub", 1, seed=200 + i)  # noqa: E731
    wrong_shape = {"INPUT0": np.zeros((1, 5), np.float32), "INPUT1": np.zeros((1, 5), np.float32)}
    items = [
        (gh.infer_request("add_sub", good(0), "1", request_id="good-0"), None, good(0)),
        (gh.infer_request("no_such_model", good(1), request_id="bad-model"), ["no_such_model"], None),
        (gh.infer_request("add_sub", good(2), "1", request_id="good-2"), None, good(2)),
        (gh.infer_request("add_sub", wrong_shape, "1", request_id="bad-shape"), ["INPUT0"], None),
        (gh.infer_request("add_sub", good(4), "1", request_id="good-4"), None, good(4)),
        (gh.infer_request("add_sub", good(5), "9", request_id="bad-version"), ["add_sub"], None),
        (gh.infer_request("add_sub", good(6), "1", outputs=["NOPE"], request_id="bad-output"), ["NOPE"], None),
        (gh.infer_request("add_sub", good(7), "1", request_id="good-7"), None, good(7)),
    ]
    return items


def _check_stream_response(server, resp, item):
    req, mentions, inputs = item
    assert resp.infer_response.id == req.id, f"response id {resp.infer_response.id!r}, expected {req.id!r}"
    if mentions is None:
        assert resp.error_message == "", f"{req.id}: {resp.error_message}"
        got = gh.response_arrays(resp.infer_response)
        fh.assert_outputs_match(got, fh.reference(server.repo, "add_sub", 1, inputs))
    else:
        assert resp.error_message, f"{req.id}: no error"
        for m in mentions:
            assert m in resp.error_message, f"{req.id}: {resp.error_message!r} does not mention {m!r}"


def test_stream_errors_in_band_burst(ferry_server, raw):
    items = _bad_stream_requests()
    responses = list(raw.ModelStreamInfer(iter([i[0] for i in items]), timeout=WAIT_S))
    assert len(responses) == len(items)
    for resp, item in zip(responses, items):
        _check_stream_response(ferry_server, resp, item)


def test_stream_stays_open_after_error(ferry_server, raw):
    """Ping-pong on one stream: each answer (errors included) arrives before the next request goes."""
    items = _bad_stream_requests()
    outgoing: queue.Queue = queue.Queue()

    def requests_iter():
        while True:
            req = outgoing.get(timeout=WAIT_S)
            if req is None:
                return
            yield req

    call = raw.ModelStreamInfer(requests_iter(), timeout=WAIT_S)
    try:
        for item in items:
            outgoing.put(item[0])
            _check_stream_response(ferry_server, next(call), item)
        outgoing.put(None)
        assert list(call) == []
        assert call.code() == grpc.StatusCode.OK
    finally:
        call.cancel()


def test_stream_errors_tritonclient(ferry_server):
    """The same mix through tritonclient: the errors come back in their request's slot."""
    items = _bad_stream_requests()
    collector = gh.StreamCollector(len(items))
    c = make_client(ferry_server)
    try:
        c.start_stream(callback=collector)
        for req, _, _ in items:
            arrays = {t.name: np.frombuffer(raw_bytes, np.float32).reshape(list(t.shape))
                      for t, raw_bytes in zip(req.inputs, req.raw_input_contents)}
            c.async_stream_infer(req.model_name, infer_inputs(arrays), model_version=req.model_version,
                                 outputs=requested([o.name for o in req.outputs] or None), request_id=req.id)
        got = collector.wait()
        c.stop_stream()
    finally:
        c.close()
    for (result, error), (req, mentions, inputs) in zip(got, items):
        if mentions is None:
            assert error is None, f"{req.id}: {error}"
            assert result.get_response().id == req.id
            fh.assert_outputs_match({n: result.as_numpy(n) for n in ("OUTPUT0", "OUTPUT1")},
                                    fh.reference(ferry_server.repo, "add_sub", 1, inputs))
        else:
            assert result is None and error is not None, f"{req.id}: expected an error"
            for m in mentions:
                assert m in error.message(), f"{req.id}: {error.message()!r} does not mention {m!r}"


def test_stream_cancelled_midway(ferry_server, raw, client):
    """A client that cancels a busy stream leaves the server serving (and streaming)."""
    def requests_iter():
        for i in range(2000):
            yield gh.infer_request("add_sub", fh.make_inputs("add_sub", 1, seed=i), "1", request_id=f"c-{i}")

    call = raw.ModelStreamInfer(requests_iter(), timeout=WAIT_S)
    assert next(call).infer_response.id == "c-0"
    call.cancel()
    with pytest.raises(grpc.RpcError) as info:
        for _ in call:
            pass
    assert info.value.code() == grpc.StatusCode.CANCELLED
    assert_server_still_serves(ferry_server, client)
    _stream_add_sub(ferry_server, 50, "after-cancel", seed=5)


def test_concurrent_streams(ferry_server):
    errors: list[BaseException] = []

    def run(k):
        try:
            _stream_add_sub(ferry_server, 300, f"t{k}", seed=10 + k, version="2" if k % 2 else "1")
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT_S * 2)
    assert not any(t.is_alive() for t in threads), "a stream thread did not finish"
    if errors:
        raise errors[0]


# --------------------------------------------------------------------------- 4. grpcurl


def grpcurl(server, *args: str, data: str | None = None) -> subprocess.CompletedProcess:
    if not GRPCURL.is_file():
        pytest.skip(f"grpcurl not built ({GRPCURL}); run scripts/setup.sh")
    cmd = [str(GRPCURL), "-plaintext", "-max-time", "10"]
    if data is not None:
        cmd += ["-d", data]
    cmd += [fh.grpc_url(server), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=20)


def test_grpcurl_list(ferry_server):
    proc = grpcurl(ferry_server, "list")
    assert proc.returncode == 0, proc.stderr
    services = set(proc.stdout.split())
    assert {INFERENCE_SERVICE, HEALTH_SERVICE, REFLECTION_SERVICE} <= services, proc.stdout


def test_grpcurl_describe(ferry_server):
    proc = grpcurl(ferry_server, "describe", INFERENCE_SERVICE)
    assert proc.returncode == 0, proc.stderr
    for rpc in ("ServerLive", "ServerReady", "ModelReady", "ModelMetadata", "ModelInfer", "ModelStreamInfer",
                "ModelConfig", "ModelStatistics", "RepositoryIndex"):
        assert f"rpc {rpc}" in proc.stdout, f"{rpc} missing from\n{proc.stdout}"
    assert "stream .inference.ModelInferRequest" in proc.stdout


def test_grpcurl_calls(ferry_server):
    import json

    proc = grpcurl(ferry_server, f"{INFERENCE_SERVICE}/ServerLive")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"live": True}
    proc = grpcurl(ferry_server, f"{HEALTH_SERVICE}/Check", data='{"service":"add_sub"}')
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"status": "SERVING"}
    proc = grpcurl(ferry_server, f"{INFERENCE_SERVICE}/ModelReady", data='{"name":"int_ops"}')
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"ready": True}
    proc = grpcurl(ferry_server, f"{HEALTH_SERVICE}/Check", data='{"service":"no_such_model"}')
    assert proc.returncode != 0
    assert "NotFound" in proc.stderr, proc.stderr


# --------------------------------------------------------------------------- 5. health and reflection


def health_check(ch, service: str):
    return health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=service),
                                                timeout=gh.RPC_TIMEOUT_S).status


def test_health_check(ferry_server, raw_channel):
    SERVING = health_pb2.HealthCheckResponse.SERVING
    assert health_check(raw_channel, "") == SERVING
    assert health_check(raw_channel, INFERENCE_SERVICE) == SERVING
    for model in MODELS:
        assert health_check(raw_channel, model) == SERVING, model
    err = gh.rpc_error(health_pb2_grpc.HealthStub(raw_channel).Check,
                       health_pb2.HealthCheckRequest(service="no_such_model"))
    assert err.code() == grpc.StatusCode.NOT_FOUND, err


def test_health_follows_unload(ferry_factory):
    server = ferry_factory.start(args=["--model-control-mode", "explicit", "--load-model", "mlp_classifier",
                                       "--load-model", "int_ops"], name="explicit-health")
    SERVING = health_pb2.HealthCheckResponse.SERVING
    NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
    ch = gh.channel(server)
    c = make_client(server)
    watch = health_pb2_grpc.HealthStub(ch).Watch(health_pb2.HealthCheckRequest(service="int_ops"), timeout=WAIT_S)
    try:
        assert health_check(ch, "int_ops") == SERVING
        assert next(watch).status == SERVING
        c.unload_model("int_ops")
        assert next(watch).status == NOT_SERVING
        fh.wait_until(lambda: health_check(ch, "int_ops") == NOT_SERVING, 10, "Check(int_ops) NOT_SERVING")
        assert health_check(ch, "mlp_classifier") == SERVING
        assert health_check(ch, "") == SERVING
        c.load_model("int_ops")
        assert next(watch).status == SERVING
        assert health_check(ch, "int_ops") == SERVING
    finally:
        watch.cancel()
        c.close()
        ch.close()


def test_health_watch_unknown_service(raw_channel):
    watch = health_pb2_grpc.HealthStub(raw_channel).Watch(
        health_pb2.HealthCheckRequest(service="no_such_model"), timeout=WAIT_S)
    try:
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
    finally:
        watch.cancel()


def test_reflection(raw_channel):
    db = ProtoReflectionDescriptorDatabase(raw_channel)
    services = set(db.get_services())
    assert {INFERENCE_SERVICE, HEALTH_SERVICE, REFLECTION_SERVICE} <= services, services
    pool = descriptor_pool.DescriptorPool(db)
    svc = pool.FindServiceByName(INFERENCE_SERVICE)
    methods = {m.name for m in svc.methods}
    assert {"ServerLive", "ModelInfer", "ModelStreamInfer", "ModelStatistics", "RepositoryModelLoad"} <= methods
    infer_req = pool.FindMessageTypeByName("inference.ModelInferRequest")
    assert "raw_input_contents" in infer_req.fields_by_name


def test_reflection_answers_errors_in_band(raw_channel):
    """Unknown names get an error_response on the same stream, which stays open."""
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    requests_ = [
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="no.such.Service"),
        reflection_pb2.ServerReflectionRequest(file_by_filename="no/such/file.proto"),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="inference.ModelInferRequest"),
    ]
    stub = reflection_pb2_grpc.ServerReflectionStub(raw_channel)
    answers = list(stub.ServerReflectionInfo(iter(requests_), timeout=gh.RPC_TIMEOUT_S))
    assert len(answers) == 3
    for a in answers[:2]:
        assert a.WhichOneof("message_response") == "error_response", a
        assert a.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
    assert "no.such.Service" in answers[0].error_response.error_message
    files = answers[2].file_descriptor_response.file_descriptor_proto
    names = [descriptor_pb2.FileDescriptorProto.FromString(f).name for f in files]
    assert names[0] == "protocol/grpc/grpc_service.proto", names
    assert "repository/model_config.proto" in names, names  # its import comes along


def test_health_watch_ends_at_shutdown(ferry_factory):
    """A Watch sees NOT_SERVING when the server starts shutting down, then ends cleanly."""
    server = ferry_factory.start(name="watch-shutdown")
    ch = gh.channel(server)
    try:
        watch = health_pb2_grpc.HealthStub(ch).Watch(health_pb2.HealthCheckRequest(service=""), timeout=WAIT_S)
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        server.terminate()
        assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
        with pytest.raises(StopIteration):
            next(watch)
        assert server.wait_exit() == 0
    finally:
        ch.close()


def test_no_grpc_executor_threads(ferry_server, raw_channel):
    """Every RPC runs on ferry's completion-queue threads: gRPC starts no callback-API
    (nexting_thread) or sync-API (grpcpp_sync_ser*) threads, which would poll the same
    sockets. Checked after each kind of call has been served."""
    health_check(raw_channel, "")
    list(ProtoReflectionDescriptorDatabase(raw_channel).get_services())
    make_client(ferry_server).get_server_metadata()
    names = []
    for task in Path(f"/proc/{ferry_server.proc.pid}/task").iterdir():
        try:
            names.append((task / "comm").read_text().strip())
        except FileNotFoundError:
            continue
    assert "nexting_thread" not in names, names
    assert not [n for n in names if n.startswith("grpcpp_sync")], names


# --------------------------------------------------------------------------- 6. bad input


def _add_sub_ok(seed=0):
    return fh.make_inputs("add_sub", 1, seed=seed)


def _raw_size_mismatch():
    req = gh.infer_request("add_sub", _add_sub_ok(), "1")
    req.raw_input_contents[1] = req.raw_input_contents[1][:-4]
    return req


def _both_raw_and_typed():
    req = gh.infer_request("add_sub", _add_sub_ok(), "1")
    req.inputs[1].contents.fp32_contents.extend([0.0] * 16)
    return req


def _typed_wrong_field():
    req = gh.infer_request("add_sub", _add_sub_ok(), "1", typed=True)
    req.inputs[0].contents.Clear()
    req.inputs[0].contents.int64_contents.extend([1] * 16)
    return req


def _typed_count_mismatch():
    req = gh.infer_request("add_sub", _add_sub_ok(), "1", typed=True)
    del req.inputs[1].contents.fp32_contents[-1]
    return req


def _raw_entries_mismatch():
    req = gh.infer_request("add_sub", _add_sub_ok(), "1")
    del req.raw_input_contents[1]
    return req


def _no_data():
    req = gh.infer_request("add_sub", _add_sub_ok(), "1", typed=True)
    req.inputs[0].ClearField("contents")
    return req


def _wrong_dtype():
    inputs = _add_sub_ok()
    inputs["INPUT1"] = inputs["INPUT1"].astype(np.float64)
    return gh.infer_request("add_sub", inputs, "1")


def _wrong_shape():
    return gh.infer_request("add_sub", {"INPUT0": np.zeros((1, 8), np.float32),
                                        "INPUT1": np.zeros((1, 8), np.float32)}, "1")


def _batch_too_big():
    return gh.infer_request("add_sub", fh.make_inputs("add_sub", 9), "1")


def _unknown_input():
    inputs = _add_sub_ok()
    inputs["BOGUS"] = np.zeros((1, 16), np.float32)
    return gh.infer_request("add_sub", inputs, "1")


def _missing_input():
    inputs = _add_sub_ok()
    del inputs["INPUT1"]
    return gh.infer_request("add_sub", inputs, "1")


def _unknown_output():
    return gh.infer_request("add_sub", _add_sub_ok(), "1", outputs=["OUTPUT0", "NOPE"])


def _unknown_datatype():
    req = gh.infer_request("add_sub", _add_sub_ok(), "1")
    req.inputs[0].datatype = "FLOAT32"
    return req


def _duplicate_input():
    req = gh.infer_request("add_sub", _add_sub_ok(), "1")
    req.inputs.add(name="INPUT0", datatype="FP32", shape=[1, 16])
    req.raw_input_contents.append(req.raw_input_contents[0])
    return req


def _negative_dim():
    req = gh.infer_request("add_sub", _add_sub_ok(), "1")
    req.inputs[1].shape[0] = -1
    return req


def _shared_memory_input():
    req = gh.infer_request("add_sub", _add_sub_ok(), "1")
    req.inputs[0].parameters["shared_memory_region"].string_param = "region"
    return req


BAD_REQUESTS = {
    # name: (request builder, status, mentions)
    "wrong_datatype": (_wrong_dtype, grpc.StatusCode.INVALID_ARGUMENT, ["INPUT1", "FP64", "FP32"]),
    "unknown_datatype": (_unknown_datatype, grpc.StatusCode.INVALID_ARGUMENT, ["INPUT0", "FLOAT32"]),
    "wrong_shape": (_wrong_shape, grpc.StatusCode.INVALID_ARGUMENT, ["INPUT0"]),
    "batch_too_big": (_batch_too_big, grpc.StatusCode.INVALID_ARGUMENT, ["INPUT0", "9"]),
    "raw_size_mismatch": (_raw_size_mismatch, grpc.StatusCode.INVALID_ARGUMENT, ["INPUT1", "64", "60"]),
    "raw_entries_mismatch": (_raw_entries_mismatch, grpc.StatusCode.INVALID_ARGUMENT, ["raw_input_contents"]),
    "raw_and_typed": (_both_raw_and_typed, grpc.StatusCode.INVALID_ARGUMENT, ["INPUT1", "contents"]),
    "typed_wrong_field": (_typed_wrong_field, grpc.StatusCode.INVALID_ARGUMENT, ["INPUT0", "FP32"]),
    "typed_count_mismatch": (_typed_count_mismatch, grpc.StatusCode.INVALID_ARGUMENT, ["INPUT1", "16", "15"]),
    "no_data": (_no_data, grpc.StatusCode.INVALID_ARGUMENT, ["INPUT0"]),
    "unknown_input": (_unknown_input, grpc.StatusCode.INVALID_ARGUMENT, ["BOGUS"]),
    "missing_input": (_missing_input, grpc.StatusCode.INVALID_ARGUMENT, ["INPUT1"]),
    "unknown_output": (_unknown_output, grpc.StatusCode.INVALID_ARGUMENT, ["NOPE"]),
    "duplicate_input": (_duplicate_input, grpc.StatusCode.INVALID_ARGUMENT, ["INPUT0"]),
    "duplicate_output": (lambda: gh.infer_request("add_sub", _add_sub_ok(), "1", outputs=["OUTPUT1", "OUTPUT1"]),
                         grpc.StatusCode.INVALID_ARGUMENT, ["OUTPUT1"]),
    "zero_batch": (lambda: gh.infer_request("add_sub", fh.make_inputs("add_sub", 0), "1"),
                   grpc.StatusCode.INVALID_ARGUMENT, ["INPUT0", "0"]),
    "batch_differs": (lambda: gh.infer_request("add_sub", {"INPUT0": np.zeros((1, 16), np.float32),
                                                           "INPUT1": np.zeros((2, 16), np.float32)}, "1"),
                      grpc.StatusCode.INVALID_ARGUMENT, ["INPUT1"]),
    "negative_dim": (_negative_dim, grpc.StatusCode.INVALID_ARGUMENT, ["INPUT1"]),
    "shared_memory": (_shared_memory_input, grpc.StatusCode.UNIMPLEMENTED, ["INPUT0", "shared memory"]),
    "empty_model_name": (lambda: gh.infer_request("", _add_sub_ok()), grpc.StatusCode.NOT_FOUND, ["''"]),
    "unknown_model": (lambda: gh.infer_request("no_such_model", _add_sub_ok()),
                      grpc.StatusCode.NOT_FOUND, ["no_such_model"]),
    "unknown_version": (lambda: gh.infer_request("add_sub", _add_sub_ok(), "7"),
                        grpc.StatusCode.NOT_FOUND, ["add_sub", "7"]),
    "version_not_numeric": (lambda: gh.infer_request("add_sub", _add_sub_ok(), "one"),
                            grpc.StatusCode.INVALID_ARGUMENT, ["one"]),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_request_raw(ferry_server, raw, client, case):
    build, code, mentions = BAD_REQUESTS[case]
    err = gh.rpc_error(raw.ModelInfer, build())
    gh.assert_rpc_error(err, code, *mentions)
    assert_server_still_serves(ferry_server, client)


def test_bad_requests_tritonclient(ferry_server, client):
    """The cases tritonclient.grpc can express, through tritonclient."""
    ok = _add_sub_ok(1)
    wrong_dtype = dict(ok, INPUT1=ok["INPUT1"].astype(np.float64))
    cases = [
        (lambda: client.infer("add_sub", infer_inputs(wrong_dtype), model_version="1"),
         grpc.StatusCode.INVALID_ARGUMENT, ["INPUT1", "FP32"]),
        (lambda: client.infer("add_sub", infer_inputs({"INPUT0": np.zeros((2, 3), np.float32),
                                                       "INPUT1": np.zeros((2, 3), np.float32)})),
         grpc.StatusCode.INVALID_ARGUMENT, ["INPUT0"]),
        (lambda: client.infer("add_sub", infer_inputs(dict(ok, EXTRA=ok["INPUT0"]))),
         grpc.StatusCode.INVALID_ARGUMENT, ["EXTRA"]),
        (lambda: client.infer("add_sub", infer_inputs({"INPUT0": ok["INPUT0"]})),
         grpc.StatusCode.INVALID_ARGUMENT, ["INPUT1"]),
        (lambda: client.infer("add_sub", infer_inputs(ok), outputs=requested(["NOPE"])),
         grpc.StatusCode.INVALID_ARGUMENT, ["NOPE"]),
        (lambda: client.infer("no_such_model", infer_inputs(ok)), grpc.StatusCode.NOT_FOUND, ["no_such_model"]),
        (lambda: client.infer("add_sub", infer_inputs(ok), model_version="3"), grpc.StatusCode.NOT_FOUND, ["add_sub"]),
        (lambda: client.infer("add_sub", infer_inputs(ok), model_version="v1"),
         grpc.StatusCode.INVALID_ARGUMENT, ["v1"]),
    ]
    for fn, code, mentions in cases:
        expect_error(fn, code, *mentions)
    assert_server_still_serves(ferry_server, client)


def test_oversize_message(ferry_factory):
    server = ferry_factory.start(args=["--grpc-max-message-size", "4096"], name="small-messages")
    c = make_client(server)
    try:
        big = fh.make_inputs("add_sub", 8, seed=12)  # 2 x 8 x 16 x 4 = 1 KiB: fits
        check_result(c.infer("add_sub", infer_inputs(big), model_version="1"), server.repo, "add_sub", 1, big)
        huge = {"INPUT0": np.ones((1, 16), np.float32), "INPUT1": np.ones((1, 16), np.float32)}
        req = gh.infer_request("add_sub", huge, "1")
        req.id = "x" * 8192  # the message is over 4096 bytes whatever its tensors
        ch = gh.channel(server)
        try:
            err = gh.rpc_error(gh.stub(ch).ModelInfer, req)
            gh.assert_rpc_error(err, grpc.StatusCode.RESOURCE_EXHAUSTED)
            assert "4096" in (err.details() or ""), err.details()  # gRPC's own message names the limit
            # the same through a stream: the stream fails with RESOURCE_EXHAUSTED
            call = gh.stub(ch).ModelStreamInfer(iter([req]), timeout=WAIT_S)
            with pytest.raises(grpc.RpcError) as info:
                list(call)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, info.value
        finally:
            ch.close()
        # tritonclient: 2 x 8 x 16 FP32 plus a 4000-byte extra input is over 4096 bytes
        too_big = dict(big, PAD=np.zeros((1, 1000), np.float32))
        expect_error(lambda: c.infer("add_sub", infer_inputs(too_big), model_version="1"),
                     grpc.StatusCode.RESOURCE_EXHAUSTED, "4096")
        assert_server_still_serves(server, c)
    finally:
        c.close()
