"""Runtimes as modules: ONNX Runtime, XGBoost and PyTorch are shared libraries that
`ferry serve` loads the first time a model needs one.

- A server that serves only ONNX models never maps libtorch or libxgboost.
- A module that is missing (an empty --runtime-dir) makes its models UNAVAILABLE with a
  reason that names the module and where it was looked for; the other models serve.
- On a machine without the framework libraries (the real files hidden from the dynamic
  loader in a private mount namespace, tests/integration/hide_libraries.sh) the models
  of those runtimes are UNAVAILABLE naming the missing library and the package it comes
  from, `ferry runtimes` says the same without loading anything, and the rest serves.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as httpclient
import xgboost as xgb

import ferry_helpers as fh

HERE = Path(__file__).resolve().parent
HIDE = HERE / "hide_libraries.sh"
EXAMPLES = fh.REPO_ROOT / "examples"
# Globs of the framework libraries, as Debian names them, and the messages expected.
HIDDEN_LIBS = ["libxgboost.so*", "libtorch*", "libc10*"]


@pytest.fixture(scope="module")
def mixed_repo(tmp_path_factory, model_repo) -> Path:
    """One model per runtime: ONNX (add_sub), XGBoost, TorchScript and scikit-learn."""
    repo = tmp_path_factory.mktemp("modules") / "repo"
    repo.mkdir()
    shutil.copytree(model_repo / "add_sub", repo / "add_sub")
    runtime_models = repo.parent / "runtime_models"
    subprocess.run([sys.executable, str(EXAMPLES / "generate_runtime_models.py"), str(runtime_models)], check=True,
                   capture_output=True, timeout=180)
    for name in ("iris_sklearn", "torch_linear"):
        assert (runtime_models / name).exists(), f"generate_runtime_models.py wrote no {name}"
        shutil.copytree(runtime_models / name, repo / name)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    booster = xgb.train({"max_depth": 2}, xgb.DMatrix(x, label=x[:, 0] > 0), 3)
    (repo / "xgb" / "1").mkdir(parents=True)
    booster.save_model(str(repo / "xgb" / "1" / "model.json"))
    return repo


def index(server: fh.FerryServer) -> dict[str, dict]:
    resp = server.post("/v2/repository/index", json={})
    assert resp.status_code == 200, resp.text
    return {m["name"]: m for m in resp.json()}


def assert_sklearn_serves(server: fh.FerryServer) -> None:
    client = httpclient.InferenceServerClient(url=server.url)
    x = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]])
    inp = httpclient.InferInput("input-0", list(x.shape), "FP64")
    inp.set_data_from_numpy(x)
    out = client.infer("iris_sklearn", [inp], outputs=[httpclient.InferRequestedOutput("predict")])
    assert out.as_numpy("predict").tolist() == [0, 2]
    client.close()


def assert_unavailable(server: fh.FerryServer, model: str, *fragments: str) -> None:
    entry = index(server)[model]
    assert entry["state"] == "UNAVAILABLE", entry
    for f in fragments:
        assert f in entry.get("reason", ""), f"{f!r} not in the reason of {model}: {entry}"
    resp = server.post(f"/v2/models/{model}/infer", json={"inputs": []})
    assert resp.status_code in (400, 503), resp.text  # never a crash or a hang
    assert server.is_running()


def test_an_onnx_only_server_loads_only_the_onnx_module(ferry_factory, model_repo):
    srv = ferry_factory.start(repos=model_repo, name="onnx-only")
    assert srv.post("/v2/models/add_sub/infer", json={"inputs": [
        {"name": "INPUT0", "shape": [1, 16], "datatype": "FP32", "data": [1.0] * 16},
        {"name": "INPUT1", "shape": [1, 16], "datatype": "FP32", "data": [2.0] * 16}]}).status_code == 200
    maps = Path(f"/proc/{srv.proc.pid}/maps").read_text()
    assert "libferry_runtime_onnxruntime.so" in maps and "libonnxruntime.so" in maps
    for absent in ("libtorch", "libc10", "libxgboost", "libferry_runtime_pytorch", "libferry_runtime_xgboost"):
        assert absent not in maps, f"{absent} is mapped by a server of ONNX models only"
    assert 'runtime module loaded" runtime=onnxruntime' in srv.log_tail(200)


def test_a_missing_module_makes_its_models_unavailable_and_the_rest_serves(ferry_factory, mixed_repo, tmp_path,
                                                                           ferry_binary):
    empty = tmp_path / "no_modules"
    empty.mkdir()
    srv = fh.start_with_models(ferry_factory, mixed_repo, ["iris_sklearn"], "no-modules",
                               args=["--runtime-dir", str(empty), "--python-executable", sys.executable])
    for model, module in (("add_sub", "onnxruntime"), ("xgb", "xgboost"), ("torch_linear", "pytorch")):
        assert_unavailable(srv, model, f"libferry_runtime_{module}.so not found in {empty}")
    assert_sklearn_serves(srv)
    # `ferry runtimes` with the same folder from the environment says the same.
    env = fh.child_env()
    env["FERRY_RUNTIME_DIR"] = str(empty)
    out = subprocess.run([str(ferry_binary), "runtimes", "--json"], capture_output=True, text=True, timeout=10,
                         env=env)
    assert out.returncode == 0, out.stderr
    by_name = {r["name"]: r for r in json.loads(out.stdout)["runtimes"]}
    for name in ("onnxruntime", "xgboost", "pytorch"):
        assert by_name[name]["status"] == "unavailable" and str(empty) in by_name[name]["error"], by_name[name]
    assert by_name["sklearn"]["status"] == "built in"


def onnxruntime_lib_dir(ferry_binary: Path) -> Path:
    """The folder the ONNX Runtime module finds libonnxruntime.so.1 in (its RUNPATH)."""
    module = ferry_binary.parent / "runtimes" / "libferry_runtime_onnxruntime.so"
    ldd = subprocess.run(["ldd", str(module)], capture_output=True, text=True, check=True).stdout
    line = next(l for l in ldd.splitlines() if "libonnxruntime.so" in l)
    return Path(line.split("=>")[1].split()[0]).resolve().parent


class HiddenLibrariesServer(fh.FerryServer):
    """A ferry serve run by hide_libraries.sh in a mount namespace of its own."""

    def __init__(self, *args, hide: list[str], stash: Path, **kw):
        super().__init__(*args, **kw)
        self.hide = hide
        self.stash = stash

    @property
    def command(self) -> list[str]:
        return ["unshare", "-m", "--propagation", "private", str(HIDE), "--stash", str(self.stash), *self.hide,
                "--", *super().command]


def hide_args(ferry_binary: Path) -> list[str]:
    args = []
    for glob in HIDDEN_LIBS:
        args += ["--lib", glob]
    return args + ["--dir", str(onnxruntime_lib_dir(ferry_binary))]


@pytest.mark.skipif(os.geteuid() != 0, reason="hiding libraries takes a mount namespace, which needs root")
def test_without_the_framework_libraries_their_models_are_unavailable_naming_the_library(
        ferry_binary, mixed_repo, tmp_path):
    hide = hide_args(ferry_binary)
    # The command-line side first: ferry runs, and `ferry runtimes` names what is missing
    # without loading anything.
    runtimes = subprocess.run(["unshare", "-m", "--propagation", "private", str(HIDE), "--stash",
                               str(tmp_path / "stash0"), *hide, "--", str(ferry_binary), "runtimes", "--json"],
                              capture_output=True, text=True, timeout=30, env=fh.child_env())
    assert runtimes.returncode == 0, runtimes.stderr
    by_name = {r["name"]: r for r in json.loads(runtimes.stdout)["runtimes"]}
    assert "libonnxruntime.so.1" in by_name["onnxruntime"]["error"] and "scripts/setup.sh" in by_name["onnxruntime"]["error"]
    assert "libxgboost.so" in by_name["xgboost"]["error"] and "Debian package libxgboost" in by_name["xgboost"]["error"]
    assert "libtorch" in by_name["pytorch"]["error"] and "Debian package libtorch" in by_name["pytorch"]["error"]
    assert all(by_name[n]["status"] == "unavailable" for n in ("onnxruntime", "xgboost", "pytorch"))

    srv = HiddenLibrariesServer(ferry_binary, [mixed_repo], ["--python-executable", sys.executable,
                                                             "--model-control-mode", "explicit", "--load-model", "*"],
                                tmp_path / "ferry-hidden.log", hide=hide, stash=tmp_path / "stash1")
    try:
        srv.start(wait="live")
        fh.wait_models_ready(srv, ["iris_sklearn"])
        # The loader's own words name the library; the reason adds where it comes from.
        assert_unavailable(srv, "add_sub", "libferry_runtime_onnxruntime.so", "libonnxruntime.so.1",
                           "cannot open shared object file", "scripts/setup.sh")
        assert_unavailable(srv, "xgb", "libferry_runtime_xgboost.so", "libxgboost.so",
                           "cannot open shared object file", "Debian package libxgboost")
        assert_unavailable(srv, "torch_linear", "libferry_runtime_pytorch.so", "cannot open shared object file",
                           "Debian package libtorch")
        assert_sklearn_serves(srv)
        # Loading again retries the module (and fails the same way), without a restart.
        resp = srv.post("/v2/repository/models/xgb/load", json={})
        assert resp.status_code >= 400 and "libxgboost.so" in resp.text, resp.text
        assert srv.is_running()
    finally:
        assert srv.stop() == 0, srv.describe()


def test_an_installed_ferry_finds_its_modules_under_the_prefix(ferry_binary, model_repo, tmp_path):
    prefix = tmp_path / "prefix"
    inst = subprocess.run(["cmake", "--install", str(ferry_binary.parent), "--prefix", str(prefix)],
                          capture_output=True, text=True, timeout=120)
    assert inst.returncode == 0, inst.stdout + inst.stderr
    installed = prefix / "bin" / "ferry"
    out = subprocess.run([str(installed), "runtimes", "--json"], capture_output=True, text=True, timeout=10,
                         env=fh.child_env())
    assert out.returncode == 0, out.stderr
    by_name = {r["name"]: r for r in json.loads(out.stdout)["runtimes"]}
    for name in ("onnxruntime", "xgboost", "pytorch"):
        assert by_name[name]["status"] == "available", by_name[name]
        assert by_name[name]["module"] == str(prefix / "lib" / "ferry" / "runtimes" / f"libferry_runtime_{name}.so")
    srv = fh.FerryServer(installed, [model_repo], [], tmp_path / "ferry-installed.log")
    try:
        srv.start()
        resp = srv.post("/v2/models/add_sub/versions/1/infer", json={"inputs": [
            {"name": "INPUT0", "shape": [1, 16], "datatype": "FP32", "data": [1.0] * 16},
            {"name": "INPUT1", "shape": [1, 16], "datatype": "FP32", "data": [2.0] * 16}]})
        assert resp.status_code == 200 and resp.json()["outputs"][0]["data"] == [3.0] * 16, resp.text
    finally:
        assert srv.stop() == 0, srv.describe()
