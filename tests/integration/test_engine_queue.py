"""The gateway's concurrency limit and bounded queue (gateway.max_concurrency, max_queue,
queue_timeout) with a real `ferry engine`, a real `ferry serve` replica running a Python
model that sleeps, and tritonclient (http and grpc) plus raw sockets as clients.

With max_concurrency 1 and max_queue 2, one request runs at the replica, two wait at the
gateway, and any beyond those three are answered at once: 503 + Retry-After over REST,
RESOURCE_EXHAUSTED over gRPC, naming the deployment and the setting. The queued ones
succeed in turn; a queued client that leaves frees its place; a wait past queue_timeout
is a 503 naming it; and the gateway keeps serving.
"""

from __future__ import annotations

import socket
import sys
import threading
import time

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

import ferry_helpers as fh
from engine_helpers import write_spec

SLEEP_S = 1.5

SLEEPY_MODEL = f'''
import time
from ferry_sdk import Model

class Sleepy(Model):
    def predict(self, inputs):
        time.sleep({SLEEP_S})
        return {{"Y": inputs["X"] * 2}}
'''


def write_sleepy(repo, name: str) -> None:
    (repo / name / "1").mkdir(parents=True)
    (repo / name / "1" / "model.py").write_text(SLEEPY_MODEL)
    (repo / name / "config.pbtxt").write_text(
        'backend: "python"\n'
        'input [ { name: "X" data_type: TYPE_INT64 dims: [ -1 ] } ]\n'
        'output [ { name: "Y" data_type: TYPE_INT64 dims: [ -1 ] } ]\n')


@pytest.fixture
def queued_engine(engines, tmp_path):
    """`sleepy`: max_concurrency 1, max_queue 2, a long queue_timeout; `brief`: the same
    limit with a 300 ms queue_timeout. One replica each."""
    repo_a, repo_b = tmp_path / "repo_a", tmp_path / "repo_b"
    write_sleepy(repo_a, "sleepy")
    write_sleepy(repo_b, "brief")
    serve = f"{{http-threads: 2, python-executable: {sys.executable}}}"
    spec = write_spec(tmp_path / "spec.yaml", f"""\
deployments:
- name: sleepy
  revisions:
  - name: v1
    model_repository: {repo_a}
    serve: {serve}
  replicas: 1
  gateway: {{max_concurrency: 1, max_queue: 2, queue_timeout: 60s}}
- name: brief
  revisions:
  - name: v1
    model_repository: {repo_b}
    serve: {serve}
  replicas: 1
  gateway: {{max_concurrency: 1, max_queue: 2, queue_timeout: 300ms}}
""")
    engine = engines(spec, tmp_path / "state")
    engine.wait_ready_replicas("sleepy", 1)
    engine.wait_ready_replicas("brief", 1)
    return engine


def rest_infer(engine, model: str, x: np.ndarray, timeout: float = 60):
    """(status, elapsed s, Retry-After, body) of one JSON inference through the REST gateway."""
    body = {"inputs": [{"name": "X", "datatype": "INT64", "shape": [len(x)], "data": x.tolist()}]}
    t0 = time.monotonic()
    r = engine.post(f"/v2/models/{model}/infer", json=body, timeout=timeout)
    return r.status_code, time.monotonic() - t0, r.headers.get("Retry-After"), r.text


def in_flight_at_gateway(engine, deployment: str) -> float:
    samples = fh.parse_metrics(fh.http_request("GET", f"http://{engine.metrics_url}/metrics").text)
    return fh.metric_sum(samples, "ferry_engine_in_flight", deployment=deployment)


def wait_in_flight(engine, deployment: str, n: int) -> None:
    fh.wait_until(lambda: in_flight_at_gateway(engine, deployment) == n, 20,
                  f"{n} requests of {deployment} admitted at the gateway", interval=0.02,
                  on_timeout=lambda: engine.describe(30))


def run_burst(engine, send, first_then: int):
    """One request first (it runs at the replica), then `first_then` more at once;
    returns every result, in sending order."""
    results: list = [None] * (1 + first_then)

    def worker(i):
        results[i] = send(i)

    threads = [threading.Thread(target=worker, args=(0,))]
    threads[0].start()
    wait_in_flight(engine, "sleepy", 1)
    for i in range(1, 1 + first_then):
        threads.append(threading.Thread(target=worker, args=(i,)))
        threads[-1].start()
    for t in threads:
        t.join(60)
    assert all(not t.is_alive() for t in threads), "a request hung"
    return results


