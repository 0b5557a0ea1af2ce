"""Sends requests one after another on one keep-alive connection to a ferry serving under
callgrind (started with --instr-atstart=no), and counts only the second batch of them:
bench/run_instructions_bench.sh and bench/run_monitoring_instructions_bench.sh share it.

  callgrind_requests.py PORT PID N DUMP PATH BODY_FILE [--header "Name: value"]... [--settle S]

300 uncounted requests first (warm-up: the inline-execution gate, caches), then
instrumentation on, the counters zeroed, N counted requests, and a dump named DUMP. With
--settle, it waits S seconds before switching on and before dumping, so that background
threads (the monitoring thread) finish their share of the counted requests. Every answer
must be 200. (Switching instrumentation off before the dump would leave a wrapped total.)
"""
from __future__ import annotations

import argparse
import socket
import subprocess
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("pid")
    ap.add_argument("n", type=int)
    ap.add_argument("dump")
    ap.add_argument("path")
    ap.add_argument("body_file")
    ap.add_argument("--header", action="append", default=[])
    ap.add_argument("--settle", type=float, default=0.0)
    a = ap.parse_args()
    body = open(a.body_file, "rb").read()
    head = f"POST {a.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(h + "\r\n" for h in a.header)
    req = (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    s = socket.create_connection(("127.0.0.1", a.port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def one() -> None:
        s.sendall(req)
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(65536)
        head, rest = buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 200"), head[:200]
        length = int(next(l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")))
        while len(rest) < length:
            rest += s.recv(65536)

    def control(*args: str) -> None:
        subprocess.run(["callgrind_control", *args, a.pid], check=True, capture_output=True)

    for _ in range(300):
        one()
    time.sleep(a.settle)
    control("-i", "on")
    control("-z")
    for _ in range(a.n):
        one()
    time.sleep(a.settle)
    control(f"--dump={a.dump}")


if __name__ == "__main__":
    main()
