"""`ferry engine` with real `ferry serve` replicas, through its REST gateway with tritonclient
(the gRPC gateway: test_engine_grpc.py).

Each test starts its own engine (own state folder, gateway on a free 127.0.0.1 port) on
the example repository, and reads the engine's status.json for replica pids and states.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

import ferry_helpers as fh
from engine_helpers import (ClosedLoop, assert_add_sub_answers, kill_one_under_load, pid_alive, two_replica_spec,
                            write_spec)


def test_gateway_routes_by_model_and_heals_a_killed_replica_without_errors(engines, model_repo, tmp_path):
    engine = engines(two_replica_spec(tmp_path, model_repo), tmp_path / "state")
    before = engine.wait_ready_replicas("examples", 2)
    client = httpclient.InferenceServerClient(engine.url, network_timeout=fh.HTTP_TIMEOUT_S)
    try:
        assert client.is_server_ready()
        index = {m["name"]: m["state"] for m in client.get_model_repository_index()}
        assert index == {m: "READY" for m in fh.MODEL_NAMES}
        md = client.get_model_metadata("add_sub")
        assert md["name"] == "add_sub" and md["versions"] == ["1", "2"]
        assert_add_sub_answers(client, model_repo, batch=4)
        with pytest.raises(InferenceServerException) as exc:
            client.get_model_metadata("no_such_model")
        assert exc.value.status() == "404" or "unknown model" in str(exc.value)
    finally:
        client.close()

    # Closed-loop load, 8 clients, for 3 s; replica 0 gets SIGKILL after 1 s.
    victim = before[0]["pid"]
    load = kill_one_under_load(engine, model_repo, victim)

    # Replaced: two ready replicas again, the victim's slot with a new process.
    after = engine.wait_ready_replicas("examples", 2)
    pids = {r["pid"] for r in after}
    assert victim not in pids and not pid_alive(victim)
    assert sum(r["restarts"] for r in after) == 1
    with sqlite3.connect(engine.state_dir / "engine.db") as db:
        rows = db.execute("SELECT deployment, pid, exit FROM restarts").fetchall()
    assert rows == [("examples", victim, "killed by signal 9 (Killed)")]
    events = fh.http_request("GET", f"http://127.0.0.1:{engine.admin_port}/v1/deployments/examples/events").json()
    assert [(e["pid"], e["exit"]) for e in events["restarts"]] == [(victim, "killed by signal 9 (Killed)")]
    live = fh.http_request("GET", f"http://127.0.0.1:{engine.admin_port}/v1/status").json()
    assert sorted(r["pid"] for r in live["revisions"][0]["replicas"]) == sorted(pids)

    # The engine's metrics saw the same: every request answered 2xx, the retries, the restart.
    samples = fh.parse_metrics(fh.http_request("GET", f"http://{engine.metrics_url}/metrics").text)
    answered = fh.metric_sum(samples, "ferry_engine_requests_total", deployment="examples", code="2xx")
    assert answered >= load.total
    assert fh.metric_sum(samples, "ferry_engine_requests_total", deployment="examples", code="5xx") == 0
    assert fh.metric_sum(samples, "ferry_engine_upstream_retries_total", deployment="examples") == \
        engine.status()["gateway"]["retries"]
    # Each retry followed a failure of the killed replica, counted against it by index.
    victim_index = str(next(r["index"] for r in before if r["pid"] == victim))
    failed = fh.metric_sum(samples, "ferry_engine_upstream_errors_total", deployment="examples", revision="v1",
                           replica=victim_index, reason="unavailable")
    assert failed >= engine.status()["gateway"]["retries"], failed
    assert fh.metric_sum(samples, "ferry_engine_upstream_errors_total", deployment="examples", reason="timeout") == 0
    assert fh.metric_sum(samples, "ferry_engine_replica_restarts_total", deployment="examples") == 1
    assert fh.metric_sum(samples, "ferry_engine_replicas", deployment="examples", state="ready") == 2
    print(f"\nengine kill test: {load.total} requests, {load.after_mark} after the kill, "
          f"{engine.status()['gateway']['retries']} retried")


def test_engine_kill9_takes_its_replicas_and_a_restart_brings_the_deployment_back(engines, model_repo, tmp_path):
    state = tmp_path / "state"
    engine = engines(two_replica_spec(tmp_path, model_repo), state)
    pids = [r["pid"] for r in engine.wait_ready_replicas("examples", 2)]
    assert all(pid_alive(p) for p in pids)
    engine.proc.send_signal(signal.SIGKILL)
    engine.proc.wait(10)
    fh.wait_until(lambda: not any(pid_alive(p) for p in pids), 10, f"replicas {pids} to exit with the engine")

    # Without --config the stored deployment comes back, on fresh replicas.
    again = engines(None, state, name="restarted")
    new = again.wait_ready_replicas("examples", 2)
    assert not {r["pid"] for r in new} & set(pids)
    c = httpclient.InferenceServerClient(again.url, network_timeout=fh.HTTP_TIMEOUT_S)
    try:
        assert_add_sub_answers(c, model_repo)
    finally:
        c.close()
    # A graceful stop drains and stops every replica, and exits 0.
    new_pids = [r["pid"] for r in new]
    again.stop_and_check(timeout=40)
    assert not any(pid_alive(p) for p in new_pids)


def test_crash_looping_revision_is_degraded_while_another_deployment_serves(engines, model_repo, tmp_path):
    broken = tmp_path / "broken_repo"
    (broken / "broken" / "1").mkdir(parents=True)
    config = (model_repo / "add_sub" / "config.pbtxt").read_text().replace('name: "add_sub"', 'name: "broken"')
    (broken / "broken" / "config.pbtxt").write_text(config)
    (broken / "broken" / "1" / "model.onnx").write_bytes(b"this is not an ONNX model")
    spec = write_spec(tmp_path / "spec.yaml", f"""\
