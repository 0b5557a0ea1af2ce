#!/usr/bin/env python3
"""Event timings of `ferry engine` for bench/run_engine_bench.sh (prints Markdown).

  cold start   a deployment with replicas {min: 0} and scale_to_zero_after: 1s is left
               idle until it has no replica process, then one REST infer request is
               timed at the client (mlp_classifier, ONNX): request sent -> answer read.
  step         a deployment with the documented autoscaling defaults (target_in_flight 4,
               panic window 6 s, scale_up_delay 0) serving one replica gets a step from
               0 to 8 closed-loop connections (wrk -c8, so 8 requests are in flight); the time from the step to a second replica
               being ready (routable) is taken from the admin API, polled every 20 ms.
               A fresh engine per repeat (the panic mode holds scale-down for a stable
               window, 60 s, after each step), idle for a whole panic window first.
  replacement  SIGKILL of a deployment's only replica -> a ready replica with another pid
               (admin API, polled every 20 ms); the restart back-off (500 ms) included.

Every request must succeed; any failure aborts the run.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from startup_bench import free_ports  # bench/, beside this script

MLP_BODY = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4],
                                   "data": [0.1, 0.2, 0.3, 0.4]}]}).encode()
ADD_BODY = json.dumps({"inputs": [{"name": n, "datatype": "FP32", "shape": [1, 16], "data": [1.0] * 16}
                                  for n in ("INPUT0", "INPUT1")]}).encode()


class Engine:
    def __init__(self, ferry: str, work: Path, name: str, spec: str, client_cpu: str):
        self.dir = work / name
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "spec.yaml").write_text(spec)
        self.gw, self.admin = free_ports(2)
        args = [ferry, "engine", "--config", str(self.dir / "spec.yaml"), "--state-dir", str(self.dir / "state"),
                "--http-address", "127.0.0.1", "--http-port", str(self.gw), "--admin-port", str(self.admin),
                "--metrics-port", "0", "--http-threads", "1"]
        help_text = subprocess.run([ferry, "engine", "--help"], capture_output=True, text=True).stdout
        if "--grpc-port" in help_text:
            args += ["--grpc-port", "0"]
        self.log = open(self.dir / "engine.log", "wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.client_cpu = client_cpu

    def status(self) -> dict:
        c = http.client.HTTPConnection("127.0.0.1", self.admin, timeout=5)
        c.request("GET", "/v1/status")
        r = c.getresponse()
        body = r.read()
        c.close()
        if r.status != 200:
            raise RuntimeError(f"admin /v1/status answered {r.status}: {body[:200]!r}")
        return json.loads(body)

    def revision(self, deployment: str) -> dict:
        for rev in self.status()["revisions"]:
            if rev["deployment"] == deployment:
                return rev
        raise RuntimeError(f"deployment {deployment} not in the status")

    def wait(self, what: str, pred, timeout: float = 60.0, period: float = 0.02) -> float:
        t0 = time.monotonic()
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the engine exited ({self.proc.returncode}) while waiting for {what}; see {self.dir}/engine.log")
            try:
                if pred():
                    return time.monotonic()
            except (OSError, http.client.HTTPException):
                pass
            if time.monotonic() - t0 > timeout:
                raise RuntimeError(f"timed out after {timeout} s waiting for {what}; see {self.dir}/engine.log")
            time.sleep(period)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def post(port: int, path: str, body: bytes, conn: http.client.HTTPConnection | None = None):
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    if r.status != 200:
        raise RuntimeError(f"POST {path} answered {r.status}: {data[:300]!r}")
    return c


def ready_count(rev: dict) -> int:
    return sum(1 for r in rev["replicas"] if r["state"] == "ready")


def summary(name: str, values: list[float], goal: str) -> str:
    ms = [v * 1000 for v in values]
    return (f"| {name} | {len(ms)} | {statistics.median(ms):.0f} | {min(ms):.0f} | {max(ms):.0f} | {goal} |")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ferry", required=True)
    ap.add_argument("--work", required=True, type=Path)
    ap.add_argument("--repo", required=True, type=Path)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--client-cpu", default="1")
    a = ap.parse_args()
    repo = a.repo.resolve()

    # Cold start and replacement share one engine.
    spec = f"""deployments:
