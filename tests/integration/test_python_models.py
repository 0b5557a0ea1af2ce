"""Python models in worker processes: custom model.py classes on the ferry_sdk base
class, served by the real server over REST (tritonclient.http) and gRPC
(tritonclient.grpc), and what happens when such a model crashes, hangs, raises or
fails to load. scikit-learn and LightGBM models are in test_sklearn_lightgbm.py.
"""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

import ferry_helpers as fh

PYTHON_ARGS = ["--python-executable", sys.executable]

ARITH = '''
import os
import numpy as np
from ferry_sdk import Model

class Arith(Model):
    def load(self):
        self.offset = float(self.context.parameters.get("offset", "0"))

    def predict(self, inputs):
        a, b = inputs["A"], inputs["B"]
        rows = np.full(a.shape[0], a.shape[0], dtype=np.int32)
        return {"SUM": a + b + self.offset, "PRODUCT": a * b,
                "ROWS": rows, "PID": np.full(a.shape[0], os.getpid(), dtype=np.int64)}
'''

ECHO = '''
import numpy as np
from ferry_sdk import Model

class Echo(Model):
    def predict(self, inputs):
        words = inputs["WORDS"]
        return {"NUMBERS_OUT": inputs["NUMBERS"],
                "UPPER": np.array([w.upper() for w in words.reshape(-1)], dtype=object).reshape(words.shape),
                "LENGTHS": np.array([len(w) for w in words.reshape(-1)], dtype=np.int32).reshape(words.shape)}
'''

# Misbehaves on purpose: 13 -> os._exit(3), 11 -> a segfault, 7 -> hangs; otherwise doubles x.
MISBEHAVE = '''
import ctypes, os, time
from ferry_sdk import Model

class Misbehave(Model):
    def predict(self, inputs):
        x = inputs["X"]
        if x[0] == 13:
            os._exit(3)
        if x[0] == 11:
            ctypes.string_at(0)
        if x[0] == 7:
            time.sleep(60)
        return {"Y": x * 2}
'''

RAISE = '''
from ferry_sdk import InvalidInput, Model

class Picky(Model):
    def predict(self, inputs):
        x = inputs["X"]
        if (x < 0).any():
            raise InvalidInput("X must not be negative, got %d" % x.min())
        if (x == 0).any():
            raise RuntimeError("division by zero inside the model")
        print("picky saw", x.tolist())
        return {"Y": 100 // x}
'''

LOAD_FAIL = '''
from ferry_sdk import Model

class Broken(Model):
    def load(self):
        raise FileNotFoundError("weights.bin is missing from the model folder")

    def predict(self, inputs):
        return {}
'''

ONE_IN_ONE_OUT = '''
backend: "python"
input [ {{ name: "X" data_type: TYPE_INT64 dims: [ -1 ] }} ]
output [ {{ name: "Y" data_type: TYPE_INT64 dims: [ -1 ] }} ]
{extra}
'''


def write_model(repo: Path, name: str, code: str, config: str) -> None:
    (repo / name / "1").mkdir(parents=True)
    (repo / name / "1" / "model.py").write_text(textwrap.dedent(code))
    (repo / name / "config.pbtxt").write_text(config)


