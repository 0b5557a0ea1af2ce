"""The C plugin ABI (include/ferry/plugin.h): the example plugin libferry_add_one.so
(examples/plugins/add_one, built with the tests) served by the real server, every
numeric datatype round-tripped over REST (tritonclient.http, binary and JSON) and gRPC
(tritonclient.grpc) and compared with numpy's own x + 1 in that datatype; the plugin's
own error reaching the client while the server keeps serving; and libraries the server
must refuse (wrong ABI version, missing symbol, failing initialize, none at all) leaving
their models UNAVAILABLE with the reason.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

import ferry_helpers as fh

EXAMPLE_MODEL = fh.REPO_ROOT / "examples" / "plugins" / "add_one" / "models" / "add_one"
DTYPES = {
    "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
    "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
    "FP16": np.float16, "BF16": ml_dtypes.bfloat16, "FP32": np.float32, "FP64": np.float64,
}
SHAPE = (3, 5)  # [batch, -1]


def plugin_dirs() -> tuple[Path, Path]:
    build = fh.ferry_bin().parent
    return build / "plugins", build / "test_plugins"


def _broken_model(repo: Path, name: str, backend: str, library: Path | None, in_version_folder: bool) -> None:
    folder = repo / name
    (folder / "1").mkdir(parents=True)
    (folder / "config.pbtxt").write_text(f"""
backend: "{backend}"
input [ {{ name: "INPUT" data_type: TYPE_FP32 dims: [ 1 ] }} ]
output [ {{ name: "OUTPUT" data_type: TYPE_FP32 dims: [ 1 ] }} ]
""")
    if library is not None:
        shutil.copy(library, (folder / "1" if in_version_folder else folder) / f"libferry_{backend}.so")


@pytest.fixture(scope="module")
def server(ferry_module_factory, tmp_path_factory):
    plugins, broken = plugin_dirs()
    for d in (plugins, broken):
        assert d.is_dir(), f"{d} is missing: build the tests (FERRY_BUILD_TESTS=ON) to get the plugins"
    repo = tmp_path_factory.mktemp("plugins") / "repo"
    shutil.copytree(EXAMPLE_MODEL, repo / "add_one")  # the library comes from --plugin-dir
    _broken_model(repo, "wrong_version", "broken_version", broken / "libferry_broken_version.so", False)
    _broken_model(repo, "missing_symbol", "broken_missing_execute", broken / "libferry_broken_missing_execute.so", True)
    _broken_model(repo, "failing_init", "broken_initialize", broken / "libferry_broken_initialize.so", False)
    _broken_model(repo, "no_library", "not_installed", None, False)
    srv = ferry_module_factory.start(repos=repo, args=["--plugin-dir", str(plugins)], wait="live", name="plugin")
    fh.wait_models_ready(srv, ["add_one"])
    return srv



def inputs_for_every_dtype(seed: int) -> dict[str, np.ndarray]:
    """Random values of each type; integers stay below their maximum (the plugin refuses
    that one) and floats are multiples of 1/8, which x + 1 keeps exact in every width."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, dtype in DTYPES.items():
        if np.issubdtype(np.dtype(dtype), np.integer):
            info = np.iinfo(dtype)
            x = rng.integers(info.min, info.max, size=SHAPE, dtype=dtype, endpoint=False)
            x.flat[0] = info.min
            x.flat[1] = info.max - 1
        else:
            x = (np.round(rng.uniform(-100, 100, size=SHAPE) * 8) / 8).astype(dtype)
        out[name] = x
    return out


def expected(x: np.ndarray) -> np.ndarray:
    return (x + x.dtype.type(1)).astype(x.dtype)


def http_infer(client, arrays: dict[str, np.ndarray], binary: bool):
    inputs, outputs = [], []
    for name, x in arrays.items():
        # The half-precision types have no JSON form (ferry refuses FP16 JSON data,
        # tritonclient BF16): they always go binary.
        as_binary = binary or name in ("FP16", "BF16")
        inp = httpclient.InferInput(f"INPUT_{name}", list(x.shape), name)
        inp.set_data_from_numpy(x, binary_data=as_binary)
        inputs.append(inp)
        outputs.append(httpclient.InferRequestedOutput(f"OUTPUT_{name}", binary_data=as_binary))
    return client.infer("add_one", inputs, outputs=outputs)