def test_rest_beyond_the_limit_and_the_queue_is_refused_at_once_and_the_queued_succeed(queued_engine):
    engine = queued_engine
    x = np.arange(4, dtype=np.int64)
    results = run_burst(engine, lambda i: rest_infer(engine, "sleepy", x), first_then=5)
    ok = [r for r in results if r[0] == 200]
    busy = [r for r in results if r[0] == 503]
    assert len(ok) == 3 and len(busy) == 3, [(s, round(t, 2), b[:120]) for s, t, _, b in results]
    for status, elapsed, retry_after, text in busy:
        assert retry_after == "1", text
        assert "deployment 'sleepy'" in text and "gateway.max_queue 2" in text, text
        # At once: before the running request could have been answered.
        assert elapsed < SLEEP_S, (elapsed, text)
    # One at a time at the replica: the queued ones were answered a sleep apart.
    times = sorted(t for _, t, _, _ in ok)
    assert times[2] >= 3 * SLEEP_S * 0.9, times
    for _, _, _, text in ok:
        assert '"data":[0,2,4,6]' in text.replace(" ", ""), text
    samples = fh.parse_metrics(fh.http_request("GET", f"http://{engine.metrics_url}/metrics").text)
    assert fh.metric_sum(samples, "ferry_engine_rejected_total", deployment="sleepy", reason="queue_full") == 3
    assert fh.metric_sum(samples, "ferry_engine_queue_depth", deployment="sleepy") == 0
    assert fh.metric_sum(samples, "ferry_engine_queue_wait_seconds_count", deployment="sleepy") >= 2
    # Still serving.
    assert rest_infer(engine, "sleepy", x)[0] == 200


def test_grpc_beyond_the_limit_and_the_queue_is_resource_exhausted(queued_engine):
    engine = queued_engine
    x = np.arange(3, dtype=np.int64)

    def send(_):
        c = grpcclient.InferenceServerClient(engine.grpc_url)
        inp = grpcclient.InferInput("X", [3], "INT64")
        inp.set_data_from_numpy(x)
        t0 = time.monotonic()
        try:
            got = c.infer("sleepy", [inp], client_timeout=60).as_numpy("Y")
            return "OK", time.monotonic() - t0, got
        except InferenceServerException as exc:
            return exc.status(), time.monotonic() - t0, exc.message()
        finally:
            c.close()

    results = run_burst(engine, send, first_then=4)
    ok = [r for r in results if r[0] == "OK"]
    busy = [r for r in results if r[0] != "OK"]
    assert len(ok) == 3 and len(busy) == 2, results
    for code, elapsed, message in busy:
        assert code == "StatusCode.RESOURCE_EXHAUSTED", (code, message)
        assert "deployment 'sleepy'" in message and "gateway.max_concurrency 1" in message, message
        assert elapsed < SLEEP_S, (elapsed, message)
    for _, _, got in ok:
        np.testing.assert_array_equal(got, x * 2)


def test_a_queued_client_that_leaves_frees_its_place(queued_engine):
    engine = queued_engine
    body = b'{"inputs":[{"name":"X","datatype":"INT64","shape":[1],"data":[5]}]}'
    request = (b"POST /v2/models/sleepy/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    socks = []
    for n in (1, 2, 3):  # one runs, two wait
        s = socket.create_connection(("127.0.0.1", engine.http_port))
        s.sendall(request)
        socks.append(s)
        wait_in_flight(engine, "sleepy", n)
    socks[2].close()  # the last queued client leaves
    wait_in_flight(engine, "sleepy", 2)
    # Its place is free: a new request is queued (and answered), not refused.
    status, _, _, text = rest_infer(engine, "sleepy", np.array([7], dtype=np.int64))
    assert status == 200 and "14" in text, (status, text)
    for s in socks[:2]:
        s.settimeout(30)
        assert s.recv(4096).startswith(b"HTTP/1.1 200"), "a queued request that stayed was not answered"
        s.close()


def test_a_wait_past_queue_timeout_is_503_naming_it(queued_engine):
    engine = queued_engine
    x = np.arange(2, dtype=np.int64)
    results: list = [None, None]
    first = threading.Thread(target=lambda: results.__setitem__(0, rest_infer(engine, "brief", x)))
    first.start()
    wait_in_flight(engine, "brief", 1)
    results[1] = rest_infer(engine, "brief", x)
    first.join(60)
    status, elapsed, retry_after, text = results[1]
    assert status == 503 and retry_after == "1", (status, text)
    assert "deployment 'brief'" in text and "gateway.queue_timeout passed" in text, text
    assert 0.3 <= elapsed < SLEEP_S, elapsed
    assert results[0][0] == 200, results[0]
    samples = fh.parse_metrics(fh.http_request("GET", f"http://{engine.metrics_url}/metrics").text)
    assert fh.metric_sum(samples, "ferry_engine_rejected_total", deployment="brief", reason="queue_timeout") == 1