def make_repo(repo: Path) -> Path:
    write_model(repo, "py_arith", ARITH, """
backend: "python"
max_batch_size: 16
input [ { name: "A" data_type: TYPE_FP32 dims: [ 3 ] }, { name: "B" data_type: TYPE_FP32 dims: [ 3 ] } ]
output [ { name: "SUM" data_type: TYPE_FP32 dims: [ 3 ] }, { name: "PRODUCT" data_type: TYPE_FP32 dims: [ 3 ] },
         { name: "ROWS" data_type: TYPE_INT32 dims: [ ] }, { name: "PID" data_type: TYPE_INT64 dims: [ ] } ]
instance_group [ { count: 2 kind: KIND_CPU } ]
dynamic_batching { max_queue_delay_microseconds: 50000 }
parameters { key: "offset" value: { string_value: "0.5" } }
""")
    write_model(repo, "py_echo", ECHO, """
backend: "python"
input [ { name: "NUMBERS" data_type: TYPE_INT16 dims: [ -1 ] }, { name: "WORDS" data_type: TYPE_STRING dims: [ -1 ] } ]
output [ { name: "NUMBERS_OUT" data_type: TYPE_INT16 dims: [ -1 ] }, { name: "UPPER" data_type: TYPE_STRING dims: [ -1 ] },
         { name: "LENGTHS" data_type: TYPE_INT32 dims: [ -1 ] } ]
""")
    write_model(repo, "py_crash", MISBEHAVE, ONE_IN_ONE_OUT.format(extra=""))
    write_model(repo, "py_hang", MISBEHAVE, ONE_IN_ONE_OUT.format(
        extra='parameters { key: "execution_timeout_ms" value: { string_value: "1000" } }'))
    write_model(repo, "py_slow_default", MISBEHAVE, ONE_IN_ONE_OUT.format(extra=""))
    write_model(repo, "py_raise", RAISE, ONE_IN_ONE_OUT.format(extra=""))
    write_model(repo, "py_load_fail", LOAD_FAIL, ONE_IN_ONE_OUT.format(extra=""))
    write_model(repo, "py_no_config", ARITH, 'backend: "python"\n')
    write_model(repo, "py_bad_python", ARITH, ONE_IN_ONE_OUT.format(
        extra='parameters { key: "python_executable" value: { string_value: "/nonexistent/python3" } }'))
    return repo


SERVED = ["py_arith", "py_echo", "py_crash", "py_hang", "py_slow_default", "py_raise"]


HTTP_TIMEOUT_S = 30  # the conftest http client's timeout: workers may be (re)starting


@pytest.fixture(scope="module")
def server(ferry_module_factory, tmp_path_factory):
    repo = make_repo(tmp_path_factory.mktemp("python") / "repo")
    return fh.start_with_models(ferry_module_factory, repo, SERVED, "python", args=PYTHON_ARGS)


def int_input(module, x: np.ndarray, name: str = "X"):
    inp = module.InferInput(name, list(x.shape), "INT64")
    inp.set_data_from_numpy(x)
    return inp


def infer_x(http, model: str, values, **kw) -> np.ndarray:
    x = np.array(values, dtype=np.int64)
    return http.infer(model, [int_input(httpclient, x)], **kw).as_numpy("Y")


def worker_pids(server) -> set[int]:
    """pids of the server's children that run ferry_sdk.worker, from /proc."""
    pids = set()
    for task in Path(f"/proc/{server.proc.pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for pid in map(int, children):
            try:
                if b"ferry_sdk.worker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    pids.add(pid)
            except OSError:
                pass
    return pids


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


# --------------------------------------------------------------------------- serving


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_arith_over_http(http, binary):
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.full((2, 3), 2.5, dtype=np.float32)
    inputs = []
    for name, v in (("A", a), ("B", b)):
        i = httpclient.InferInput(name, list(v.shape), "FP32")
        i.set_data_from_numpy(v, binary_data=binary)
        inputs.append(i)
    outs = [httpclient.InferRequestedOutput(n, binary_data=binary) for n in ("SUM", "PRODUCT")]
    r = http.infer("py_arith", inputs, outputs=outs)
    np.testing.assert_array_equal(r.as_numpy("SUM"), a + b + 0.5)  # offset from the config
    np.testing.assert_array_equal(r.as_numpy("PRODUCT"), a * b)
    assert r.as_numpy("SUM").dtype == np.float32


def test_numbers_and_bytes_over_grpc(grpc_client):
    nums = np.array([-3, 7, 32000], dtype=np.int16)
    words = np.array([b"ferry", b"", "caf\u00e9".encode()], dtype=object)
    i1 = grpcclient.InferInput("NUMBERS", [3], "INT16")
    i1.set_data_from_numpy(nums)
    i2 = grpcclient.InferInput("WORDS", [3], "BYTES")
    i2.set_data_from_numpy(words)
    r = grpc_client.infer("py_echo", [i1, i2])
    np.testing.assert_array_equal(r.as_numpy("NUMBERS_OUT"), nums)
    assert r.as_numpy("NUMBERS_OUT").dtype == np.int16
    assert list(r.as_numpy("UPPER")) == [w.upper() for w in words]
    np.testing.assert_array_equal(r.as_numpy("LENGTHS"), [len(w) for w in words])


def test_metadata_reports_the_python_platform(http):
    meta = http.get_model_metadata("py_arith")
    assert meta["platform"] == "python", meta
    assert [i["name"] for i in meta["inputs"]] == ["A", "B"], meta


def test_dynamic_batching_across_two_worker_processes(server, http):
    pids = worker_pids(server)
    assert len(pids) >= 2 + len(SERVED) - 1, f"expected two workers for py_arith among {pids}"
    rng = np.random.default_rng(0)
    cases = [(rng.standard_normal((1, 3)).astype(np.float32), rng.standard_normal((1, 3)).astype(np.float32))
             for _ in range(12)]

    def one(ab):
        a, b = ab
        c = httpclient.InferenceServerClient(server.url, network_timeout=30)
        try:
            ins = []
            for name, v in (("A", a), ("B", b)):
                i = httpclient.InferInput(name, [1, 3], "FP32")
                i.set_data_from_numpy(v)
                ins.append(i)
            r = c.infer("py_arith", ins)
            return r.as_numpy("SUM"), r.as_numpy("ROWS"), r.as_numpy("PID")
        finally:
            c.close()

    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(one, cases))
    for (a, b), (total, _, _) in zip(cases, results):
        np.testing.assert_allclose(total, a + b + 0.5, rtol=1e-6)
    assert max(int(rows[0]) for _, rows, _ in results) > 1, "no two requests were batched into one predict call"
    assert {int(p[0]) for _, _, p in results} <= pids


