"""Dynamic batching, priorities, queue policies (timeouts, max_queue_size) and model
instances, checked end to end against onnxruntime.

Every test builds its own repository in a temporary folder.  The "heavy" models repeat
Tanh(MatMul(X, W)) on FP32 [-1,1024] with one 1024x1024 weight; the repeat count is
calibrated here with onnxruntime on one thread so that one execution takes several ms
("fast", ~8 ms) or tens of ms ("slow", ~40 ms), whatever this machine's speed.  Servers
run with one intra-op thread per instance so their execution times match.

Ordering never relies on sleeps: load comes from concurrent clients released together
by a barrier, and the test waits for states it can observe (ferry_queue_depth) by
polling with deadlines.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from pathlib import Path
from typing import Callable

import grpc
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import requests
from onnx import TensorProto, helper, numpy_helper

import ferry_helpers as fh
import grpc_helpers as gh

OPSET = 17
IR_VERSION = 8
WIDTH = 1024      # heavy model input width
OUT_WIDTH = 16    # heavy model output width
FAST_TARGET_MS = 8.0
SLOW_TARGET_MS = 40.0
HEAVY_RTOL = 1e-4
HEAVY_ATOL = 1e-4
CLIENT_TIMEOUT_S = 60.0   # per HTTP request; the join deadline below bounds every run
JOIN_TIMEOUT_S = 90.0
SERVER_ARGS = ["--intra-op-threads", "1"]


# --------------------------------------------------------------------------- models


def _save(model: onnx.ModelProto, path: Path) -> Path:
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def _heavy_model(repeats: int, path: Path) -> Path:
    """Y[b,16] = Tanh(...Tanh(X[b,1024] @ W)... @ W) @ W2, `repeats` MatMuls on one weight."""
    rng = np.random.default_rng(1234)
    w = (rng.standard_normal((WIDTH, WIDTH)) / math.sqrt(WIDTH)).astype(np.float32)
    w2 = (rng.standard_normal((WIDTH, OUT_WIDTH)) / math.sqrt(WIDTH)).astype(np.float32)
    # The weight goes through Add(W, 0 * ReduceMin(X)) so onnxruntime cannot treat it as a
    # constant: a constant MatMul weight is pre-packed once per node, which would cost
    # `repeats` x 4 MiB of memory and seconds of load time per instance.
    nodes = [helper.make_node("ReduceMin", ["X"], ["xmin"], keepdims=0),
             helper.make_node("Mul", ["xmin", "zero"], ["z"]),
             helper.make_node("Add", ["W", "z"], ["Wr"])]
    h = "X"
    for i in range(repeats):
        nodes.append(helper.make_node("MatMul", [h, "Wr"], [f"m{i}"]))
        nodes.append(helper.make_node("Tanh", [f"m{i}"], [f"t{i}"]))
        h = f"t{i}"
    nodes.append(helper.make_node("MatMul", [h, "W2"], ["Y"]))
    graph = helper.make_graph(
        nodes, "heavy",
        inputs=[helper.make_tensor_value_info("X", TensorProto.FLOAT, ["batch", WIDTH])],
        outputs=[helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["batch", OUT_WIDTH])],
        initializer=[numpy_helper.from_array(w, "W"), numpy_helper.from_array(w2, "W2"),
                     numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="ferry-tests")
    return _save(model, path)


def _vector_model(path: Path) -> Path:
    """X FP32 [b, n] (n variable): Y = X * 2 [b, n], S = ReduceSum(X, axis 1) [b, 1]."""
    nodes = [
        helper.make_node("Mul", ["X", "two"], ["Y"]),
        helper.make_node("ReduceSum", ["X", "axes"], ["S"], keepdims=1),
    ]
    graph = helper.make_graph(
        nodes, "vector",
        inputs=[helper.make_tensor_value_info("X", TensorProto.FLOAT, ["batch", "n"])],
        outputs=[helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["batch", "n"]),
                 helper.make_tensor_value_info("S", TensorProto.FLOAT, ["batch", 1])],
        initializer=[numpy_helper.from_array(np.array(2.0, dtype=np.float32), "two"),
                     numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="ferry-tests")
    return _save(model, path)


def _exec_ms(path: Path, runs: int = 5) -> float:
    """Median time of one batch-1 execution with onnxruntime on one thread."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((1, WIDTH)).astype(np.float32)
    sess.run(None, {"X": x})
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, {"X": x})
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


