#!/usr/bin/env python3
"""Instructions per request of the dynamic batching path, counted by callgrind.

  batching_instructions.py FERRY_BIN WORK [--conns 64] [--per-conn 40] [--delay-us 500]
                           [--target-us 2000]

Builds a repository of one cheap model (bench/batching_tool.py's Slice: x [-1,256] ->
y = x[:, :16], max_batch_size 64) in three configurations: proto_off (no batching),
proto_delay (max_queue_delay_microseconds) and proto_target (latency_target_microseconds).
Starts `ferry serve` under callgrind with instrumentation off; for each configuration it
warms up with CONNS closed-loop keep-alive connections, switches instrumentation on,
zeroes, sends CONNS x PER_CONN counted requests, dumps, and prints

  BATCHINSTR model=M requests=N executions=E mean_batch=B instructions=I per_request=P

(all ferry threads' user-space instructions; executions from ferry's statistics). The
difference per request between a batching configuration and proto_off is the batching
path's cost per row, less the model calls the batch amortises. Under valgrind the threads
run one at a time, so batches form differently from a real run; the mean batch is printed
next to each count. Every answer must be 200 with the row's first 16 floats.
The callgrind files stay in WORK (callgrind_annotate --inclusive=yes WORK/cg.*).
"""
from __future__ import annotations

import argparse
import json
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import batching_tool as bt  # noqa: E402


def prepare(work: Path, delay_us: int, target_us: int) -> None:
    import onnx

    model = bt.build_protocol_model()
    configs = {
        "proto_off": "",
        "proto_delay": f"dynamic_batching {{ max_queue_delay_microseconds: {delay_us} }}\n",
        "proto_target": ("dynamic_batching { }\n"
                         'parameters { key: "latency_target_microseconds" '
                         f'value: {{ string_value: "{target_us}" }} }}\n'),
    }
    for name, batching in configs.items():
        d = work / "repo" / name / "1"
        d.mkdir(parents=True, exist_ok=True)
        onnx.save(model, str(d / "model.onnx"))
        (d.parent / "config.pbtxt").write_text(bt.config_text(name, 64, batching))


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def stats(port: int, model: str) -> tuple[int, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/models/{model}/versions/1/stats", timeout=60) as r:
        s = json.load(r)["model_stats"][0]
    return s["execution_count"], s["inference_count"]


def drive(port: int, model: str, conns: int, per_conn: int) -> None:
    """CONNS threads, each a keep-alive connection sending PER_CONN requests back to back;
    connection i sends row value i (a row is 256 copies of float(i)), and checks it."""
    errors: list[str] = []

    def one_conn(i: int) -> None:
        x = [float(i) + 0.25 * k for k in range(256)]
        head = json.dumps({"inputs": [{"name": "x", "shape": [1, 256], "datatype": "FP32",
                                       "parameters": {"binary_data_size": 1024}}],
                           "outputs": [{"name": "y", "parameters": {"binary_data": True}}]},
                          separators=(",", ":")).encode()
        body = head + struct.pack("<256f", *x)
        req = (f"POST /v2/models/{model}/versions/1/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               "Content-Type: application/octet-stream\r\n"
               f"Inference-Header-Content-Length: {len(head)}\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        want = struct.pack("<16f", *x[:16])
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=600)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for _ in range(per_conn):
                s.sendall(req)
                buf = b""
                while b"\r\n\r\n" not in buf:
                    chunk = s.recv(65536)
                    if not chunk:
                        raise RuntimeError("connection closed")
                    buf += chunk
                h, rest = buf.split(b"\r\n\r\n", 1)
                if not h.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(h[:200].decode(errors="replace"))
                length = int(next(l.split(b":")[1] for l in h.split(b"\r\n")
                                  if l.lower().startswith(b"content-length")))
                while len(rest) < length:
                    rest += s.recv(65536)
                if not rest.endswith(want):
                    raise RuntimeError(f"connection {i}: wrong row in the answer")
            s.close()
        except Exception as e:  # noqa: BLE001
            errors.append(str(e))

    threads = [threading.Thread(target=one_conn, args=(i,)) for i in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        sys.exit(f"batching_instructions: {len(errors)} connections failed ({model}), e.g. {errors[0]}")


def summary(path: Path) -> int:
    for line in path.read_text().splitlines():
        if line.startswith("summary:"):
            return int(line.split()[1])
    sys.exit(f"no summary in {path}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("ferry")
    ap.add_argument("work", type=Path)
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--per-conn", type=int, default=40)
    ap.add_argument("--warm-per-conn", type=int, default=10)
    ap.add_argument("--delay-us", type=int, default=500)
    ap.add_argument("--target-us", type=int, default=2000)
    ap.add_argument("--models", default="proto_off proto_delay proto_target")
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    prepare(a.work, a.delay_us, a.target_us)
    http, grpc = free_port(), free_port()
    log = open(a.work / "ferry.log", "w")
    proc = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={a.work}/cg",
                             "--instr-atstart=no", a.ferry, "serve", "--model-repository", str(a.work / "repo"),
                             "--http-address", "127.0.0.1", "--http-port", str(http), "--grpc-port", str(grpc),
                             "--metrics-port", "0", "--http-threads", "1", "--intra-op-threads", "1"],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    pid = str(proc.pid)

    def control(*args: str) -> None:
        subprocess.run(["callgrind_control", *args, pid], check=True, capture_output=True)

    try:
        deadline = time.time() + 240
        while True:
            if proc.poll() is not None:
                sys.exit("ferry exited under callgrind; see " + str(a.work / "ferry.log"))
            try:
                for model in a.models.split():
                    urllib.request.urlopen(f"http://127.0.0.1:{http}/v2/models/{model}/versions/1/ready", timeout=5)
                break
            except Exception:  # noqa: BLE001
                if time.time() > deadline:
                    sys.exit("ferry not ready")
                time.sleep(1)
        for model in a.models.split():
            drive(http, model, a.conns, a.warm_per_conn)
            e0, i0 = stats(http, model)
            control("-i", "on")
            control("-z")
            drive(http, model, a.conns, a.per_conn)
            control(f"--dump={model}")
            control("-i", "off")
            e1, i1 = stats(http, model)
            dump = max(a.work.glob("cg.*"), key=lambda p: p.stat().st_mtime)
            dump = dump.rename(a.work / f"cg.{model}")
            ir = summary(dump)
            n = a.conns * a.per_conn
            print(f"BATCHINSTR model={model} requests={n} executions={e1 - e0} "
                  f"mean_batch={(i1 - i0) / max(1, e1 - e0):.1f} instructions={ir} per_request={ir / n:.0f}",
                  flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=120)


if __name__ == "__main__":
    main()