def execution_counts(http, model: str) -> tuple[int, int]:
    """(inference_count, execution_count) from the statistics extension."""
    stats = http.get_inference_statistics(model)["model_stats"][0]
    return int(stats["inference_count"]), int(stats["execution_count"])


def test_concurrent_requests_become_fewer_predict_calls(server, http):
    """Dynamic batching for a Python model: concurrent single-row requests are answered
    each with its own rows, from fewer executions (predict calls) than requests, as the
    statistics extension counts them."""
    rng = np.random.default_rng(1)
    cases = [(rng.standard_normal((1, 3)).astype(np.float32), rng.standard_normal((1, 3)).astype(np.float32))
             for _ in range(16)]
    before = execution_counts(http, "py_arith")

    def one(ab):
        a, b = ab
        c = grpcclient.InferenceServerClient(fh.grpc_url(server))
        try:
            ins = []
            for name, v in (("A", a), ("B", b)):
                i = grpcclient.InferInput(name, [1, 3], "FP32")
                i.set_data_from_numpy(v)
                ins.append(i)
            r = c.infer("py_arith", ins, client_timeout=HTTP_TIMEOUT_S)
            return r.as_numpy("SUM"), r.as_numpy("PRODUCT")
        finally:
            c.close()

    with ThreadPoolExecutor(len(cases)) as pool:
        results = list(pool.map(one, cases))
    for (a, b), (total, product) in zip(cases, results):
        np.testing.assert_allclose(total, a + b + 0.5, rtol=1e-6)
        np.testing.assert_allclose(product, a * b, rtol=1e-6)
    after = execution_counts(http, "py_arith")
    inferences, executions = after[0] - before[0], after[1] - before[1]
    assert inferences == len(cases), (before, after)
    assert 1 <= executions < inferences, f"{inferences} requests ran as {executions} predict calls"


# --------------------------------------------------------------------------- failures


def test_predict_errors_keep_the_worker(http, grpc_client, server):
    with pytest.raises(InferenceServerException) as user:
        infer_x(http, "py_raise", [5, -2])
    assert "400" in str(user.value.status()), user.value
    assert "X must not be negative, got -2" in user.value.message(), user.value.message()
    with pytest.raises(InferenceServerException) as internal:
        infer_x(http, "py_raise", [0])
    assert "500" in str(internal.value.status()), internal.value
    assert "RuntimeError: division by zero inside the model" in internal.value.message()
    with pytest.raises(InferenceServerException) as over_grpc:
        grpc_client.infer("py_raise", [int_input(grpcclient, np.array([-1], dtype=np.int64))])
    assert over_grpc.value.status() == "StatusCode.INVALID_ARGUMENT", over_grpc.value
    np.testing.assert_array_equal(infer_x(http, "py_raise", [3, 50]), [33, 2])
    # The worker's prints reach the server log, tagged with the model and pid.
    fh.wait_until(lambda: "picky saw [3, 50]" in server.log_tail(400), 5, "the worker's print in the server log")
    line = next(l for l in server.log_tail(400).splitlines() if "picky saw [3, 50]" in l)
    assert "model=py_raise" in line and "pid=" in line, line


