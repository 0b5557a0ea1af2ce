"""Graceful shutdown: SIGTERM lets accepted requests finish, then ferry exits 0.

To have requests truly in flight when the signal lands (the example models answer
in well under a millisecond), each of the 20 request threads sends the headers and
half of its body, then waits.  Once the server process holds all 20 connections
(read from /proc/<pid>/fd and /proc/net/tcp), SIGTERM goes out, the threads send the rest, and
every one of them must get 200 with correct outputs.  A few more requests started
after the signal are counted separately: those may be refused.
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import threading
import time

import requests

import ferry_helpers as fh

IN_FLIGHT = 20
PATH = "/v2/models/add_sub/versions/1/infer"


def _request_bytes(port: int, inputs) -> tuple[bytes, bytes]:
    body = json.dumps(fh.json_request(inputs)).encode()
    head = (f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    half = len(body) // 2
    return head + body[:half], body[half:]


class SlowRequest:
    """A request whose second half is held back until told to go."""

    def __init__(self, port: int, seed: int):
        self.inputs = fh.make_inputs("add_sub", 1 + seed % 3, seed=seed)
        first, self.rest = _request_bytes(port, self.inputs)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=fh.HTTP_TIMEOUT_S)
        self.sock.sendall(first)
        self.status: int | None = None
        self.body = b""
        self.headers: dict[str, str] = {}
        self.error: BaseException | None = None

    def finish(self, go: threading.Event) -> None:
        try:
            go.wait(fh.HTTP_TIMEOUT_S)
            self.sock.sendall(self.rest)
            resp = http.client.HTTPResponse(self.sock)
            resp.begin()
            self.status = resp.status
            self.headers = dict(resp.getheaders())
            self.body = resp.read()
        except BaseException as exc:  # noqa: BLE001 - recorded and reported by the test
            self.error = exc
        finally:
            self.sock.close()


def _shutdown_began(server) -> bool:
    """True once ferry refuses new connections or stops reporting ready."""
    try:
        return server.get("/v2/health/ready", timeout=1).status_code != 200
    except requests.RequestException:
        return True


def test_sigterm_drains_in_flight_requests(ferry_factory):
    server = ferry_factory.start(name="shutdown")
    slow: list[SlowRequest] = []
    try:
        _drain_check(server, slow)
    finally:
        for r in slow:  # never leave half-sent requests holding the server open
            r.sock.close()


def _drain_check(server, slow):
    port = server.http_port
    for seed in range(IN_FLIGHT):
        slow.append(SlowRequest(port, seed))
    client_ports = {r.sock.getsockname()[1] for r in slow}
    fh.wait_until(lambda: client_ports <= server.accepted_peer_ports(), 10,
                  f"ferry to accept all {IN_FLIGHT} connections", on_timeout=server.describe)

    go = threading.Event()
    threads = [threading.Thread(target=r.finish, args=(go,), daemon=True) for r in slow]
    for t in threads:
        t.start()

    server.proc.send_signal(signal.SIGTERM)
    sigterm_at = time.monotonic()
    # Give the server the chance to start shutting down before the bodies complete, so the
    # requests are really in flight during shutdown.  Not every design closes its listener
    # or flips readiness, so this only waits a bounded time and never fails by itself.
    deadline = sigterm_at + 3
    while time.monotonic() < deadline and server.proc.poll() is None and not _shutdown_began(server):
        time.sleep(0.05)

    # Requests that start after shutdown began: refused, 503, or served correctly.
    late = {"ok": 0, "refused": 0, "unavailable": 0}
    late_problems = []
    for seed in range(100, 105):
        inputs = fh.make_inputs("add_sub", 1, seed=seed)
        try:
            resp = server.post(PATH, json=fh.json_request(inputs), timeout=5)
        except requests.ConnectionError:
            late["refused"] += 1
            continue
        except requests.Timeout:
            late_problems.append(f"late request {seed}: no answer within 5 s (connection accepted, never served)")
            break
        if resp.status_code == 503:
            late["unavailable"] += 1
        elif resp.status_code == 200:
            try:
                fh.assert_outputs_match(fh.parse_infer_response(resp)[1],
                                        fh.reference(server.repo, "add_sub", 1, inputs))
                late["ok"] += 1
            except AssertionError as exc:
                late_problems.append(f"late request {seed}: wrong output: {exc}")
        else:
            late_problems.append(f"late request {seed}: status {resp.status_code} {resp.content[:200]!r}")

    go.set()
    for t in threads:
        t.join(fh.HTTP_TIMEOUT_S + 5)

    problems = []
    for i, r in enumerate(slow):
        if r.error is not None:
            problems.append(f"in-flight request {i}: {r.error!r}")
            continue
        if r.status != 200:
            problems.append(f"in-flight request {i}: status {r.status} {r.body[:200]!r}")
            continue
        ihcl = r.headers.get(fh.IHCL) or r.headers.get(fh.IHCL.lower())
        _, outputs = fh.parse_infer_body(r.body, int(ihcl) if ihcl else None)
        try:
            fh.assert_outputs_match(outputs, fh.reference(server.repo, "add_sub", 1, r.inputs))
        except AssertionError as exc:
            problems.append(f"in-flight request {i}: wrong output: {exc}")

    rc = server.wait_exit(fh.STOP_TIMEOUT_S)
    print(f"late requests after SIGTERM: {late}")
    assert not problems, "\n".join(problems) + "\n" + server.describe()
    assert not late_problems, "\n".join(late_problems)
    assert rc == 0, f"ferry exited with {rc} after SIGTERM\n{server.describe()}"


def test_sigterm_when_idle_exits_zero_quickly(ferry_factory):
    server = ferry_factory.start(name="idle-shutdown")
    start = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    rc = server.wait_exit(fh.STOP_TIMEOUT_S)
    assert rc == 0, server.describe()
    assert time.monotonic() - start < 5, "an idle server should stop within a few seconds"


def test_idle_keep_alive_connection_does_not_block_shutdown(ferry_factory):
    """A client that keeps an idle keep-alive connection open must not hold up the exit."""
    server = ferry_factory.start(name="keepalive-shutdown")
    inputs = fh.make_inputs("add_sub", 1, seed=50)
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=fh.HTTP_TIMEOUT_S)
    try:
        conn.request("POST", PATH, body=json.dumps(fh.json_request(inputs)).encode())
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200
        # the connection stays open and idle while the server is told to stop
        server.proc.send_signal(signal.SIGTERM)
        rc = server.wait_exit(fh.STOP_TIMEOUT_S)
        assert rc == 0, server.describe()
    finally:
        conn.close()


HUNG_MODEL = '''
import time
from ferry_sdk import Model

class Hung(Model):
    def predict(self, inputs):
        time.sleep(600)
        return {"y": inputs["x"]}
'''


def test_shutdown_stops_an_execution_that_would_hang_it(ferry_factory, tmp_path):
    """A model stuck in predict must not hold SIGTERM up: after --shutdown-grace-ms the
    server stops the execution (the worker is killed) and exits 0."""
    import sys

    repo = tmp_path / "repo"
    (repo / "hung" / "1").mkdir(parents=True)
    (repo / "hung" / "1" / "model.py").write_text(HUNG_MODEL)
    (repo / "hung" / "config.pbtxt").write_text(
        'backend: "python"\n'
        'input [ { name: "x" data_type: TYPE_FP32 dims: [ 2 ] } ]\n'
        'output [ { name: "y" data_type: TYPE_FP32 dims: [ 2 ] } ]\n')
    server = ferry_factory.start(repos=repo, name="hung",
                                 args=["--python-executable", sys.executable, "--shutdown-grace-ms", "1000"])
    body = {"inputs": [{"name": "x", "shape": [2], "datatype": "FP32", "data": [1, 2]}]}

    def send():
        try:
            requests.post(f"{server.base}/v2/models/hung/infer", json=body, timeout=30)
        except requests.RequestException:
            pass  # the server goes away without answering: expected

    def in_flight():
        text = requests.get(f"http://{server.metrics_url}/metrics", timeout=5).text
        return fh.metric_sum(fh.parse_metrics(text), "ferry_inflight_requests", model="hung") >= 1

    threading.Thread(target=send, daemon=True).start()
    fh.wait_until(in_flight, 10, "the request to reach the model")
    t0 = time.monotonic()
    server.terminate()
    rc = server.wait_exit(timeout=10)
    assert rc == 0, server.describe()
    assert time.monotonic() - t0 < 8, "shutdown waited for the hung execution"
    assert "stopping the requests still in flight" in server.log_path.read_text()