- name: cold
  revisions:
  - name: v1
    models: [{repo}/mlp_classifier]
    serve: {{http-threads: 1, intra-op-threads: 1}}
  replicas: {{min: 0, max: 1, initial: 0}}
  autoscaling: {{scale_to_zero_after: 1s}}
- name: heal
  revisions:
  - name: v1
    models: [{repo}/int_ops]
    serve: {{http-threads: 1, intra-op-threads: 1}}
  replicas: 1
"""
    cold, heal = [], []
    e = Engine(a.ferry, a.work, "events", spec, a.client_cpu)
    try:
        e.wait("the heal replica", lambda: ready_count(e.revision("heal")) == 1)
        for _ in range(a.repeats):
            e.wait("cold at zero replicas", lambda: len(e.revision("cold")["replicas"]) == 0, timeout=120)
            t0 = time.monotonic()
            post(e.gw, "/v2/models/mlp_classifier/infer", MLP_BODY).close()
            cold.append(time.monotonic() - t0)
        for _ in range(a.repeats):
            old = e.revision("heal")["replicas"][0]["pid"]
            time.sleep(1.0)  # a steady replica: its back-off is at the initial value again
            t0 = time.monotonic()
            os.kill(old, signal.SIGKILL)
            t1 = e.wait("a replacement", lambda: any(r["state"] == "ready" and r["pid"] != old
                                                     for r in e.revision("heal")["replicas"]))
            heal.append(t1 - t0)
    finally:
        e.stop()

    step = []
    step_spec = f"""deployments:
- name: step
  revisions:
  - name: v1
    models: [{repo}/add_sub]
    serve: {{http-threads: 1, intra-op-threads: 1}}
  replicas: {{min: 1, max: 4}}
"""
    body = a.work / "step-body.json"
    body.write_bytes(ADD_BODY)
    lua = Path(__file__).resolve().parent / "wrk_post.lua"
    for i in range(a.repeats):
        e = Engine(a.ferry, a.work, f"step{i}", step_spec, a.client_cpu)
        wrk = None
        try:
            e.wait("the step replica", lambda: ready_count(e.revision("step")) == 1)
            time.sleep(6.5)  # a whole panic window of idle samples before the step
            env = dict(os.environ, BENCH_BODY=str(body), BENCH_HEADERS="Content-Type: application/json",
                       BENCH_LABEL=f"step{i}")
            t0 = time.monotonic()
            wrk = subprocess.Popen(["taskset", "-c", a.client_cpu, "wrk", "-t1", "-c8", "-d120s", "--timeout", "10s",
                                    "-s", str(lua), f"http://127.0.0.1:{e.gw}/v2/models/add_sub/infer"],
                                   env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            t1 = e.wait("a second replica", lambda: ready_count(e.revision("step")) >= 2, timeout=60)
            step.append(t1 - t0)
        finally:
            if wrk:
                wrk.send_signal(signal.SIGINT)
                out = wrk.communicate(timeout=30)[0]
            e.stop()
        line = next((l for l in out.splitlines() if l.startswith("WRKRESULT")), "")
        errs = sum(int(f.split("=")[1]) for f in line.split() if f.startswith("err_"))
        if not line or errs:
            raise RuntimeError(f"step load: errors or no result from wrk: {out[-500:]}")

    print("Engine events (client-side times; ms):")
    print()
    print("| measurement | runs | median | min | max | goal |")
    print("|---|---:|---:|---:|---:|---|")
    print(summary("first request from zero replicas (mlp_classifier, ONNX)", cold, "≤ 1000"))
    print(summary("step 0 → 8 clients → second replica ready (defaults)", step, "≤ 5000"))
    print(summary("SIGKILL of the only replica → replacement ready", heal, "—"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