deployments:
- name: good
  revisions:
  - name: v1
    models: [{model_repo / 'add_sub'}]
    serve: {{http-threads: 1, intra-op-threads: 1}}
- name: bad
  revisions:
  - name: v1
    model_repository: {broken}
    serve: {{http-threads: 1}}
  health: {{ready_timeout: 5s}}
  restart: {{initial_backoff: 100ms, max_backoff: 400ms, crash_loop_failures: 2}}
""")
    engine = engines(spec, tmp_path / "state")
    engine.wait_ready_replicas("good", 1)

    def degraded():
        r = engine.revision("bad")
        return r if r["degraded"] else None
    bad = fh.wait_until(degraded, 60, "deployment 'bad' to be degraded", on_timeout=lambda: engine.describe(30))
    assert "broken" in bad["degraded_reason"], bad["degraded_reason"]
    assert bad["ready"] == 0

    c = httpclient.InferenceServerClient(engine.url, network_timeout=fh.HTTP_TIMEOUT_S)
    try:
        assert_add_sub_answers(c, model_repo)
        with pytest.raises(InferenceServerException) as exc:
            c.get_model_metadata("broken")
        assert "no ready replica" in str(exc.value)
    finally:
        c.close()
    assert engine.revision("good")["degraded"] is False


def test_scale_to_zero_after_idle_then_the_first_request_succeeds(engines, model_repo, tmp_path):
    spec = write_spec(tmp_path / "spec.yaml", f"""\
deployments:
- name: lazy
  revisions:
  - name: v1
    models: [{model_repo / 'add_sub'}]
    serve: {{http-threads: 1, intra-op-threads: 1}}
  replicas: {{min: 0, max: 1}}
  autoscaling: {{stable_window: 2s, panic_window: 1s, scale_to_zero_after: 2s}}