class HeavyModels:
    def __init__(self, folder: Path):
        probe_repeats = 16
        per_repeat = _exec_ms(_heavy_model(probe_repeats, folder / "probe.onnx")) / probe_repeats
        # A burst of load on this shared machine can make the probe look slow and the
        # models too fast: measured too fast, they are sized again from what they took.
        for _ in range(3):
            self.fast_repeats = max(16, min(2000, math.ceil(FAST_TARGET_MS / per_repeat)))
            self.slow_repeats = max(64, min(6000, math.ceil(SLOW_TARGET_MS / per_repeat)))
            self.fast = _heavy_model(self.fast_repeats, folder / "fast.onnx")
            self.slow = _heavy_model(self.slow_repeats, folder / "slow.onnx")
            self.fast_ms = _exec_ms(self.fast, runs=3)
            self.slow_ms = _exec_ms(self.slow, runs=3)
            if self.fast_ms >= 3.0:
                break
            per_repeat = self.fast_ms / self.fast_repeats

    def __repr__(self):
        return (f"HeavyModels(fast: {self.fast_repeats} MatMuls, {self.fast_ms:.1f} ms; "
                f"slow: {self.slow_repeats} MatMuls, {self.slow_ms:.1f} ms)")


@pytest.fixture(scope="module")
def heavy(tmp_path_factory):
    models = HeavyModels(tmp_path_factory.mktemp("heavy-models"))
    print(models)
    assert models.fast_ms >= 3.0, f"calibration failed to make a slow enough model: {models}"
    return models


@functools.lru_cache(maxsize=None)
def _ref_session(path: str) -> ort.InferenceSession:
    return ort.InferenceSession(path, providers=["CPUExecutionProvider"])


def reference_rows(path: Path, x: np.ndarray, output: str = "Y", chunk: int = 64) -> np.ndarray:
    """onnxruntime's output for x, run in chunks (row results do not depend on the chunk)."""
    sess = _ref_session(str(path))
    parts = [sess.run([output], {"X": x[i:i + chunk]})[0] for i in range(0, len(x), chunk)]
    return np.concatenate(parts)


def heavy_config(name: str, max_batch: int, extra: str = "", instances: int = 1) -> str:
    return f"""
name: "{name}"
platform: "onnxruntime_onnx"
max_batch_size: {max_batch}
input [ {{ name: "X" data_type: TYPE_FP32 dims: [ {WIDTH} ] }} ]
output [ {{ name: "Y" data_type: TYPE_FP32 dims: [ {OUT_WIDTH} ] }} ]
instance_group [ {{ count: {instances} kind: KIND_CPU }} ]
{extra}
"""


def add_model(repo: Path, name: str, model_file: Path, config: str) -> None:
    folder = repo / name / "1"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.onnx").write_bytes(Path(model_file).read_bytes())
    (repo / name / "config.pbtxt").write_text(config)


# --------------------------------------------------------------------------- clients


def infer_url(server, model: str) -> str:
    return f"{server.base}/v2/models/{model}/versions/1/infer"


def post_heavy(session: requests.Session, server, model: str, x: np.ndarray, params: dict | None = None) -> dict:
    """One binary-tensor request; returns a record with status, headers, Y (on 200), t_done."""
    body, headers = fh.binary_request({"X": x}, outputs={"Y": True}, parameters=params)
    t0 = time.monotonic()
    resp = session.post(infer_url(server, model), data=body, headers=headers, timeout=CLIENT_TIMEOUT_S)
    rec = {"status": resp.status_code, "headers": dict(resp.headers), "t_sent": t0,
           "t_done": time.monotonic(), "x": x}
    if resp.status_code == 200:
        _, outs = fh.parse_infer_response(resp)
        rec["Y"] = outs["Y"]
    else:
        rec["body"] = resp.content
        try:
            rec["error"] = fh.error_message(resp)
        except AssertionError as exc:
            rec["error"] = f"<{exc}>"
    return rec


def run_clients(server, n_clients: int, per_client: int,
                call: Callable[[requests.Session, int, int], dict]) -> list[list[dict]]:
    """n_clients threads, each with its own keep-alive connection (opened first), released
    together by a barrier, each making per_client calls in turn. Returns records[ci][j]."""
    records: list[list[dict | None]] = [[None] * per_client for _ in range(n_clients)]
    errors: list[str] = []
    barrier = threading.Barrier(n_clients)

    def client(ci: int) -> None:
        with requests.Session() as s:
            try:
                s.get(f"{server.base}/v2/health/live", timeout=CLIENT_TIMEOUT_S).close()
                barrier.wait(timeout=JOIN_TIMEOUT_S)
                for j in range(per_client):
                    records[ci][j] = call(s, ci, j)
            except BaseException as exc:  # noqa: BLE001 - reported below
                barrier.abort()
                errors.append(f"client {ci}: {exc!r}")

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(n_clients)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "clients still running after the deadline"
    assert not errors, "\n".join(errors)
    return records  # type: ignore[return-value]


