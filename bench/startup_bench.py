#!/usr/bin/env python3
"""Start-up cost of ferry binaries, measured side by side in one run.

Usage (bench/run_startup_bench.sh calls it):
    startup_bench.py --work DIR --runs N --ferry LABEL=BINARY [--ferry LABEL=BINARY ...]

For each binary, alternating between them run by run (so drift on a shared machine
hits all alike), it measures:
  help        wall time of `ferry --help`
  runtimes    wall time of `ferry runtimes`
  serve_1     `ferry serve` of one small ONNX model (add_sub, FP32 [1,16]): time from
              exec to the first successful inference (REST, polled every 1 ms), then
              idle RSS (anonymous / file-backed) and threads 2 s later
  serve_100   100 copies of that model: time from exec to /v2/health/ready answering
              200 with every model loaded, then idle RSS and threads 2 s later
  torch       one TorchScript model: exec to first successful inference, and the
              module load time the server logs ("runtime module loaded ... load_ms")
Prints one JSON document: per binary and metric, the median and min/max over runs.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "examples"))

ADD_SUB_BODY = json.dumps({"inputs": [
    {"name": "INPUT0", "shape": [1, 16], "datatype": "FP32", "data": list(range(16))},
    {"name": "INPUT1", "shape": [1, 16], "datatype": "FP32", "data": [1] * 16}]}).encode()
TORCH_BODY = json.dumps({"inputs": [
    {"name": "INPUT__0", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}).encode()


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def make_repos(work: Path) -> dict[str, Path]:
    import onnx
    from generate_models import build_add_sub

    model = build_add_sub(1)
    one = work / "repo_one"
    many = work / "repo_100"
    for repo, count in ((one, 1), (many, 100)):
        if repo.exists():
            shutil.rmtree(repo)
        for i in range(count):
            d = repo / f"add_sub_{i}" / "1"
            d.mkdir(parents=True)
            onnx.save(model, str(d / "model.onnx"))
    torch_repo = work / "repo_torch"
    if torch_repo.exists():
        shutil.rmtree(torch_repo)
    # Debian's python3-torch writes the TorchScript file (the libtorch the module links).
    subprocess.run([str(HERE.parent / ".venv/bin/python"), str(HERE.parent / "examples/generate_runtime_models.py"),
                    str(work / "runtime_models")], check=True, capture_output=True)
    src = work / "runtime_models" / "torch_linear"
    if src.exists():
        torch_repo.mkdir()
        shutil.copytree(src, torch_repo / "torch_linear")
    return {"one": one, "many": many, "torch": torch_repo}


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.perf_counter() - t0) * 1000


def request(port: int, method: str, path: str, body: bytes | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def proc_status(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "Threads"):
            out[key] = int(value.split()[0])
    return {"rss_mb": out["VmRSS"] / 1024, "anon_mb": out["RssAnon"] / 1024, "file_mb": out["RssFile"] / 1024,
            "threads": out["Threads"]}


def serve(binary: str, repo: Path, ready, log: Path, timeout_s: float = 60) -> dict:
    http_port, grpc_port, metrics_port = free_ports(3)
    cmd = [binary, "serve", "--model-repository", str(repo), "--http-address", "127.0.0.1",
           "--http-port", str(http_port), "--grpc-port", str(grpc_port), "--metrics-port", str(metrics_port)]
    with open(log, "w") as logf:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT)
        try:
            deadline = t0 + timeout_s
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"{binary} exited {proc.returncode} during start-up; see {log}")
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"{binary} not ready within {timeout_s} s; see {log}")
                try:
                    if ready(http_port):
                        break
                except OSError:
                    pass
                time.sleep(0.001)
            ready_ms = (time.perf_counter() - t0) * 1000
            time.sleep(2.0)  # idle: let start-up threads finish and pools settle
            result = {"ready_ms": ready_ms, **proc_status(proc.pid)}
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    text = log.read_text()
    m = re.search(r'runtime module loaded" runtime=pytorch .*load_ms=([0-9.]+)', text)
    if m:
        result["torch_module_load_ms"] = float(m.group(1))
    return result


def all_ready(port: int, count: int) -> bool:
    if request(port, "GET", "/v2/health/ready") != 200:
        return False
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("POST", "/v2/repository/index", body=b"{}")
        index = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    return sum(1 for m in index if m.get("state") == "READY") >= count


def summarise(samples: list[float]) -> dict:
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples), "n": len(samples)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--ferry", action="append", required=True, help="LABEL=BINARY")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    binaries = dict(item.split("=", 1) for item in args.ferry)
    repos = make_repos(args.work)
    samples: dict[str, dict[str, list[float]]] = {label: {} for label in binaries}

    def add(label: str, key: str, value: float) -> None:
        samples[label].setdefault(key, []).append(value)

    for run in range(args.runs):
        for label, binary in binaries.items():
            for _ in range(10):
                add(label, "help_ms", timed([binary, "--help"]))
                add(label, "runtimes_ms", timed([binary, "runtimes"]))
            one = serve(binary, repos["one"], lambda p: request(p, "POST", "/v2/models/add_sub_0/infer",
                                                                  ADD_SUB_BODY) == 200,
                        args.work / f"{label}_one_{run}.log")
            for k, v in one.items():
                add(label, f"serve_1_{k}", v)
            many = serve(binary, repos["many"], lambda p: all_ready(p, 100), args.work / f"{label}_100_{run}.log")
            for k, v in many.items():
                add(label, f"serve_100_{k}", v)
            if (repos["torch"] / "torch_linear").exists():
                torch = serve(binary, repos["torch"], lambda p: request(p, "POST", "/v2/models/torch_linear/infer",
                                                                        TORCH_BODY) == 200,
                              args.work / f"{label}_torch_{run}.log")
                for k, v in torch.items():
                    add(label, f"torch_{k}", v)
        print(f"run {run + 1}/{args.runs} done", file=sys.stderr)

    result = {label: {k: summarise(v) for k, v in metrics.items()} for label, metrics in samples.items()}
    (args.work / "startup.json").write_text(json.dumps(result, indent=1))
    print(markdown(result, args.runs))
    return 0


# (metric, what, unit, goal or None); goals from the runtimes-as-modules issue.
ROWS = [
    ("help_ms", "`ferry --help`", "ms", 20),
    ("runtimes_ms", "`ferry runtimes`", "ms", 20),
    ("serve_1_ready_ms", "1 ONNX model: exec to first inference", "ms", 150),
    ("serve_1_rss_mb", "1 ONNX model: idle RSS", "MB", 50),
    ("serve_1_anon_mb", "1 ONNX model: idle RSS, anonymous", "MB", None),
    ("serve_1_file_mb", "1 ONNX model: idle RSS, file-backed", "MB", None),
    ("serve_1_threads", "1 ONNX model: idle threads", "", None),
    ("serve_100_ready_ms", "100 ONNX models: exec to all ready", "ms", 1000),
    ("serve_100_rss_mb", "100 ONNX models: idle RSS", "MB", 120),
    ("serve_100_threads", "100 ONNX models: idle threads", "", None),
    ("torch_ready_ms", "1 TorchScript model: exec to first inference", "ms", None),
    ("torch_torch_module_load_ms", "PyTorch module load (dlopen + libtorch init), as logged", "ms", None),
    ("torch_rss_mb", "1 TorchScript model: idle RSS", "MB", None),
]


def markdown(result: dict, runs: int) -> str:
    labels = list(result)
    head = "| measure | " + " | ".join(labels) + (f" | {labels[1]} ÷ {labels[0]} |" if len(labels) == 2 else " |") + " goal |"
    lines = [head, "|" + " --- |" * (len(labels) + (3 if len(labels) == 2 else 2))]
    for key, what, unit, goal in ROWS:
        cells = []
        values = []
        for label in labels:
            m = result[label].get(key)
            values.append(m["median"] if m else None)
            cells.append("—" if not m else f"{m['median']:.1f} {unit} ({m['min']:.1f}–{m['max']:.1f})".strip())
        row = f"| {what} | " + " | ".join(cells)
        if len(labels) == 2:
            a, b = values
            row += " | " + (f"{b / a:.1f}×" if a and b else "—")
        row += " | " + (f"≤ {goal} {unit}".strip() if goal else "") + " |"
        lines.append(row)
    lines.append("")
    lines.append(f"Medians (min–max) over {runs} runs per binary, run alternately; `--help` and `runtimes` "
                 f"are {10 * runs} runs each.")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