""")
    engine = engines(spec, tmp_path / "state")
    first = engine.wait_ready_replicas("lazy", 1)[0]["pid"]

    def at_zero():
        r = engine.revision("lazy")
        return r["desired"] == 0 and r["replicas"] == []
    fh.wait_until(at_zero, 30, "the idle deployment to scale to zero", on_timeout=lambda: engine.describe(30))
    assert not pid_alive(first)
    assert fh.http_request("GET", f"{engine.base}/v2/health/ready").status_code == 200, \
        "a deployment at zero by design does not make the gateway unready"

    # The first request waits at the gateway while a replica starts, then succeeds.
    c = httpclient.InferenceServerClient(engine.url, network_timeout=30)
    try:
        t0 = time.monotonic()
        assert_add_sub_answers(c, model_repo)
        print(f"\nfirst request from zero replicas: {(time.monotonic() - t0) * 1000:.0f} ms")
    finally:
        c.close()
    assert engine.revision("lazy")["desired"] == 1
    with sqlite3.connect(engine.state_dir / "engine.db") as db:
        steps = db.execute("SELECT from_replicas, to_replicas FROM scale_events ORDER BY id").fetchall()
    assert steps[:2] == [(1, 0), (0, 1)], steps
    samples = fh.parse_metrics(fh.http_request("GET", f"http://{engine.metrics_url}/metrics").text)
    assert fh.metric_sum(samples, "ferry_engine_cold_start_wait_seconds_count", deployment="lazy") == 1
    assert fh.metric_sum(samples, "ferry_engine_scale_events_total", deployment="lazy") >= 2


def test_a_90_10_split_lands_within_3_percent_over_10000_requests(engines, model_repo, tmp_path):
    import http.client

    spec = write_spec(tmp_path / "spec.yaml", f"""\
deployments:
- name: split
  revisions:
  - {{name: stable, models: [{model_repo / 'add_sub'}], serve: {{http-threads: 1}}}}
  - {{name: canary, models: [{model_repo / 'add_sub'}], serve: {{http-threads: 1}}}}
  traffic: {{stable: 90, canary: 10}}
""")
    engine = engines(spec, tmp_path / "state")
    engine.wait_ready_replicas("split", 1, revision="stable")
    engine.wait_ready_replicas("split", 1, revision="canary")
    counts: dict[str, int] = {}
    errors: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", engine.http_port, timeout=fh.HTTP_TIMEOUT_S)
        mine: dict[str, int] = {}
        try:
            for _ in range(n):
                conn.request("GET", "/v2/models/add_sub/ready")
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    errors.append(str(resp.status))
                rev = resp.getheader("Ferry-Revision", "none")
                mine[rev] = mine.get(rev, 0) + 1
        finally:
            conn.close()
            with lock:
                for k, v in mine.items():
                    counts[k] = counts.get(k, 0) + v

    threads = [threading.Thread(target=worker, args=(2500,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert sum(counts.values()) == 10000 and set(counts) == {"stable", "canary"}, counts
    assert abs(counts["canary"] / 10000 - 0.10) <= 0.03, counts
    print(f"\n90/10 split over 10,000 requests: {counts}")


def test_scales_up_under_load_and_down_when_idle(engines, model_repo, tmp_path):
    spec = write_spec(tmp_path / "spec.yaml", f"""\
deployments:
- name: elastic
  revisions:
  - name: v1
    models: [{model_repo / 'add_sub'}]
    serve: {{http-threads: 1, intra-op-threads: 1}}
  replicas: {{min: 1, max: 2}}
  autoscaling: {{target_in_flight: 1, stable_window: 2s, panic_window: 1s, scale_down_delay: 1s}}