def grpc_infer(client, arrays: dict[str, np.ndarray]):
    inputs = []
    for name, x in arrays.items():
        inp = grpcclient.InferInput(f"INPUT_{name}", list(x.shape), name)
        inp.set_data_from_numpy(x)
        inputs.append(inp)
    outputs = [grpcclient.InferRequestedOutput(f"OUTPUT_{name}") for name in arrays]
    return client.infer("add_one", inputs, outputs=outputs)


def check_every_dtype(result, arrays: dict[str, np.ndarray]) -> None:
    for name, x in arrays.items():
        got = result.as_numpy(f"OUTPUT_{name}")
        assert got is not None, f"no OUTPUT_{name}"
        assert got.dtype == np.dtype(DTYPES[name]), f"OUTPUT_{name}: dtype {got.dtype}"
        assert got.shape == x.shape, f"OUTPUT_{name}: shape {got.shape}"
        np.testing.assert_array_equal(got, expected(x), err_msg=f"OUTPUT_{name}")


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_every_numeric_dtype_round_trips_over_rest(http, binary):
    arrays = inputs_for_every_dtype(seed=1 if binary else 2)
    check_every_dtype(http_infer(http, arrays, binary), arrays)


def test_every_numeric_dtype_round_trips_over_grpc(grpc_client):
    arrays = inputs_for_every_dtype(seed=3)
    check_every_dtype(grpc_infer(grpc_client, arrays), arrays)


def test_plugin_error_reaches_the_client_and_the_server_keeps_serving(server, http, grpc_client):
    arrays = inputs_for_every_dtype(seed=4)
    arrays["INT8"].flat[7] = 127  # the plugin refuses to overflow INT8
    with pytest.raises(InferenceServerException) as rest_err:
        http_infer(http, arrays, binary=True)
    assert rest_err.value.status() == "400", rest_err.value
    assert "input 'INPUT_INT8': element 7 is INT8_MAX" in rest_err.value.message(), rest_err.value
    with pytest.raises(InferenceServerException) as grpc_err:
        grpc_infer(grpc_client, arrays)
    assert grpc_err.value.status() == "StatusCode.INVALID_ARGUMENT", grpc_err.value
    assert "element 7 is INT8_MAX" in grpc_err.value.message(), grpc_err.value
    # Same instances, next request: fine.
    arrays["INT8"].flat[7] = 0
    check_every_dtype(http_infer(http, arrays, binary=True), arrays)
    assert server.is_running()


def test_config_and_metadata_name_the_plugin(http):
    meta = http.get_model_metadata("add_one")
    assert meta["platform"] == "add_one"
    assert len(meta["inputs"]) == len(DTYPES)
    assert http.get_model_config("add_one")["backend"] == "add_one"


def test_refused_libraries_leave_their_models_unavailable_with_the_reason(http):
    by_name = {e["name"]: e for e in http.get_model_repository_index()}
    major, _ = fh.plugin_abi_version()
    expectations = {
        "wrong_version": ("libferry_broken_version.so", f"was built for plugin ABI {major + 1}.0",
                          "major versions must match"),
        "missing_symbol": ("libferry_broken_missing_execute.so", "lacks the required symbol(s) "
                           "ferry_plugin_instance_execute"),
        "failing_init": ("libferry_broken_initialize.so", "the device this plugin needs is absent"),
        "no_library": ("libferry_not_installed.so", "is not built into this server", "plugins folder"),
    }
    for model, mentions in expectations.items():
        entry = by_name.get(model)
        assert entry is not None, f"{model} missing from the index: {by_name}"
        assert entry.get("state") == "UNAVAILABLE", entry
        for m in mentions:
            assert m in entry.get("reason", ""), f"{model}: {m!r} not in reason {entry.get('reason')!r}"
    inp = httpclient.InferInput("INPUT", [1], "FP32")
    inp.set_data_from_numpy(np.zeros(1, np.float32))
    with pytest.raises(InferenceServerException) as err:
        http.infer("wrong_version", [inp])
    assert err.value.status() in ("400", "404", "503"), err.value
