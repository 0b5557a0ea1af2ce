"""Deadlines that hold during execution, and work dropped when the client goes away.

A deliberately slow model (a chain of large matrix products) runs for seconds; a
request whose timeout passes, or whose client disconnects, must stop it early so the
instance serves the next request at once."""

from __future__ import annotations

import json
import socket
import time

import numpy as np
import pytest

import ferry_helpers as fh

N = fh.SLOW_MODEL_N


@pytest.fixture(scope="module")
def slow_server(ferry_module_factory, tmp_path_factory):
    """A server whose `slow` model takes >= 2 s per request on one thread."""
    repo = tmp_path_factory.mktemp("slow") / "repo"
    expected_s = fh.write_slow_model(repo)
    server = ferry_module_factory.start(repos=repo, name="slow")
    return server, expected_s


def _body(timeout_us=None):
    doc = {"inputs": [{"name": "x", "shape": [N, N], "datatype": "FP32", "parameters": {"binary_data_size": N * N * 4}}]}
    if timeout_us is not None:
        doc["parameters"] = {"timeout": timeout_us}
    header = json.dumps(doc).encode()
    return header, header + np.ones((N, N), np.float32).tobytes()


def _post(server, timeout_us=None):
    header, body = _body(timeout_us)
    return server.post("/v2/models/slow/infer", data=body,
                       headers={"Inference-Header-Content-Length": str(len(header))}, timeout=60)


def test_timeout_stops_a_running_execution(slow_server):
    server, expected_s = slow_server
    t0 = time.monotonic()
    resp = _post(server, timeout_us=200_000)
    elapsed = time.monotonic() - t0
    fh.assert_error(resp, 504, "timeout")
    assert elapsed < expected_s / 2, f"answered after {elapsed:.2f}s; a full run takes ~{expected_s:.2f}s"
    # The instance is free again: a normal request runs to completion and is correct.
    ok = _post(server)
    assert ok.status_code == 200, ok.text[:300]


def test_client_that_leaves_frees_the_instance(slow_server):
    server, expected_s = slow_server

    def counts():
        st = server.get("/v2/models/slow/stats").json()["model_stats"][0]["inference_stats"]
        return st["success"]["count"], st["fail"]["count"]

    ok0, fail0 = counts()
    header, body = _body()
    sock = socket.create_connection(("127.0.0.1", server.http_port))
    sock.sendall(b"POST /v2/models/slow/infer HTTP/1.1\r\nHost: x\r\nInference-Header-Content-Length: "
                 + str(len(header)).encode() + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    time.sleep(0.3)  # let the execution start
    sock.close()     # the client goes away mid-execution
    # Stopped, the request ends as a failure (cancelled); had it run on, it would end as
    # a success after the full run. Either way one of the counters moves.
    fh.wait_until(lambda: counts() != (ok0, fail0), max(30, 4 * expected_s), "the abandoned request to end")
    ok1, fail1 = counts()
    assert (ok1, fail1) == (ok0, fail0 + 1), "the abandoned execution ran to completion instead of stopping"
    # The instance is free: the next request runs and succeeds.
    resp = _post(server)
    assert resp.status_code == 200, resp.text[:300]


def test_grpc_client_deadline_frees_the_instance(slow_server):
    """A gRPC client whose own deadline passes mid-execution cancels the call; the server
    sees the cancellation and stops the run instead of finishing it for nobody."""
    import grpc
    import grpc_helpers as gh

    server, expected_s = slow_server

    def counts():
        st = server.get("/v2/models/slow/stats").json()["model_stats"][0]["inference_stats"]
        return st["success"]["count"], st["fail"]["count"]

    ok0, fail0 = counts()
    x = np.ones((N, N), np.float32)
    with gh.channel(server, max_message_bytes=8 * N * N) as ch:
        with pytest.raises(grpc.RpcError) as err:
            gh.stub(ch).ModelInfer(gh.infer_request("slow", {"x": x}), timeout=0.3)
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    fh.wait_until(lambda: counts() != (ok0, fail0), max(30, 4 * expected_s), "the abandoned request to end")
    assert counts() == (ok0, fail0 + 1), "the execution ran to completion after the client's deadline"
    resp = _post(server)
    assert resp.status_code == 200, resp.text[:300]