@pytest.mark.parametrize("magic, how", [(13, "exited with status 3"), (11, "killed by signal 11")])
def test_a_crashing_worker_fails_only_its_request(http, server, magic, how):
    before = worker_pids(server)
    np.testing.assert_array_equal(infer_x(http, "py_crash", [1]), [2])
    with pytest.raises(InferenceServerException) as crash:
        infer_x(http, "py_crash", [magic, 1])
    msg = crash.value.message()
    assert "500" in str(crash.value.status()), crash.value
    assert "py_crash" in msg and how in msg, msg
    np.testing.assert_array_equal(infer_x(http, "py_crash", [4, 5]), [8, 10])  # a new worker
    assert fh.http_request("GET", f"{server.base}/v2/health/ready").status_code == 200
    assert len(worker_pids(server)) == len(before), "the crashed worker was not replaced one for one"


def test_a_hanging_worker_is_killed_after_execution_timeout(http, server):
    start = time.monotonic()
    with pytest.raises(InferenceServerException) as timeout:
        infer_x(http, "py_hang", [7])
    elapsed = time.monotonic() - start
    msg = timeout.value.message()
    assert "execution_timeout_ms" in msg and "py_hang" in msg, msg
    assert "504" in str(timeout.value.status()) or "DEADLINE" in msg.upper(), timeout.value
    assert 0.9 < elapsed < 10, elapsed
    hung = int(msg.split("pid ")[1].split(")")[0])
    assert not alive(hung), f"worker {hung} still runs"
    np.testing.assert_array_equal(infer_x(http, "py_hang", [1, 2]), [2, 4])


def test_a_request_timeout_stops_the_worker(grpc_client, http):
    start = time.monotonic()
    with pytest.raises(InferenceServerException) as timeout:
        grpc_client.infer("py_slow_default", [int_input(grpcclient, np.array([7], dtype=np.int64))],
                          timeout=300_000)  # the request's own timeout, in microseconds
    assert timeout.value.status() == "StatusCode.DEADLINE_EXCEEDED", timeout.value
    assert time.monotonic() - start < 10
    np.testing.assert_array_equal(infer_x(http, "py_slow_default", [3]), [6])


def test_models_that_cannot_load_say_why(http):
    by_name = {e["name"]: e for e in http.get_model_repository_index()}
    broken = by_name["py_load_fail"]
    assert broken["state"] == "UNAVAILABLE", broken
    assert "FileNotFoundError: weights.bin is missing from the model folder" in broken["reason"], broken
    assert "Traceback" not in broken["reason"], broken
    no_config = by_name["py_no_config"]
    assert no_config["state"] == "UNAVAILABLE" and "declares its inputs" in no_config["reason"], no_config
    bad_python = by_name["py_bad_python"]
    assert "/nonexistent/python3" in bad_python["reason"], bad_python


# --------------------------------------------------------------------------- shutdown


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_no_worker_outlives_the_server(ferry_factory, tmp_path, how):
    repo = tmp_path / "repo"
    write_model(repo, "py_arith", ARITH, (
        'backend: "python"\nmax_batch_size: 4\n'
        'input [ { name: "A" data_type: TYPE_FP32 dims: [ 3 ] }, { name: "B" data_type: TYPE_FP32 dims: [ 3 ] } ]\n'
        'output [ { name: "SUM" data_type: TYPE_FP32 dims: [ 3 ] } ]\n'
        'instance_group [ { count: 2 } ]\n'))
    srv = ferry_factory.start(repos=repo, args=PYTHON_ARGS, name="orphans")
    pids = worker_pids(srv)
    assert len(pids) == 2, pids
    if how == "SIGTERM":
        srv.stop_and_check()
    else:
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait(timeout=10)
        srv.returncode = srv.proc.returncode
        srv.failure_reported = True  # killed on purpose: no exit code to check
    fh.wait_until(lambda: not any(alive(p) for p in pids), 5, f"workers {pids} to end after {how}")