""")
    engine = engines(spec, tmp_path / "state")
    engine.wait_ready_replicas("elastic", 1)
    load = ClosedLoop(engine, model_repo)
    try:
        engine.wait_ready_replicas("elastic", 2, timeout=60)
    finally:
        load.stop()
    assert load.failures == [] and load.total > 0
    fh.wait_until(lambda: engine.revision("elastic")["desired"] == 1 and len(engine.revision("elastic")["replicas"]) == 1,
                  60, "the idle deployment to scale back to 1", on_timeout=lambda: engine.describe(30))
    with sqlite3.connect(engine.state_dir / "engine.db") as db:
        steps = db.execute("SELECT from_replicas, to_replicas FROM scale_events ORDER BY id").fetchall()
    assert steps == [(1, 2), (2, 1)], steps


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (children, their children, ...), from /proc."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                kids = [int(k) for k in (task / "children").read_text().split()]
            except (FileNotFoundError, ProcessLookupError, ValueError):
                continue
            for k in kids:
                if k not in found:
                    found.add(k)
                    todo.append(k)
    return found


def test_xgboost_and_python_models_through_the_engine_leave_no_worker_behind(engines, tmp_path):
    import sys

    import joblib
    import xgboost as xgb
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 4)).astype(np.float32)
    score = 2 * x[:, 0] - x[:, 1]
    repo = tmp_path / "tabular"
    (repo / "xgb_reg" / "1").mkdir(parents=True)
    booster = xgb.train({"max_depth": 3, "objective": "reg:squarederror"}, xgb.DMatrix(x, label=score), 8)
    booster.save_model(str(repo / "xgb_reg" / "1" / "model.json"))
    (repo / "sk_logreg" / "1").mkdir(parents=True)
    logreg = LogisticRegression(max_iter=500).fit(x.astype(np.float64), score > 0)
    joblib.dump(logreg, repo / "sk_logreg" / "1" / "model.joblib")
    (repo / "sk_logreg" / "config.pbtxt").write_text(
        'backend: "sklearn"\noutput [ { name: "predict" data_type: TYPE_INT64 dims: [ -1 ] } ]\n')
    spec = write_spec(tmp_path / "spec.yaml", f"""\
deployments:
- name: tabular
  revisions:
  - name: v1
    model_repository: {repo}
    serve: {{http-threads: 1, python-executable: {sys.executable}}}
""")
    engine = engines(spec, tmp_path / "state")
    replica = engine.wait_ready_replicas("tabular", 1)[0]["pid"]

    c = httpclient.InferenceServerClient(engine.url, network_timeout=30)
    try:
        for model, arr, want in (("xgb_reg", x[:5], booster.predict(xgb.DMatrix(x[:5]))),
                                 ("sk_logreg", x[:5].astype(np.float64), logreg.predict(x[:5].astype(np.float64)))):
            md = c.get_model_metadata(model)
            inp = httpclient.InferInput(md["inputs"][0]["name"], list(arr.shape), np_to_triton_dtype(arr.dtype))
            inp.set_data_from_numpy(arr)
            out = md["outputs"][0]["name"]
            got = c.infer(model, [inp], outputs=[httpclient.InferRequestedOutput(out)]).as_numpy(out)
            np.testing.assert_allclose(np.asarray(got).reshape(-1), np.asarray(want).reshape(-1), rtol=1e-5,
                                       err_msg=model)
    finally:
        c.close()

    # The replica runs the scikit-learn model in a Python worker; SIGKILL of the replica
    # must not leave that worker behind, and the engine replaces the replica.
    below = descendants(replica)
    assert below, "the scikit-learn model runs in a worker process below its replica"
    os.kill(replica, signal.SIGKILL)
    fh.wait_until(lambda: not any(pid_alive(p) for p in below | {replica}), 15,
                  f"replica {replica} and its workers {sorted(below)} to exit")
    again = engine.wait_ready_replicas("tabular", 1)
    assert again[0]["pid"] != replica


def test_bad_spec_names_field_and_line(ferry_binary, model_repo, tmp_path):
    spec = write_spec(tmp_path / "spec.yaml", f"""\
deployments:
- name: examples
  revisions:
  - name: v1
    model_repository: {model_repo}
  replicas: {{min: 3, max: 2}}
""")
    proc = subprocess.run([str(ferry_binary), "engine", "--config", str(spec), "--state-dir", str(tmp_path / "s"),
                           "--http-address", "127.0.0.1", "--http-port", "0"],
                          capture_output=True, text=True, timeout=30, env=fh.child_env())
    assert proc.returncode == 2, proc.stderr
    assert f"{spec}:6:27: deployments[0].replicas.max: must be at least min (3), got 2" in proc.stderr


def test_second_engine_on_the_same_state_dir_is_refused(engines, ferry_binary, model_repo, tmp_path):
    spec = write_spec(tmp_path / "spec.yaml", f"""\
