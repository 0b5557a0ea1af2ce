"""The command line: every flag has an environment variable, flags win, --help reads."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import requests

import ferry_helpers as fh


def test_environment_variables_configure_the_server_and_flags_win(ferry_binary, model_repo, tmp_path):
    http, grpc, metrics, other = fh.free_ports(4)
    env = fh.child_env()
    env.update({
        "FERRY_MODEL_REPOSITORY": str(model_repo),
        "FERRY_HTTP_ADDRESS": "127.0.0.1",
        "FERRY_HTTP_PORT": str(other),  # overridden by the flag below
        "FERRY_GRPC_PORT": str(grpc),
        "FERRY_METRICS_PORT": str(metrics),
        "FERRY_MODEL_CONTROL_MODE": "explicit",
        "FERRY_LOAD_MODEL": "int_ops",
        "FERRY_LOG_LEVEL": "warning",
    })
    log = open(tmp_path / "ferry.log", "wb")
    proc = subprocess.Popen([str(ferry_binary), "serve", "--http-port", str(http)], env=env,
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        fh.wait_until(lambda: requests.get(f"http://127.0.0.1:{http}/v2/health/ready", timeout=1).status_code == 200,
                      30, "ferry configured from the environment to become ready")
        index = requests.post(f"http://127.0.0.1:{http}/v2/repository/index", timeout=5).json()
        ready = {m["name"] for m in index if m.get("state") == "READY"}
        assert ready == {"int_ops"}  # FERRY_MODEL_CONTROL_MODE and FERRY_LOAD_MODEL applied
        assert requests.get(f"http://127.0.0.1:{metrics}/metrics", timeout=5).status_code == 200
        try:
            requests.get(f"http://127.0.0.1:{other}/v2/health/live", timeout=1)
            raise AssertionError("the FERRY_HTTP_PORT port answered although --http-port was given")
        except requests.ConnectionError:
            pass
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        log.close()
    # FERRY_LOG_LEVEL=warning: no info lines.
    assert b"level=info" not in (tmp_path / "ferry.log").read_bytes()


def test_help_and_bad_flags(ferry_binary):
    out = subprocess.run([str(ferry_binary), "serve", "--help"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0
    for flag in ("--model-repository", "--http-port", "--grpc-port", "--metrics-port", "--model-control-mode",
                 "FERRY_HTTP_PORT", "FERRY_LOG_LEVEL"):
        assert flag in out.stdout
    bad = subprocess.run([str(ferry_binary), "serve", "--model-repository", "/nonexistent", "--model-control-mode",
                          "sometimes"], capture_output=True, text=True, timeout=10)
    assert bad.returncode == 2 and "none, poll or explicit" in bad.stderr
    missing = subprocess.run([str(ferry_binary), "serve"], capture_output=True, text=True, timeout=10,
                             env=fh.child_env())
    assert missing.returncode == 2 and "--model-repository" in missing.stderr


def test_runtimes_lists_built_in_runtimes_and_plugins(ferry_binary):
    import json

    import onnxruntime
    import xgboost

    plugins = ferry_binary.parent / "plugins"
    broken = ferry_binary.parent / "test_plugins"
    out = subprocess.run([str(ferry_binary), "runtimes", "--json", "--plugin-dir", str(plugins)],
                         capture_output=True, text=True, timeout=10, env=fh.child_env())
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    by_name = {r["name"]: r for r in doc["runtimes"]}
    assert by_name["onnxruntime"]["platform"] == "onnxruntime_onnx"
    assert "model.onnx" in by_name["onnxruntime"]["files"]
    assert by_name["xgboost"]["files"][:2] == ["model.json", "model.ubj"]
    # The C libraries are the same minor versions as the Python packages the tests pin.
    minor = lambda v: v.split(".")[:2]  # noqa: E731
    assert minor(by_name["onnxruntime"]["version"]) == minor(onnxruntime.__version__)
    assert minor(by_name["xgboost"]["version"]) == minor(xgboost.__version__)
    major, minor_abi = fh.plugin_abi_version()
    assert [(p["backend"], p["abi_version"], p["error"]) for p in doc["plugins"]] == \
        [("add_one", f"{major}.{minor_abi}", "")]

    # The plugins folder from the environment; libraries that cannot load say why.
    env = fh.child_env()
    env["FERRY_PLUGIN_DIR"] = str(broken)
    table = subprocess.run([str(ferry_binary), "runtimes"], capture_output=True, text=True, timeout=10, env=env)
    assert table.returncode == 0, table.stderr
    for text in ("onnxruntime", "xgboost", "model.onnx", "broken_version", f"was built for plugin ABI {major + 1}.0",
                 "broken_missing_execute", "ferry_plugin_instance_execute", str(broken)):
        assert text in table.stdout, f"{text!r} not in:\n{table.stdout}"

    bad = subprocess.run([str(ferry_binary), "runtimes", "--plugin-dir", "/nonexistent"], capture_output=True,
                         text=True, timeout=10, env=fh.child_env())
    assert bad.returncode == 2 and "/nonexistent" in bad.stderr


def test_runtimes_shows_the_python_frameworks_of_an_interpreter(ferry_binary):
    import importlib.metadata as md
    import json
    import sys

    out = subprocess.run([str(ferry_binary), "runtimes", "--json", "--python-executable", sys.executable],
                         capture_output=True, text=True, timeout=60, env=fh.child_env())
    assert out.returncode == 0, out.stderr
    by_name = {r["name"]: r for r in json.loads(out.stdout)["runtimes"]}
    assert f"scikit-learn {md.version('scikit-learn')} in {sys.executable}" in by_name["sklearn"]["version"]
    assert f"lightgbm {md.version('lightgbm')} in {sys.executable}" in by_name["lightgbm"]["version"]
    # An interpreter that cannot run says so instead of a version.
    out = subprocess.run([str(ferry_binary), "runtimes", "--json", "--python-executable", "/nonexistent/python"],
                         capture_output=True, text=True, timeout=60, env=fh.child_env())
    assert "unknown (/nonexistent/python did not run)" in json.loads(out.stdout)["runtimes"][-1]["version"]
