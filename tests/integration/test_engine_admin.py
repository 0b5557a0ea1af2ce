"""`ferry engine`'s admin API and the commands that speak it (`ferry deploy / status /
scale / delete / logs`): deployments created, updated and deleted on a running engine,
rolling updates under load, failed updates, pins that survive a restart, replica logs,
and the API's answers to bad requests.

Each test starts its own engine (engine_helpers.FerryEngine) with real `ferry serve`
replicas on the example repository.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import numpy as np
import tritonclient.http as httpclient

import ferry_helpers as fh
from engine_helpers import ClosedLoop, assert_add_sub_answers, pid_alive, run_cli, write_spec
from monitoring_helpers import Daemon, tool


def spec_text(name: str, revision: str, models: list[str], extra: str = "") -> str:
    return f"""\
deployments:
- name: {name}
  revisions:
  - name: {revision}
    models: [{', '.join(str(m) for m in models)}]
    serve: {{http-threads: 1, intra-op-threads: 1}}
  restart: {{initial_backoff: 100ms, crash_loop_failures: 2}}
  drain: {{grace: 5s, kill_after: 5s}}
{extra}"""


def serving(engine, deployment: str) -> list[dict]:
    return [r for r in engine.status()["revisions"] if r["deployment"] == deployment and r["role"] == "serving"]


def infer_json(engine, model: str, inputs: dict[str, np.ndarray]):
    return fh.http_request("POST", f"{engine.base}/v2/models/{model}/infer", json=fh.json_request(inputs))


def broken_add_sub(tmp_path: Path, model_repo: Path) -> Path:
    """A model folder named add_sub whose ONNX file is not one: it fails to load."""
    folder = tmp_path / "broken" / "add_sub"
    (folder / "1").mkdir(parents=True)
    (folder / "config.pbtxt").write_text((model_repo / "add_sub" / "config.pbtxt").read_text())
    (folder / "1" / "model.onnx").write_bytes(b"this is not an ONNX model")
    return folder


def test_cli_deploys_shows_scales_and_deletes(engines, ferry_binary, model_repo, tmp_path):
    engine = engines(None, tmp_path / "state")  # no --config: an empty engine, fed by `ferry deploy`
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "models").symlink_to(model_repo)
    # Relative paths: resolved against the spec file's folder, which the CLI sends along.
    write_spec(specs / "spec.yaml", spec_text("arith", "v1", ["models/add_sub"], "  replicas: {min: 1, max: 3}\n"))

    out = engine.cli_json("deploy", "-f", "specs/spec.yaml", cwd=tmp_path)
    [d] = out["deployments"]
    assert (d["name"], d["generation"], d["change"], d["state"]) == ("arith", 1, "created", "done"), out
    assert "1 of 1 replicas ready" in d["detail"], d

    status = engine.cli_json("status")
    [dep] = status["deployments"]
    assert (dep["name"], dep["generation"], dep["serving_generation"], dep["pinned"]) == ("arith", 1, 1, None)
    assert dep["rollout"]["state"] == "done" and dep["spec_file"] == str(specs / "spec.yaml")
    one = engine.cli_json("status", "arith")
    [rev] = one["deployment"]["revisions"]
    assert (rev["revision"], rev["role"], rev["ready"]) == ("v1", "serving", 1)
    [replica] = rev["replicas"]
    assert replica["pid"] > 0 and replica["port"] > 0 and replica["state"] == "ready" and replica["restarts"] == 0
    assert [e["kind"] for e in one["events"]["rollouts"]] == ["rolled_out", "created"]
    table = engine.cli("status")
    assert table.returncode == 0 and table.stdout.split()[:7] == \
        ["DEPLOYMENT", "GENERATION", "SERVING", "ROLLOUT", "READY", "PINNED", "MESSAGE"], table.stdout
    detail = engine.cli("status", "arith")
    assert detail.returncode == 0 and "PID" in detail.stdout and str(replica["pid"]) in detail.stdout \
        and "recent events:" in detail.stdout, detail.stdout
    print("\n$ ferry status arith\n" + detail.stdout)

    # Scale 1 -> 3 -> 1: pinned, the autoscaler overridden; the command waits for it.
    assert engine.cli_json("scale", "arith", "3")["ready"] is True
    assert len([r for r in serving(engine, "arith")[0]["replicas"] if r["state"] == "ready"]) == 3
    assert engine.cli_json("status")["deployments"][0]["pinned"] == 3
    c = httpclient.InferenceServerClient(engine.url, network_timeout=fh.HTTP_TIMEOUT_S)
    try:
        for _ in range(6):
            assert_add_sub_answers(c, model_repo)
    finally:
        c.close()
    assert engine.cli_json("scale", "arith", "1")["ready"] is True
    assert len(serving(engine, "arith")[0]["replicas"]) == 1
    with sqlite3.connect(engine.state_dir / "engine.db") as db:
        steps = db.execute("SELECT from_replicas, to_replicas, reason FROM scale_events ORDER BY id").fetchall()
    assert steps == [(1, 3, "pinned through the admin API"), (3, 1, "pinned through the admin API")], steps

    gone = engine.cli_json("delete", "arith")
    assert gone == {"deleted": "arith", "replicas_left": 0}
    assert engine.cli_json("status")["deployments"] == []
    assert not pid_alive(replica["pid"])
    fh.assert_error(fh.http_request("GET", f"{engine.base}/v2/models/add_sub"), 404, "unknown model")

    # Exit codes: 1 with the server's message, 2 for bad usage.
    p = engine.cli("status", "arith")
    assert p.returncode == 1 and "ferry status: deployment 'arith' is not deployed" in p.stderr, p
    assert engine.cli("scale", "arith").returncode == 2
    assert engine.cli("deploy", "-f", str(tmp_path / "missing.yaml")).returncode == 2
    bad = write_spec(specs / "bad.yaml", spec_text("arith", "v1", ["models/add_sub"], "  replicas: {min: 3, max: 2}\n"))
    p = engine.cli("deploy", "-f", str(bad))
    assert p.returncode == 1 and f"{bad}:9:27: deployments[0].replicas.max: must be at least min (3), got 2" in p.stderr, p
    p = run_cli(ferry_binary, ["status", "--admin", "http://127.0.0.1:1"])
    assert p.returncode == 1 and "cannot reach the admin API at http://127.0.0.1:1" in p.stderr, p


def test_a_spec_update_under_load_rolls_out_without_a_failed_request(engines, model_repo, tmp_path):
    v1 = write_spec(tmp_path / "v1.yaml", spec_text("arith", "v1", [model_repo / "add_sub"],
                                                    "  replicas: {min: 2, max: 2}\n"))
    engine = engines(v1, tmp_path / "state")
    old = [r["pid"] for r in engine.wait_ready_replicas("arith", 2)]
    # v2: a new revision with one more model (int_ops), the same add_sub answers.
    v2 = write_spec(tmp_path / "v2.yaml", spec_text("arith", "v2", [model_repo / "add_sub", model_repo / "int_ops"],
                                                    "  replicas: {min: 2, max: 2}\n"))
    fh.assert_error(fh.http_request("GET", f"{engine.base}/v2/models/int_ops"), 404)

    load = ClosedLoop(engine, model_repo)
    t0 = time.monotonic()
    try:
        time.sleep(1.0)
        load.mark()
        out = engine.cli_json("deploy", "-f", str(v2))
        rollout_s = time.monotonic() - t0 - 1.0
        time.sleep(1.0)
    finally:
        load.stop()
    assert load.failures == [], \
        f"{len(load.failures)} of {load.total + len(load.failures)} requests failed: {load.failures[:5]}"
    [d] = out["deployments"]
    assert (d["change"], d["generation"], d["state"]) == ("rolling", 2, "done"), out
    assert d["message"] == "adds v2; drops v1; in place: traffic"
    assert load.total >= 200 and load.after_mark >= 100, (load.total, load.after_mark)

    # The new revision answers, with its new model; the old replicas drained and stopped.
    r = infer_json(engine, "add_sub", fh.make_inputs("add_sub", 1))
    assert r.status_code == 200 and r.headers["Ferry-Revision"] == "v2", (r.status_code, r.headers)
    x = fh.make_inputs("int_ops", 1)
    r = infer_json(engine, "int_ops", x)
    assert r.status_code == 200, r.text
    _, outputs = fh.parse_infer_response(r)
    np.testing.assert_array_equal(outputs["SUM"], x["X"] + x["Y"])
    fh.wait_until(lambda: not any(pid_alive(p) for p in old), 20, f"old replicas {old} to stop")
    fh.wait_until(lambda: {r["revision"] for r in engine.status()["revisions"]} == {"v2"}, 20, "v1 to be gone")
    kinds = [e["kind"] for e in engine.admin("GET", "/v1/deployments/arith/events").json()["rollouts"]]
    assert kinds[:2] == ["rolled_out", "rolling"], kinds
    print(f"\nrolling update under load: {load.total} requests, {load.after_mark} from the deploy on, 0 failed, "
          f"{engine.status()['gateway']['retries']} retried; `ferry deploy` returned after {rollout_s:.1f} s")


def test_a_bad_update_leaves_the_old_revision_serving_and_says_why(engines, model_repo, tmp_path):
    good = write_spec(tmp_path / "good.yaml", spec_text("arith", "v1", [model_repo / "add_sub"]))
    engine = engines(good, tmp_path / "state")
    [old] = [r["pid"] for r in engine.wait_ready_replicas("arith", 1)]
    bad = write_spec(tmp_path / "bad.yaml", spec_text("arith", "v1", [broken_add_sub(tmp_path, model_repo)]))

    load = ClosedLoop(engine, model_repo, clients=4)
    try:
        p = engine.cli("deploy", "-f", str(bad), "--json")
    finally:
        load.stop()
    assert p.returncode == 1, p
    [d] = json.loads(p.stdout)["deployments"]
    assert (d["change"], d["state"]) == ("rolling", "failed"), d
    assert "generation 2 failed: revision 'v1' (v1@2) is crash-looping" in d["detail"], d
    assert "failed to load" in d["detail"] and "generation 1 keeps serving" in d["detail"], d
    assert load.failures == [] and load.total > 0, load.failures[:5]

    one = engine.cli_json("status", "arith")["deployment"]
    assert (one["generation"], one["serving_generation"], one["rollout"]["state"]) == (2, 1, "failed"), one
    fh.wait_until(lambda: [r["role"] for r in engine.cli_json("status", "arith")["deployment"]["revisions"]]
                  == ["serving"], 20, "the failed instance to stop")
    assert [r["pid"] for r in serving(engine, "arith")[0]["replicas"]] == [old]
    c = httpclient.InferenceServerClient(engine.url, network_timeout=fh.HTTP_TIMEOUT_S)
    try:
        assert_add_sub_answers(c, model_repo)
    finally:
        c.close()
    events = engine.admin("GET", "/v1/deployments/arith/events").json()
    assert [e["kind"] for e in events["rollouts"]][:2] == ["failed", "rolling"], events["rollouts"]
    assert any("failed to load" in e["exit"] for e in events["restarts"]), events["restarts"]
    table = engine.cli("status", "arith")
    assert "failed" in table.stdout and "keeps serving" in table.stdout, table.stdout
    print("\n$ ferry status arith   (after a bad update)\n" + table.stdout)


def test_admin_api_answers_bad_requests_with_what_is_wrong(engines, model_repo, tmp_path):
    engine = engines(write_spec(tmp_path / "a.yaml", spec_text("a", "v1", [model_repo / "add_sub"])), tmp_path / "state")
    engine.wait_ready_replicas("a", 1)
    base = f"?base={tmp_path}"

    def req(method, path, body=None, **kw):
        return engine.admin(method, path, data=body, **kw)

    # 409: a model name routes to one deployment.
    b = f"name: b\nrevisions:\n- name: v1\n  models: [{model_repo / 'add_sub'}]\n"
    fh.assert_error(req("PUT", "/v1/deployments/b" + base, b), 409,
                    "model 'add_sub' is already served by deployment 'a'", "deployment 'b' cannot serve it too")
    # 400 naming the field (and the line, for specs).
    fh.assert_error(req("PUT", "/v1/deployments/b" + base, "name: b\nrevisions: [{name: v1, modelz: x}]\n"), 400,
                    "request:2:24: revisions[0].modelz: unknown field")
    fh.assert_error(req("PUT", "/v1/deployments/c" + base, b), 400, "field 'name' ('b') differs")
    fh.assert_error(req("PUT", "/v1/deployments/b", "name: b\nrevisions: [{name: v1, models: [rel/x]}]\n"), 400,
                    "relative path 'rel/x' needs a base folder")
    fh.assert_error(req("POST", "/v1/apply", "deployments: [\n"), 400, "invalid YAML")
    fh.assert_error(req("POST", "/v1/apply?file=s.json",
                        json.dumps({"deployments": [{"name": "a", "replicas": {"min": 3, "max": 2},
                                                     "revisions": [{"name": "v1", "models": [str(model_repo / "add_sub")]}]}]})),
                    400, "s.json:1:", "deployments[0].replicas.max: must be at least min (3), got 2")
    fh.assert_error(req("POST", "/v1/deployments/a/scale", '{"replicas": "x"}'), 400,
                    "field 'replicas' must be an integer from 0 to 1000")
    fh.assert_error(req("POST", "/v1/deployments/a/scale", '{"replicaz": 1}'), 400, "field 'replicaz' is unknown")
    fh.assert_error(req("GET", "/v1/deployments/a/logs?replica=-1"), 400, "query parameter 'replica'")
    fh.assert_error(req("GET", "/v1/deployments/a/events?limit=0"), 400, "query parameter 'limit'")
    # 404: unknown deployment or path.
    for method, path, body in (("DELETE", "/v1/deployments/nope", None), ("GET", "/v1/deployments/nope", None),
                               ("POST", "/v1/deployments/nope/scale", '{"replicas": 1}'),
                               ("GET", "/v1/deployments/nope/logs", None), ("GET", "/v1/deployments/nope/events", None)):
        fh.assert_error(req(method, path, body), 404, "deployment 'nope' is not deployed")
    fh.assert_error(req("GET", "/v1/nothing"), 404, "Not Found")
    # 405, with Allow.
    for method, path, allow in (("PATCH", "/v1/deployments/a", "GET, PUT, DELETE"), ("GET", "/v1/apply", "POST"),
                                ("DELETE", "/v1/status", "GET"), ("PUT", "/v1/deployments/a/scale", "POST")):
        r = req(method, path)
        fh.assert_error(r, 405, "Method Not Allowed")
        assert r.headers["Allow"] == allow, (method, path, r.headers)

    # 500 with SQLite's message when another process locks the database; nothing breaks.
    db = sqlite3.connect(engine.state_dir / "engine.db", timeout=0, isolation_level=None)
    try:
        db.execute("BEGIN EXCLUSIVE")
        t0 = time.monotonic()
        fh.assert_error(req("POST", "/v1/deployments/a/scale", '{"replicas": 2}'), 500, "database is locked",
                        "engine.db")
        fh.assert_error(req("DELETE", "/v1/deployments/a"), 500, "database is locked")
        print(f"\nlocked database: answered 500 after {time.monotonic() - t0:.1f} s (two requests)")
    finally:
        db.execute("ROLLBACK")
        db.close()
    assert req("GET", "/v1/deployments/a").json()["pinned"] is None, "the failed change did not happen"
    c = httpclient.InferenceServerClient(engine.url, network_timeout=fh.HTTP_TIMEOUT_S)
    try:
        assert_add_sub_answers(c, model_repo)
    finally:
        c.close()
    assert req("POST", "/v1/deployments/a/scale", '{"replicas": 1}').status_code == 200


def test_a_pinned_count_survives_an_engine_restart(engines, model_repo, tmp_path):
    spec = write_spec(tmp_path / "spec.yaml", spec_text("pinned", "v1", [model_repo / "add_sub"],
                                                        "  replicas: {min: 1, max: 1}\n"))
    state = tmp_path / "state"
    engine = engines(spec, state)
    engine.wait_ready_replicas("pinned", 1)
    # Beyond the spec's max: a pin overrides the bounds.
    assert engine.cli_json("scale", "pinned", "2")["ready"] is True
    engine.stop_and_check(timeout=40)

    again = engines(None, state, name="restarted")
    again.wait_ready_replicas("pinned", 2)
    assert again.cli_json("status", "pinned")["deployment"]["pinned"] == 2
    assert [d["pinned"] for d in again.admin("GET", "/v1/deployments").json()] == [2]
    again.stop_and_check(timeout=40)

    # With --config (the same file) too: the pin is not part of the spec.
    third = engines(spec, state, name="with-config")
    third.wait_ready_replicas("pinned", 2)
    out = third.cli_json("scale", "pinned", "--auto")
    assert out["pinned"] is None
    fh.wait_until(lambda: len(third.revision("pinned")["replicas"]) == 1, 30, "autoscaled back within max 1")


def test_ferry_logs_prints_and_follows_a_replica_log(engines, ferry_binary, model_repo, tmp_path):
    engine = engines(write_spec(tmp_path / "spec.yaml", spec_text("logged", "v1", [model_repo / "add_sub"])),
                     tmp_path / "state")
    [replica] = engine.wait_ready_replicas("logged", 1)
    pid = replica["pid"]
    p = engine.cli("logs", "logged")
    assert p.returncode == 0, p
    assert f"[ferry engine] started pid {pid}: " in p.stdout and f"[ferry engine] replica pid {pid} is ready" in p.stdout
    assert "msg=" in p.stdout, "the replica's own output is there too"
    # One line, the file's last (the replica's own last lines may land after the engine's
    # "is ready" note: the pump copies them on its own thread).
    last = engine.cli("logs", "logged", "--tail", "1")
    assert last.returncode == 0 and last.stdout.count("\n") == 1, last.stdout
    assert Path(replica["log"]).read_text().endswith(last.stdout), last.stdout
    doc = engine.cli_json("logs", "logged", "--revision", "v1", "--replica", "0")
    assert doc["file"] == replica["log"] and doc["revision"] == "v1" and doc["replica"] == 0 and doc["offset"] > 0
    p = engine.cli("logs", "logged", "--replica", "7")
    assert p.returncode == 1 and "has no log of replica 7 of revision 'v1'" in p.stderr, p

    # -f follows the file: a crash and the restart show up, Ctrl-C ends it with 0.
    follow = subprocess.Popen([str(ferry_binary), "logs", "logged", "-f", "--tail", "1", "--admin", engine.admin_url],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=fh.child_env())
    try:
        time.sleep(1.0)
        os.kill(pid, signal.SIGKILL)
        [again] = fh.wait_until(lambda: [r for r in engine.wait_ready_replicas("logged", 1) if r["pid"] != pid], 30,
                                "a replacement replica")
        time.sleep(1.5)
    finally:
        follow.send_signal(signal.SIGINT)
        out, err = follow.communicate(timeout=10)
    assert follow.returncode == 0, err
    assert f"replica pid {pid} failed: killed by signal 9" in out, out
    assert f"[ferry engine] started pid {again['pid']}: " in out and f"replica pid {again['pid']} is ready" in out, out


def test_a_changed_config_at_restart_rolls_out_as_a_live_update_would(engines, model_repo, tmp_path):
    spec = tmp_path / "spec.yaml"
    write_spec(spec, spec_text("arith", "v1", [model_repo / "add_sub"]))
    state = tmp_path / "state"
    engine = engines(spec, state)
    engine.wait_ready_replicas("arith", 1)
    # Rolled out (recorded as the spec to start first), not only ready.
    fh.wait_until(lambda: engine.cli_json("status", "arith")["deployment"]["rollout"]["state"] == "done", 10,
                  "generation 1 to be rolled out")
    engine.stop_and_check(timeout=40)

    # A file that cannot load: the last spec that rolled out starts, the new one fails.
    write_spec(spec, spec_text("arith", "v2", [broken_add_sub(tmp_path, model_repo)]))
    second = engines(spec, state, name="bad-file")
    second.wait_ready_replicas("arith", 1, revision="v1")
    fh.wait_until(lambda: second.cli_json("status", "arith")["deployment"]["rollout"]["state"] == "failed", 60,
                  "the rollout of the changed file to fail", on_timeout=lambda: second.describe(30))
    d = second.cli_json("status", "arith")["deployment"]
    assert (d["generation"], d["serving_generation"]) == (2, 1), d
    assert "generation 1 keeps serving" in d["rollout"]["message"], d
    r = infer_json(second, "add_sub", fh.make_inputs("add_sub", 1))
    assert r.status_code == 200 and r.headers["Ferry-Revision"] == "v1"
    second.stop_and_check(timeout=40)

    # Fixed: v1 starts, then v2 rolls out.
    write_spec(spec, spec_text("arith", "v2", [model_repo / "add_sub"]))
    third = engines(spec, state, name="fixed-file")
    fh.wait_until(lambda: third.cli_json("status", "arith")["deployment"]["serving_generation"] == 3, 60,
                  "generation 3 to serve", on_timeout=lambda: third.describe(30))
    third.wait_ready_replicas("arith", 1, revision="v2")
    r = infer_json(third, "add_sub", fh.make_inputs("add_sub", 1))
    assert r.status_code == 200 and r.headers["Ferry-Revision"] == "v2"
    kinds = [e["kind"] for e in third.admin("GET", "/v1/deployments/arith/events").json()["rollouts"]]
    # Newest first: this start's rollout, the second start's failed one, the first creation.
    assert kinds == ["rolled_out", "rolling", "failed", "rolling", "rolled_out"], kinds


def test_prometheus_finds_the_engine_and_its_replicas_through_http_sd(engines, model_repo, tmp_path):
    """GET /v1/targets is Prometheus's HTTP service discovery: a real Prometheus scrapes the
    engine and each replica (ports the engine picked), labelled by deployment, revision and
    replica, and follows a replica that is replaced on another port."""

    spec = write_spec(tmp_path / "spec.yaml", spec_text("arith", "v1", [str(model_repo / "add_sub")],
                                                        "  replicas: 2\n"))
    engine = engines(spec, tmp_path / "state")
    replicas = engine.wait_ready_replicas("arith", 2)
    targets = engine.admin("GET", "/v1/targets").json()
    assert {t["labels"]["ferry_role"] for t in targets} == {"engine", "replica"}
    assert sorted(t["targets"][0] for t in targets if t["labels"]["ferry_role"] == "replica") == \
        sorted(f"127.0.0.1:{r['metrics_port']}" for r in replicas)

    prom_port, = fh.free_ports(1)
    (tmp_path / "prometheus.yml").write_text(json.dumps({
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [{"job_name": "ferry-engine", "http_sd_configs": [
            {"url": f"{engine.admin_url}/v1/targets", "refresh_interval": "1s"}]}]}))
    daemons: list[Daemon] = []
    try:
        prom = Daemon("prometheus", [
            tool("prometheus"), f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'prom-data'}", f"--web.listen-address=127.0.0.1:{prom_port}"],
            f"http://127.0.0.1:{prom_port}", "/-/ready", tmp_path / "prometheus.log", daemons).start()
        for _ in range(5):
            assert_add_sub_answers(httpclient.InferenceServerClient(engine.url), model_repo)

        def up(expr: str):
            return fh.http_request("GET", f"http://127.0.0.1:{prom_port}/api/v1/query",
                                   params={"query": expr}).json()["data"]["result"]

        fh.wait_until(lambda: len(up('up{ferry_role="replica",deployment="arith",revision="v1"} == 1')) == 2, 30,
                      "Prometheus to scrape both replicas", on_timeout=prom.tail)
        fh.wait_until(lambda: up('up{ferry_role="engine"} == 1'), 30, "Prometheus to scrape the engine")
        got = fh.wait_until(lambda: up('sum(ferry_inference_requests_total{deployment="arith",model="add_sub"}) >= 5'),
                            30, "the replicas' request counters with their deployment label")
        assert got
        # A replaced replica gets another metrics port; discovery follows it.
        os.kill(replicas[0]["pid"], signal.SIGKILL)
        again = engine.wait_ready_replicas("arith", 2)
        new_port = next(r["metrics_port"] for r in again if r["pid"] != replicas[0]["pid"])
        fh.wait_until(lambda: up(f'up{{instance="127.0.0.1:{new_port}",ferry_role="replica"}} == 1'), 30,
                      "Prometheus to scrape the replacement")
    finally:
        for d in daemons:
            d.stop()


def live_children(pid: int) -> set[int]:
    """The processes whose parent is `pid` and that have not exited (zombies excluded)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
        except (FileNotFoundError, IndexError, ProcessLookupError):
            continue
        if fields[0] != "Z" and int(fields[1]) == pid:
            found.add(int(entry.name))
    return found