class Background:
    """Runs fn in a thread; .result() joins it (bounded) and re-raises its exception."""

    def __init__(self, fn: Callable[[], object]):
        self._value = None
        self._exc: BaseException | None = None

        def target():
            try:
                self._value = fn()
            except BaseException as exc:  # noqa: BLE001
                self._exc = exc

        self._thread = threading.Thread(target=target, daemon=True)
        self._thread.start()

    def result(self, timeout: float = JOIN_TIMEOUT_S):
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "background call still running after the deadline"
        if self._exc is not None:
            raise self._exc
        return self._value


def assert_heavy_correct(path: Path, recs: list[dict], what: str) -> None:
    ok = [r for r in recs if r["status"] == 200]
    if not ok:
        return
    x = np.concatenate([r["x"] for r in ok])
    expected = reference_rows(path, x)
    row = 0
    for i, r in enumerate(ok):
        n = len(r["x"])
        assert r["Y"].shape == (n, OUT_WIDTH), f"{what} #{i}: shape {r['Y'].shape}, expected {(n, OUT_WIDTH)}"
        np.testing.assert_allclose(r["Y"], expected[row:row + n], rtol=HEAVY_RTOL, atol=HEAVY_ATOL,
                                   err_msg=f"{what} #{i} (batch {n}) differs from onnxruntime")
        row += n


def stats(server, model: str) -> dict:
    resp = server.get(f"/v2/models/{model}/versions/1/stats")
    assert resp.status_code == 200, resp.text
    return resp.json()["model_stats"][0]


def scrape(server):
    resp = fh.http_request("GET", f"http://{server.metrics_url}/metrics")
    assert resp.status_code == 200, resp.text[:300]
    return fh.parse_metrics(resp.text)


def queue_depth(server, model: str) -> float:
    return fh.metric_sum(scrape(server), "ferry_queue_depth", model=model, version="1")


def wait_queue_depth(server, model: str, at_least: int, timeout: float = 20.0) -> float:
    return fh.wait_until(lambda: (d := queue_depth(server, model)) >= at_least and d, timeout,
                         f"ferry_queue_depth{{model={model!r}}} >= {at_least}", interval=0.005)


def failures(samples, model: str, reason: str) -> float:
    return fh.metric_sum(samples, "ferry_inference_failures_total", model=model, reason=reason)


def check_batch_stats(st: dict, max_batch: int, rows: int) -> None:
    """Statistics consistent with themselves and with the rows sent."""
    bstats = st["batch_stats"]
    assert st["inference_count"] == rows, f"inference_count {st['inference_count']}, sent {rows} rows"
    assert sum(b["compute_infer"]["count"] for b in bstats) == st["execution_count"], bstats
    assert sum(b["batch_size"] * b["compute_infer"]["count"] for b in bstats) == st["inference_count"], bstats
    assert all(1 <= b["batch_size"] <= max_batch for b in bstats), f"a batch over max_batch_size {max_batch}: {bstats}"


def assert_healthy(server) -> None:
    assert server.is_running(), server.describe()
    assert server.get("/v2/health/live").status_code == 200
    assert server.get("/v2/health/ready").status_code == 200


# --------------------------------------------------------------------------- 1 + 7: batching on vs off

BATCH_CLIENTS = 32
BATCH_PER_CLIENT = 4
BATCHED, PLAIN = "heavy_batched", "heavy_plain"
BATCH_MAX = 16


def _rows_of(ci: int, j: int) -> int:
    k = (ci * BATCH_PER_CLIENT + j) % 8
    return 2 if k == 3 else 3 if k == 6 else 1