deployments:
- name: one
  revisions: [{{name: v1, models: [{model_repo / 'int_ops'}]}}]
""")
    engines(spec, tmp_path / "state")
    proc = subprocess.run([str(ferry_binary), "engine", "--config", str(spec), "--state-dir", str(tmp_path / "state"),
                           "--http-address", "127.0.0.1", "--http-port", "0"],
                          capture_output=True, text=True, timeout=30, env=fh.child_env())
    assert proc.returncode == 1
    assert "is in use by another ferry engine" in proc.stderr, proc.stderr


SLOW_MODEL = '''
import time
from ferry_sdk import Model

class Slow(Model):
    def predict(self, inputs):
        time.sleep(0.03)
        return {"Y": inputs["X"] * 2}
'''


def test_latency_objective_adds_a_replica_when_the_p95_is_over_target(engines, tmp_path):
    import sys

    repo = tmp_path / "slow_repo"
    (repo / "slow" / "1").mkdir(parents=True)
    (repo / "slow" / "1" / "model.py").write_text(SLOW_MODEL)
    (repo / "slow" / "config.pbtxt").write_text(
        'backend: "python"\n'
        'input [ { name: "X" data_type: TYPE_INT64 dims: [ -1 ] } ]\n'
        'output [ { name: "Y" data_type: TYPE_INT64 dims: [ -1 ] } ]\n')
    # The in-flight rule alone keeps one replica (2 in flight, target 100): only the
    # latency objective (p95 of a 30 ms model over 10 ms) can add the second.
    spec = write_spec(tmp_path / "spec.yaml", f"""\
deployments:
- name: slow
  revisions:
  - name: v1
    model_repository: {repo}
    serve: {{http-threads: 1, python-executable: {sys.executable}}}
  replicas: {{min: 1, max: 2}}
  autoscaling: {{target_in_flight: 100, target_p95: 10ms, latency_window: 1s}}
""")
    engine = engines(spec, tmp_path / "state")
    engine.wait_ready_replicas("slow", 1)
    stop = threading.Event()
    failures: list[str] = []

    def client():
        c = httpclient.InferenceServerClient(engine.url, network_timeout=30)
        x = np.arange(3, dtype=np.int64)
        try:
            while not stop.is_set():
                inp = httpclient.InferInput("X", [3], "INT64")
                inp.set_data_from_numpy(x)
                try:
                    got = c.infer("slow", [inp]).as_numpy("Y")
                    np.testing.assert_array_equal(got, x * 2)
                except Exception as exc:  # noqa: BLE001
                    failures.append(repr(exc))
        finally:
            c.close()

    threads = [threading.Thread(target=client) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        engine.wait_ready_replicas("slow", 2, timeout=60)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert failures == []
    with sqlite3.connect(engine.state_dir / "engine.db") as db:
        reasons = [r for (r,) in db.execute("SELECT reason FROM scale_events WHERE to_replicas = 2")]
    assert reasons and reasons[0].startswith("latency: p95"), reasons


def test_a_client_that_leaves_frees_the_replica_and_a_body_timeout_reaches_it(engines, tmp_path):
    """Disconnects and deadlines propagate through the REST gateway: a client that closes
    its connection while a replica runs its request makes the gateway close the upstream
    connection, and the replica stops the execution (it ends as a failure, not a success
    seconds later); a request's own `timeout` parameter travels in the forwarded body and
    the replica enforces it (504)."""
    import json
    import socket

    repo = tmp_path / "slow_repo"
    expected_s = fh.write_slow_model(repo)
    spec = write_spec(tmp_path / "spec.yaml", f"""\
deployments:
- name: slow
  revisions:
  - name: v1
    models: [{repo / 'slow'}]
    serve: {{http-threads: 1}}
  replicas: 1
  gateway: {{request_timeout: 120s}}