class ChildSampler:
    """Samples the engine's live child processes (its replicas) every few milliseconds
    until stop(); `peak` is the most seen at once."""

    def __init__(self, pid: int):
        import threading

        self.peak = 0
        self.samples = 0
        self._pid = pid
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, len(live_children(self._pid)))
            self.samples += 1
            time.sleep(0.005)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def test_max_surge_replaces_replicas_one_at_a_time_under_load(engines, model_repo, tmp_path):
    """rollout.max_surge 1 on 3 replicas: a changed revision is replaced one replica at a
    time under closed-loop load, with no failed request and never more than 4 replica
    processes; a step that fails leaves the serving replicas as they were."""
    extra = "  replicas: 3\n  rollout: {max_surge: 1}\n"
    v1 = write_spec(tmp_path / "v1.yaml", spec_text("arith", "v1", [model_repo / "add_sub"], extra))
    engine = engines(v1, tmp_path / "state")
    old = {r["pid"] for r in engine.wait_ready_replicas("arith", 3)}
    assert live_children(engine.proc.pid) == old
    # The same revision with one more model: new processes, replaced in steps.
    v2 = write_spec(tmp_path / "v2.yaml", spec_text("arith", "v1", [model_repo / "add_sub", model_repo / "int_ops"],
                                                    extra))
    load = ClosedLoop(engine, model_repo)
    sampler = ChildSampler(engine.proc.pid)
    try:
        time.sleep(1.0)
        load.mark()
        out = engine.cli_json("deploy", "-f", str(v2))
        time.sleep(0.5)
    finally:
        load.stop()
        sampler.stop()
    assert load.failures == [], \
        f"{len(load.failures)} of {load.total + len(load.failures)} requests failed: {load.failures[:5]}"
    [d] = out["deployments"]
    assert (d["change"], d["generation"], d["state"]) == ("rolling", 2, "done"), out
    assert load.after_mark >= 100, (load.total, load.after_mark)
    assert sampler.peak <= 4, f"{sampler.peak} replica processes at once (3 replicas, max_surge 1)"
    assert sampler.peak == 4, "the surge replica was never seen"  # the sampler did see the steps
    new = {r["pid"] for r in engine.wait_ready_replicas("arith", 3)}
    assert not new & old
    fh.wait_until(lambda: not any(pid_alive(p) for p in old), 20, f"old replicas {old} to stop")
    # The steps, in the events: each drained one old replica once a new one was ready;
    # the cut-over, once all 3 were, drained the last.
    events = engine.admin("GET", "/v1/deployments/arith/events?limit=50").json()
    steps = [e["message"] for e in events["rollouts"] if e["kind"] == "step"]
    assert steps == ["2 of 3 new replicas of v1@2 ready; v1@1 down to 1 (rollout.max_surge 1)",
                     "1 of 3 new replicas of v1@2 ready; v1@1 down to 2 (rollout.max_surge 1)"], events["rollouts"]
    x = fh.make_inputs("int_ops", 1)
    r = infer_json(engine, "int_ops", x)
    assert r.status_code == 200, r.text

    # A step that crash-loops: the rollout fails, the 3 serving replicas stay as they were.
    bad = write_spec(tmp_path / "bad.yaml", spec_text("arith", "v1", [broken_add_sub(tmp_path, model_repo),
                                                                       model_repo / "int_ops"], extra))
    failed = ChildSampler(engine.proc.pid)
    try:
        p = engine.cli("deploy", "-f", str(bad), "--json")
    finally:
        failed.stop()
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "crash-looping" in p.stdout + p.stderr and "generation 2 keeps serving" in p.stdout + p.stderr, p
    assert failed.peak <= 4, failed.peak
    assert {r["pid"] for r in engine.wait_ready_replicas("arith", 3)} == new
    assert_add_sub_answers(httpclient.InferenceServerClient(engine.url), model_repo)
    print(f"\nmax_surge 1 under load: {load.total} requests, {load.after_mark} from the deploy on, 0 failed; "
          f"at most {sampler.peak} replica processes in {sampler.samples} samples")