@pytest.fixture(scope="module")
def batching_run(heavy, ferry_module_factory, tmp_path_factory):
    """The same model served with and without dynamic batching, under the same load."""
    repo = tmp_path_factory.mktemp("batching") / "repo"
    add_model(repo, BATCHED, heavy.fast,
              heavy_config(BATCHED, BATCH_MAX, "dynamic_batching { max_queue_delay_microseconds: 2000 }"))
    add_model(repo, PLAIN, heavy.fast, heavy_config(PLAIN, BATCH_MAX))
    server = ferry_module_factory.start(repos=repo, args=SERVER_ARGS, name="batching")
    rng = np.random.default_rng(7)
    out = {"server": server, "heavy": heavy}
    for model in (BATCHED, PLAIN):
        inputs = [[rng.standard_normal((_rows_of(ci, j), WIDTH)).astype(np.float32)
                   for j in range(BATCH_PER_CLIENT)] for ci in range(BATCH_CLIENTS)]
        t0 = time.monotonic()
        recs = run_clients(server, BATCH_CLIENTS, BATCH_PER_CLIENT,
                           lambda s, ci, j, m=model, xs=inputs: post_heavy(s, server, m, xs[ci][j]))
        flat = [r for per in recs for r in per]
        out[model] = {"records": flat, "seconds": time.monotonic() - t0,
                      "rows": sum(len(r["x"]) for r in flat), "requests": len(flat)}
    samples = scrape(server)
    for model in (BATCHED, PLAIN):
        out[model]["stats"] = stats(server, model)
        out[model]["metrics"] = samples
    print({m: (round(out[m]["seconds"], 2), out[m]["stats"]["execution_count"]) for m in (BATCHED, PLAIN)})
    return out


@pytest.mark.parametrize("model", [BATCHED, PLAIN])
def test_every_response_matches_onnxruntime_for_its_own_input(batching_run, model):
    recs = batching_run[model]["records"]
    bad = [(r["status"], r.get("error")) for r in recs if r["status"] != 200]
    assert not bad, f"{len(bad)} of {len(recs)} requests failed: {bad[:5]}"
    assert {len(r["x"]) for r in recs} == {1, 2, 3}
    assert_heavy_correct(batching_run["heavy"].fast, recs, model)


def test_dynamic_batching_joins_concurrent_requests(batching_run):
    run = batching_run[BATCHED]
    st = run["stats"]
    assert st["inference_count"] == run["rows"]
    assert st["execution_count"] < st["inference_count"], st
    assert st["execution_count"] < run["requests"], f"no two requests were batched together: {st}"
    sizes = {b["batch_size"] for b in st["batch_stats"]}
    assert max(sizes) > 3, f"no execution larger than one request: batch sizes {sorted(sizes)}"

    labels = {"model": BATCHED, "version": "1", "protocol": "http"}
    samples = run["metrics"]
    count = fh.metric_sum(samples, "ferry_batch_size_count", **labels)
    buckets = {float(l["le"]): v for _, l, v in fh.metric_samples(samples, "ferry_batch_size_bucket", **labels)}
    assert 1.0 in buckets and math.inf in buckets, f"ferry_batch_size buckets: {sorted(buckets)}"
    one_row = buckets[1.0]
    assert count == st["execution_count"], f"ferry_batch_size_count {count}, execution_count {st['execution_count']}"
    assert fh.metric_sum(samples, "ferry_batch_size_sum", **labels) == run["rows"]
    assert count - one_row > 0, "ferry_batch_size shows no execution of more than one row"


def test_without_dynamic_batching_every_request_runs_alone(batching_run):
    run = batching_run[PLAIN]
    st = run["stats"]
    assert st["inference_count"] == run["rows"]
    assert st["execution_count"] == run["requests"], st
    want: dict[int, int] = {}
    for r in run["records"]:
        want[len(r["x"])] = want.get(len(r["x"]), 0) + 1
    got = {b["batch_size"]: b["compute_infer"]["count"] for b in st["batch_stats"]}
    assert got == want, f"batch_stats {got}, expected one execution per request {want}"
    labels = {"model": PLAIN, "version": "1", "protocol": "http"}
    assert fh.metric_sum(run["metrics"], "ferry_batch_size_count", **labels) == run["requests"]
    assert fh.metric_sum(run["metrics"], "ferry_batch_size_sum", **labels) == run["rows"]


@pytest.mark.parametrize("model", [BATCHED, PLAIN])
def test_statistics_agree_with_what_was_sent(batching_run, model):
    run = batching_run[model]
    st = run["stats"]
    check_batch_stats(st, BATCH_MAX, run["rows"])
    s = st["inference_stats"]
    assert s["success"]["count"] == run["requests"], s
    assert s["fail"]["count"] == 0, s
    # per request phases, one per successful request
    for phase in ("queue", "compute_input", "compute_infer", "compute_output"):
        assert s[phase]["count"] == run["requests"], (phase, s)


# --------------------------------------------------------------------------- 2: shapes