""")
    engine = engines(spec, tmp_path / "state")
    [replica] = engine.wait_ready_replicas("slow", 1)
    n = fh.SLOW_MODEL_N

    def body(timeout_us=None):
        doc = {"inputs": [{"name": "x", "shape": [n, n], "datatype": "FP32", "parameters": {"binary_data_size": n * n * 4}}]}
        if timeout_us is not None:
            doc["parameters"] = {"timeout": timeout_us}
        header = json.dumps(doc).encode()
        return header, header + np.ones((n, n), np.float32).tobytes()

    def counts():  # asked of the replica itself: the gateway does not aggregate statistics
        st = fh.http_request("GET", f"http://127.0.0.1:{replica['port']}/v2/models/slow/stats").json()
        s = st["model_stats"][0]["inference_stats"]
        return s["success"]["count"], s["fail"]["count"]

    ok0, fail0 = counts()
    header, data = body()
    sock = socket.create_connection(("127.0.0.1", engine.http_port))
    sock.sendall(b"POST /v2/models/slow/infer HTTP/1.1\r\nHost: x\r\nInference-Header-Content-Length: "
                 + str(len(header)).encode() + b"\r\nContent-Length: " + str(len(data)).encode() + b"\r\n\r\n" + data)
    time.sleep(0.4)  # the replica is running it
    sock.close()
    fh.wait_until(lambda: counts() != (ok0, fail0), max(30, 4 * expected_s), "the abandoned request to end",
                  on_timeout=lambda: engine.describe(30))
    assert counts() == (ok0, fail0 + 1), "the replica ran the abandoned request to completion"

    header, data = body(timeout_us=200_000)
    t0 = time.monotonic()
    resp = engine.post("/v2/models/slow/infer", data=data, headers={"Inference-Header-Content-Length": str(len(header))},
                       timeout=60)
    assert resp.status_code == 504 and "timeout" in resp.text.lower(), (resp.status_code, resp.text[:300])
    assert time.monotonic() - t0 < expected_s / 2
    header, data = body()
    resp = engine.post("/v2/models/slow/infer", data=data, headers={"Inference-Header-Content-Length": str(len(header))},
                       timeout=60)
    assert resp.status_code == 200, resp.text[:300]


def test_gateway_statistics_sum_every_replica(engines, model_repo, tmp_path):
    """GET /v2/models/{m}[/versions/{v}]/stats through the REST gateway asks every ready
    replica and sums their answers (tritonclient's get_inference_statistics reads it), so
    the counts cover all requests, not those of the one replica a forward reaches;
    a replica's error (an unknown version) comes back as it is."""
    engine = engines(two_replica_spec(tmp_path, model_repo), tmp_path / "state")
    replicas = engine.wait_ready_replicas("examples", 2)
    client = httpclient.InferenceServerClient(engine.url)
    sent = 60
    for _ in range(sent):
        assert_add_sub_answers(client, model_repo)

    def successes(stats, version="1"):
        return sum(s["inference_stats"]["success"]["count"] for s in stats["model_stats"] if s["version"] == version)

    direct = [fh.http_request("GET", f"http://127.0.0.1:{r['port']}/v2/models/add_sub/versions/1/stats").json()
              for r in replicas]
    per_replica = [successes(d) for d in direct]
    assert sum(per_replica) == sent and min(per_replica) > 0, per_replica  # both replicas served some
    total = client.get_inference_statistics("add_sub", "1")
    assert successes(total) == sent, total
    [merged] = total["model_stats"]
    assert merged["inference_count"] == sum(d["model_stats"][0]["inference_count"] for d in direct)
    assert merged["last_inference"] == max(d["model_stats"][0]["last_inference"] for d in direct)
    assert sum(b["compute_infer"]["count"] for b in merged["batch_stats"]) == merged["execution_count"]
    # Without a version: every version of the model, each summed.
    every = fh.http_request("GET", f"{engine.base}/v2/models/add_sub/stats").json()
    assert sorted(s["version"] for s in every["model_stats"]) == ["1", "2"], every
    assert successes(every) == sent
    bad = fh.http_request("GET", f"{engine.base}/v2/models/add_sub/versions/9/stats")
    assert bad.status_code == 404 and "9" in bad.json()["error"], bad.text
    assert fh.http_request("POST", f"{engine.base}/v2/models/add_sub/stats").status_code == 405