def test_requests_with_different_shapes_or_outputs_are_not_batched_together(ferry_factory, tmp_path):
    model_file = _vector_model(tmp_path / "vector.onnx")
    repo = tmp_path / "repo"
    add_model(repo, "vector", model_file, """
name: "vector"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [ { name: "X" data_type: TYPE_FP32 dims: [ -1 ] } ]
output [ { name: "Y" data_type: TYPE_FP32 dims: [ -1 ] }, { name: "S" data_type: TYPE_FP32 dims: [ 1 ] } ]
dynamic_batching { max_queue_delay_microseconds: 20000 }
""")
    server = ferry_factory.start(repos=repo, args=SERVER_ARGS, name="shapes")
    output_sets = (["Y", "S"], ["Y"], ["S"])
    clients, per_client = 16, 6

    def call(s, ci, j):
        width = 3 if (ci + j) % 2 == 0 else 5
        rows = 1 + (ci * per_client + j) % 3 % 2
        x = np.random.default_rng(ci * 100 + j).standard_normal((rows, width)).astype(np.float32)
        outs = output_sets[(ci + j // 2) % 3]
        resp = s.post(infer_url(server, "vector"), json=fh.json_request({"X": x}, outputs=outs),
                      timeout=CLIENT_TIMEOUT_S)
        assert resp.status_code == 200, resp.content[:300]
        _, got = fh.parse_infer_response(resp)
        return {"x": x, "outs": outs, "got": got}

    recs = [r for per in run_clients(server, clients, per_client, call) for r in per]
    sess = _ref_session(str(model_file))
    for i, r in enumerate(recs):
        want = dict(zip(["Y", "S"], sess.run(["Y", "S"], {"X": r["x"]})))
        assert sorted(r["got"]) == sorted(r["outs"]), f"request {i}: outputs {sorted(r['got'])}, asked {r['outs']}"
        for name in r["outs"]:
            assert r["got"][name].shape == want[name].shape, \
                f"request {i} ({r['x'].shape}) {name}: shape {r['got'][name].shape}, expected {want[name].shape}"
            np.testing.assert_allclose(r["got"][name], want[name], rtol=1e-5, atol=1e-5, err_msg=f"request {i} {name}")
    st = stats(server, "vector")
    check_batch_stats(st, 8, sum(len(r["x"]) for r in recs))
    assert st["execution_count"] < len(recs), f"nothing was batched (the test proves little): {st}"


# --------------------------------------------------------------------------- 3: priority


def test_high_priority_request_overtakes_queued_low_priority_ones(heavy, ferry_factory, tmp_path):
    repo = tmp_path / "repo"
    add_model(repo, "prio", heavy.slow, heavy_config("prio", 2, """
dynamic_batching { priority_levels: 2 default_priority_level: 2 }"""))
    server = ferry_factory.start(repos=repo, args=SERVER_ARGS, name="priority")
    lows = 12
    rng = np.random.default_rng(3)
    low_x = [rng.standard_normal((1, WIDTH)).astype(np.float32) for _ in range(lows)]
    hi_x = rng.standard_normal((1, WIDTH)).astype(np.float32)

    low_run = Background(lambda: run_clients(server, lows, 1, lambda s, ci, j: post_heavy(s, server, "prio", low_x[ci])))
    wait_queue_depth(server, "prio", lows // 2)
    with requests.Session() as s:
        hi = post_heavy(s, server, "prio", hi_x, params={"priority": 1})
    low_recs = [per[0] for per in low_run.result()]

    assert hi["status"] == 200, hi
    bad = [(r["status"], r.get("error")) for r in low_recs if r["status"] != 200]
    assert not bad, bad
    assert_heavy_correct(heavy.slow, low_recs + [hi], "prio")
    pending = [r for r in low_recs if r["t_done"] > hi["t_sent"]]
    overtaken = [r for r in pending if r["t_done"] > hi["t_done"]]
    assert len(pending) >= 4, f"only {len(pending)} low-priority requests were still queued ({heavy})"
    assert len(overtaken) >= len(pending) / 2, (
        f"the priority-1 request finished after {len(pending) - len(overtaken)} of the {len(pending)} "
        f"low-priority requests queued before it (it should overtake most of them)")
    st = stats(server, "prio")
    check_batch_stats(st, 2, lows + 1)

    # A level outside 1..priority_levels is the client's error, over REST and gRPC.
    body = fh.json_request({"X": hi_x})
    body["parameters"] = {"priority": 3}
    fh.assert_error(server.post("/v2/models/prio/versions/1/infer", json=body), 400, "priority")
    req = gh.infer_request("prio", {"X": hi_x}, version="1")
    req.parameters["priority"].uint64_param = 3
    with gh.channel(server) as ch:
        gh.assert_rpc_error(gh.rpc_error(gh.stub(ch).ModelInfer, req), grpc.StatusCode.INVALID_ARGUMENT, "priority")
        # and a valid priority over gRPC, the way tritonclient sends it (uint64_param)
        req.parameters["priority"].uint64_param = 1
        got = gh.response_arrays(gh.stub(ch).ModelInfer(req, timeout=gh.RPC_TIMEOUT_S))["Y"]
    np.testing.assert_allclose(got, reference_rows(heavy.slow, hi_x), rtol=HEAVY_RTOL, atol=HEAVY_ATOL)
    assert_healthy(server)


# --------------------------------------------------------------------------- 4: timeouts


def _policy(timeout_us: int, action: str = "REJECT", override: bool = True) -> str:
    return (f"dynamic_batching {{ default_queue_policy {{ default_timeout_microseconds: {timeout_us} "
            f"timeout_action: {action} allow_timeout_override: {str(override).lower()} }} }}")


FLOOD_TIMEOUT_US = 150_000  # several slow executions; one alone fits with a wide margin
SHORT_TIMEOUT_US = 5_000    # well above a worker's wake-up, well below one slow execution


@pytest.fixture(scope="module")
def timeout_server(heavy, ferry_module_factory, tmp_path_factory):
    repo = tmp_path_factory.mktemp("timeouts") / "repo"
    models = {
        # one request per execution, so a flood queues for many executions
        "to_reject": (1, _policy(FLOOD_TIMEOUT_US, "REJECT", True)),
        "to_short": (4, _policy(SHORT_TIMEOUT_US, "REJECT", True)),  # far below one execution
        "to_override": (4, _policy(10_000_000, "REJECT", True)),
        "to_no_override": (4, _policy(10_000_000, "REJECT", False)),
        "to_delay": (4, _policy(1000, "DELAY", True)),
        "to_plain": (4, ""),                                # no dynamic_batching section
    }
    for name, (max_batch, extra) in models.items():
        add_model(repo, name, heavy.slow, heavy_config(name, max_batch, extra))
    return ferry_module_factory.start(repos=repo, args=SERVER_ARGS, name="timeouts")


def flood(server, model: str, n: int, seed: int, params: Callable[[int], dict | None] = lambda i: None):
    rng = np.random.default_rng(seed)
    xs = [rng.standard_normal((1, WIDTH)).astype(np.float32) for _ in range(n)]
    recs = run_clients(server, n, 1, lambda s, ci, j: post_heavy(s, server, model, xs[ci], params(ci)))
    return [per[0] for per in recs]


def behind_busy_instance(server, model: str, probes: list[Callable[[], object]], blockers: int = 6):
    """Keeps the model's one instance busy with full-batch requests (none can join another)
    and, once several wait in the queue, runs the probes concurrently. Returns
    (probe results, blocker records)."""
    rng = np.random.default_rng(11)
    xs = [rng.standard_normal((4, WIDTH)).astype(np.float32) for _ in range(blockers)]
    block = Background(lambda: run_clients(server, blockers, 1, lambda s, ci, j: post_heavy(s, server, model, xs[ci])))
    wait_queue_depth(server, model, blockers // 2)
    running = [Background(p) for p in probes]
    results = [r.result() for r in running]
    return results, [per[0] for per in block.result()]


TIMEOUT_WORDS = ("timed out", "timeout")


def assert_timeout_rpc(err) -> None:
    assert isinstance(err, grpc.RpcError), "a gRPC request with timeout 1000 us was served behind a busy instance"
    msg = gh.assert_rpc_error(err, grpc.StatusCode.DEADLINE_EXCEEDED)
    assert any(w in msg for w in TIMEOUT_WORDS), msg


def test_queue_timeout_rejects_with_504_and_keeps_serving(heavy, timeout_server):
    server = timeout_server
    before = scrape(server)
    # 16 requests one execution each: the last ones wait far longer than the model's
    # timeout.  Half ask for 10 s: a request may only shorten the model's timeout.
    recs = flood(server, "to_reject", 16, seed=21, params=lambda i: {"timeout": 10_000_000} if i % 2 else None)
    ok = [r for r in recs if r["status"] == 200]
    timed_out = [r for r in recs if r["status"] == 504]
    assert len(ok) + len(timed_out) == len(recs), [(r["status"], r.get("error")) for r in recs]
    assert ok, f"no request was served: {[r.get('error') for r in recs][:3]} ({heavy})"
    assert timed_out, f"no request timed out in the queue ({heavy})"
    assert any(recs[i]["status"] == 504 for i in range(1, len(recs), 2)), \
        "every request with timeout=10 s was served: the parameter lengthened the model's timeout"
    for r in timed_out:
        assert any(w in r["error"] for w in TIMEOUT_WORDS), r["error"]
    assert_heavy_correct(heavy.slow, ok, "to_reject")

    assert_healthy(server)
    with requests.Session() as s:  # alone, on an idle instance: served
        alone = post_heavy(s, server, "to_reject", recs[0]["x"])
    assert alone["status"] == 200, alone
    after = scrape(server)
    assert failures(after, "to_reject", "deadline_exceeded") - failures(before, "to_reject", "deadline_exceeded") \
        == len(timed_out)
    st = stats(server, "to_reject")
    assert st["inference_stats"]["fail"]["count"] == len(timed_out), st["inference_stats"]
    check_batch_stats(st, 1, len(ok) + 1)


def test_queue_timeout_bounds_only_the_wait_in_the_queue(heavy, timeout_server):
    """default_timeout_microseconds belongs to the *queue* policy (as in Triton): a request
    that reaches an idle instance at once is served even when its execution takes far
    longer than the timeout; requests queued behind it time out."""
    server = timeout_server
    x = np.random.default_rng(8).standard_normal((1, WIDTH)).astype(np.float32)
    with requests.Session() as s:
        alone = post_heavy(s, server, "to_short", x)
    assert alone["status"] == 200, (
        f"a lone request on an idle instance got {alone['status']} {alone.get('error')!r}: the model's "
        f"{SHORT_TIMEOUT_US} us queue timeout was applied to its ~{heavy.slow_ms:.0f} ms execution")
    assert_heavy_correct(heavy.slow, [alone], "to_short")
    recs = flood(server, "to_short", 12, seed=22)
    assert {r["status"] for r in recs} <= {200, 504}, [(r["status"], r.get("error")) for r in recs]
    assert any(r["status"] == 200 for r in recs), "no request of the flood was served"
    assert any(r["status"] == 504 for r in recs), "no request of the flood timed out in the queue"
    assert_heavy_correct(heavy.slow, recs, "to_short")


def test_request_timeout_parameter_over_rest_and_grpc(heavy, timeout_server):
    server = timeout_server
    x = np.random.default_rng(5).standard_normal((1, WIDTH)).astype(np.float32)
    want = reference_rows(heavy.slow, x)

    def rest(model, params):
        def go():
            with requests.Session() as s:
                return post_heavy(s, server, model, x, params)
        return go

    def grpc_call(model, timeout_us):
        def go():
            req = gh.infer_request(model, {"X": x}, version="1", outputs=["Y"])
            req.parameters["timeout"].int64_param = timeout_us
            with gh.channel(server) as ch:
                try:
                    return gh.response_arrays(gh.stub(ch).ModelInfer(req, timeout=JOIN_TIMEOUT_S))["Y"]
                except grpc.RpcError as err:
                    return err
        return go

    # Default 10 s, override allowed: 1 ms behind a busy instance times out; without it, served.
    (short, short_grpc, control), blockers = behind_busy_instance(
        server, "to_override", [rest("to_override", {"timeout": 1000}), grpc_call("to_override", 1000),
                                rest("to_override", None)])
    assert all(b["status"] == 200 for b in blockers), [(b["status"], b.get("error")) for b in blockers]
    assert short["status"] == 504, (short["status"], short.get("error"))
    assert any(w in short["error"] for w in TIMEOUT_WORDS), short["error"]
    assert_timeout_rpc(short_grpc)
    assert control["status"] == 200, control
    np.testing.assert_allclose(control["Y"], want, rtol=HEAVY_RTOL, atol=HEAVY_ATOL)

    # allow_timeout_override: false -- the request's timeout is ignored.
    (ignored,), _ = behind_busy_instance(server, "to_no_override", [rest("to_no_override", {"timeout": 1000})])
    assert ignored["status"] == 200, (ignored["status"], ignored.get("error"))
    np.testing.assert_allclose(ignored["Y"], want, rtol=HEAVY_RTOL, atol=HEAVY_ATOL)

    # No dynamic_batching section: the timeout still bounds the wait in the queue.
    (plain, plain_grpc), blockers = behind_busy_instance(
        server, "to_plain", [rest("to_plain", {"timeout": 1000}), grpc_call("to_plain", 1000)])
    assert all(b["status"] == 200 for b in blockers), [(b["status"], b.get("error")) for b in blockers]
    assert plain["status"] == 504, (plain["status"], plain.get("error"))
    assert any(w in plain["error"] for w in TIMEOUT_WORDS), plain["error"]
    assert_timeout_rpc(plain_grpc)
    assert_healthy(server)


def test_delay_action_still_serves_expired_requests(heavy, timeout_server):
    server = timeout_server
    before = scrape(server)
    recs = flood(server, "to_delay", 12, seed=31)
    bad = [(r["status"], r.get("error")) for r in recs if r["status"] != 200]
    assert not bad, f"DELAY must serve requests that outlived their timeout: {bad}"
    assert_heavy_correct(heavy.slow, recs, "to_delay")
    after = scrape(server)
    assert failures(after, "to_delay", "deadline_exceeded") == failures(before, "to_delay", "deadline_exceeded")
    check_batch_stats(stats(server, "to_delay"), 4, len(recs))


# --------------------------------------------------------------------------- 5: overload


def test_full_queue_answers_503_and_resource_exhausted(heavy, ferry_factory, tmp_path):
    repo = tmp_path / "repo"
    add_model(repo, "ovl", heavy.slow, heavy_config("ovl", 4, "dynamic_batching { default_queue_policy { max_queue_size: 2 } }"))
    server = ferry_factory.start(repos=repo, args=SERVER_ARGS, name="overload")
    before = scrape(server)

    recs = flood(server, "ovl", 20, seed=41)
    ok = [r for r in recs if r["status"] == 200]
    full = [r for r in recs if r["status"] == 503]
    assert len(ok) + len(full) == len(recs), [(r["status"], r.get("error")) for r in recs]
    assert ok, "no request was served"
    assert full, f"20 concurrent requests never filled a queue of 2 ({heavy})"
    for r in full:
        retry = r["headers"].get("Retry-After")
        assert retry is not None and retry.strip().isdigit(), f"503 without a valid Retry-After: {r['headers']}"
    assert_heavy_correct(heavy.slow, ok, "ovl")

    # gRPC: the same flood from futures on one channel.
    rng = np.random.default_rng(43)
    xs = [rng.standard_normal((1, WIDTH)).astype(np.float32) for _ in range(20)]
    with gh.channel(server) as ch:
        st = gh.stub(ch)
        assert gh.response_arrays(st.ModelInfer(gh.infer_request("ovl", {"X": xs[0]}, version="1"),
                                                timeout=JOIN_TIMEOUT_S)) is not None  # channel up
        futures = [st.ModelInfer.future(gh.infer_request("ovl", {"X": x}, version="1"), timeout=JOIN_TIMEOUT_S)
                   for x in xs]
        grpc_ok, exhausted = [], 0
        for x, f in zip(xs, futures):
            try:
                grpc_ok.append((x, gh.response_arrays(f.result())["Y"]))
            except grpc.RpcError as err:
                assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, (err.code(), err.details())
                exhausted += 1
    assert grpc_ok and exhausted, f"gRPC: {len(grpc_ok)} served, {exhausted} RESOURCE_EXHAUSTED"
    for x, y in grpc_ok:
        np.testing.assert_allclose(y, reference_rows(heavy.slow, x), rtol=HEAVY_RTOL, atol=HEAVY_ATOL)

    assert_healthy(server)
    fh.wait_until(lambda: queue_depth(server, "ovl") == 0, 20, "the queue to drain")
    with requests.Session() as s:
        again = post_heavy(s, server, "ovl", xs[1])
    assert again["status"] == 200, again
    assert_heavy_correct(heavy.slow, [again], "ovl after the flood")
    after = scrape(server)
    assert failures(after, "ovl", "overloaded") - failures(before, "ovl", "overloaded") == len(full) + exhausted
    rss = fh.vm_rss_bytes(server.proc.pid)
    assert rss < 1 << 30, f"server RSS {rss / 2**20:.0f} MiB after the flood"


# --------------------------------------------------------------------------- 6: instances


def test_two_instances_with_dynamic_batching(heavy, ferry_factory, tmp_path):
    repo = tmp_path / "repo"
    add_model(repo, "multi", heavy.fast, heavy_config(
        "multi", 8, "dynamic_batching { max_queue_delay_microseconds: 1000 }", instances=2))
    server = ferry_factory.start(repos=repo, args=["--intra-op-threads", "1"], name="instances")
    rng = np.random.default_rng(61)
    clients, per_client = 16, 4
    xs = [[rng.standard_normal((1 + (ci + j) % 3, WIDTH)).astype(np.float32) for j in range(per_client)]
          for ci in range(clients)]
    recs = [r for per in run_clients(server, clients, per_client,
                                     lambda s, ci, j: post_heavy(s, server, "multi", xs[ci][j])) for r in per]
    bad = [(r["status"], r.get("error")) for r in recs if r["status"] != 200]
    assert not bad, bad
    assert_heavy_correct(heavy.fast, recs, "multi")
    check_batch_stats(stats(server, "multi"), 8, sum(len(r["x"]) for r in recs))
    assert_healthy(server)
