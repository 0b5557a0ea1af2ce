"""What is specific to the native gRPC transport (`ferry serve --grpc-transport native`):
HTTP/2 framing edge cases, gRPC header checks, compression and cancellation, against
real clients (grpcio, nghttp from nghttp2-client) and raw sockets for what no client
sends. The services' answers themselves are tested by test_grpc.py, which CI runs on
both transports (native, the default, and grpc++ with FERRY_GRPC_TRANSPORT=grpc++).
"""

from __future__ import annotations

import re
import select
import shutil
import socket
import subprocess
import time

import grpc
import numpy as np
import pytest
from tritonclient.grpc import service_pb2 as pb

import ferry_helpers as fh
import grpc_helpers as gh

NGHTTP = shutil.which("nghttp")
INFER = "/inference.GRPCInferenceService/ModelInfer"
STREAM = "/inference.GRPCInferenceService/ModelStreamInfer"
N = fh.SLOW_MODEL_N


@pytest.fixture(scope="module")
def server(ferry_module_factory):
    return ferry_module_factory.start(args=["--grpc-transport", "native"], name="native")


@pytest.fixture(scope="module")
def slow_server(ferry_module_factory, tmp_path_factory):
    repo = tmp_path_factory.mktemp("slow") / "repo"
    expected_s = fh.write_slow_model(repo)
    return ferry_module_factory.start(repos=repo, args=["--grpc-transport", "native"], name="native-slow"), expected_s


def framed(message: bytes, compressed: bool = False) -> bytes:
    return bytes([1 if compressed else 0]) + len(message).to_bytes(4, "big") + message


def add_sub_request(seed: int = 0, request_id: str = "") -> tuple[pb.ModelInferRequest, dict]:
    inputs = fh.make_inputs("add_sub", 1, seed=seed)
    req = gh.infer_request("add_sub", inputs, "1")
    req.id = request_id
    return req, inputs


def check_add_sub(server, resp: pb.ModelInferResponse, inputs: dict) -> None:
    expected = fh.reference(server.repo, "add_sub", 1, inputs)
    got = gh.response_arrays(resp)
    fh.assert_outputs_match({n: got[n] for n in expected}, expected, list(expected))


def deframe(data: bytes) -> list[bytes]:
    out = []
    while data:
        assert len(data) >= 5, data
        n = int.from_bytes(data[1:5], "big")
        out.append(data[5:5 + n])
        data = data[5 + n:]
    return out


def assert_serves(server) -> None:
    assert server.is_running(), server.describe()
    req, inputs = add_sub_request(seed=5)
    with gh.channel(server) as ch:
        check_add_sub(server, gh.stub(ch).ModelInfer(req, timeout=10), inputs)


# --------------------------------------------------------------------------- raw HTTP/2

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, GOAWAY, WINDOW_UPDATE = 0, 1, 3, 4, 7, 8
END_STREAM, END_HEADERS = 0x1, 0x4


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


def _hpack_int(value: int, prefix_bits: int = 7) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([value])
    out, value = [limit], value - limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    return bytes(out + [value])


def hpack(headers: list[tuple[str, str]]) -> bytes:
    """Literal header fields without indexing, no Huffman: valid HPACK any decoder reads."""
    out = b""
    for name, value in headers:
        out += b"\x00" + _hpack_int(len(name)) + name.encode() + _hpack_int(len(value)) + value.encode()
    return out


def request_headers(server, path: str, extra=()) -> bytes:
    return hpack([(":method", "POST"), (":scheme", "http"), (":path", path),
                  (":authority", f"127.0.0.1:{server.grpc_port}"), ("content-type", "application/grpc"),
                  ("te", "trailers"), *extra])


class RawH2:
    """A client connection that sends whatever bytes a test builds and reads frames back."""

    def __init__(self, server):
        self.sock = socket.create_connection(("127.0.0.1", server.grpc_port), timeout=10)
        self.buf = b""

    def send(self, data: bytes, piece: int | None = None) -> None:
        if piece is None:
            self.sock.sendall(data)
            return
        for i in range(0, len(data), piece):  # separate TCP writes
            self.sock.sendall(data[i:i + piece])
            time.sleep(0.001)

    def start(self) -> None:
        """Preface and SETTINGS (windows large enough for any answer here), then waits for the server's SETTINGS and acknowledges
        them (its larger windows and frame size apply from then on)."""
        big_windows = frame(SETTINGS, 0, 0, (4).to_bytes(2, "big") + (1 << 24).to_bytes(4, "big")) + \
            frame(WINDOW_UPDATE, 0, 0, (1 << 30).to_bytes(4, "big"))
        self.send(PREFACE + big_windows)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if len(self.buf) >= 9 and len(self.buf) >= 9 + int.from_bytes(self.buf[:3], "big"):
                n = int.from_bytes(self.buf[:3], "big")
                kind, flags = self.buf[3], self.buf[4]
                self.buf = self.buf[9 + n:]
                if kind == SETTINGS and not flags & 1:
                    self.sock.sendall(frame(SETTINGS, 1, 0))
                    return
                continue
            self.buf += self.sock.recv(65536)
        raise AssertionError("no SETTINGS from the server")

    def frames(self, until_stream_end: int | None = None, timeout: float = 10):
        """Frames read until `until_stream_end` ends (END_STREAM or RST_STREAM), or the
        connection closes. Answers the server's SETTINGS."""
        got = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            while len(self.buf) >= 9:
                n = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) < 9 + n:
                    break
                kind, flags, stream = self.buf[3], self.buf[4], int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
                payload, self.buf = self.buf[9:9 + n], self.buf[9 + n:]
                got.append((kind, flags, stream, payload))
                if kind == SETTINGS and not flags & 1:
                    self.sock.sendall(frame(SETTINGS, 1, 0))
                if stream == until_stream_end and (kind == RST_STREAM or flags & END_STREAM):
                    return got
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                return got + [("closed",)]
            self.buf += chunk
        return got

    def close(self) -> None:
        self.sock.close()


def data_of(frames, stream: int) -> bytes:
    return b"".join(f[3] for f in frames if f[0] == DATA and f[2] == stream)


# --------------------------------------------------------------------------- tests


def test_served_by_the_native_transport(server):
    assert re.search(r"msg=listening server=grpc transport=native", server.log_tail(200)), server.log_tail(40)
    assert_serves(server)


def test_message_split_across_many_data_frames_and_writes(server):
    """One request cut into 7-byte DATA frames (the 5-byte prefix split too), sent in
    13-byte TCP writes; the answer is whole and right."""
    req, inputs = add_sub_request(seed=1, request_id="split")
    body = framed(req.SerializeToString())
    c = RawH2(server)
    try:
        c.start()
        out = frame(HEADERS, END_HEADERS, 1, request_headers(server, INFER))
        for i in range(0, len(body), 7):
            last = i + 7 >= len(body)
            out += frame(DATA, END_STREAM if last else 0, 1, body[i:i + 7])
        c.send(out, piece=13)
        frames = c.frames(until_stream_end=1)
        messages = deframe(data_of(frames, 1))
        assert len(messages) == 1, frames
        resp = pb.ModelInferResponse.FromString(messages[0])
        assert resp.id == "split"
        check_add_sub(server, resp, inputs)
    finally:
        c.close()


def test_several_messages_in_one_data_frame(server):
    """Three stream requests in one DATA frame get three answers, in order."""
    reqs = [add_sub_request(seed=10 + i, request_id=f"m{i}") for i in range(3)]
    body = b"".join(framed(r.SerializeToString()) for r, _ in reqs)
    c = RawH2(server)
    try:
        c.start()
        c.send(frame(HEADERS, END_HEADERS, 1, request_headers(server, STREAM)) + frame(DATA, END_STREAM, 1, body))
        frames = c.frames(until_stream_end=1)
        answers = [pb.ModelStreamInferResponse.FromString(m) for m in deframe(data_of(frames, 1))]
        assert [a.infer_response.id for a in answers] == ["m0", "m1", "m2"]
        for a, (_, inputs) in zip(answers, reqs):
            assert a.error_message == ""
            check_add_sub(server, a.infer_response, inputs)
    finally:
        c.close()


def test_large_message_from_grpcio(server):
    """A 3 MB request (grpcio splits it into many DATA frames) and its echoed id."""
    req, inputs = add_sub_request(seed=2, request_id="x" * (3 << 20))
    with gh.channel(server, max_message_bytes=8 << 20) as ch:
        resp = gh.stub(ch).ModelInfer(req, timeout=20)
    assert resp.id == req.id
    check_add_sub(server, resp, inputs)


@pytest.mark.parametrize("compression", [grpc.Compression.Gzip, grpc.Compression.Deflate])
def test_compressed_requests(server, compression):
    req, inputs = add_sub_request(seed=3)
    with grpc.insecure_channel(fh.grpc_url(server), compression=compression) as ch:
        check_add_sub(server, gh.stub(ch).ModelInfer(req, timeout=10), inputs)


def test_metadata_reaches_the_request_and_deadline_header_parsed(server):
    """Custom metadata passes through (grpcio sends user-agent and our key); a generous
    grpc-timeout is honoured without cutting the call."""
    req, inputs = add_sub_request(seed=4)
    with gh.channel(server) as ch:
        resp, call = gh.stub(ch).ModelInfer.with_call(req, timeout=30, metadata=[("x-ferry-test", "yes")])
    check_add_sub(server, resp, inputs)
    assert call.code() == grpc.StatusCode.OK


def _nghttp(server, path: str, body: bytes, headers, tmp_path) -> list[tuple[str, str]]:
    if NGHTTP is None:
        pytest.fail("nghttp not found (apt-get install -y nghttp2-client; scripts/setup.sh installs it)")
    f = tmp_path / "body.bin"
    f.write_bytes(body)
    cmd = [NGHTTP, "-v", "-d", str(f)] + [a for h in headers for a in ("-H", h)]
    out = subprocess.run(cmd + [f"http://127.0.0.1:{server.grpc_port}{path}"], capture_output=True, timeout=20)
    text = out.stdout.decode("latin-1")
    return re.findall(r"recv \(stream_id=\d+\) ([^:\s][^:]*|:[a-z]+): (.*)", text)


def _header(received, name):
    values = [v.strip() for n, v in received if n == name]
    assert values, f"no {name} in {received}"
    return values[-1]


def test_bad_content_type_is_http_415(server, tmp_path):
    req, _ = add_sub_request()
    got = _nghttp(server, INFER, framed(req.SerializeToString()), ["content-type: text/plain"], tmp_path)
    assert _header(got, ":status") == "415"
    assert_serves(server)


def test_missing_te_is_served(server, tmp_path):
    """grpc-go and grpc++ clients always send te: trailers; one that does not is still
    answered (the header carries nothing the server needs)."""
    req, inputs = add_sub_request()
    got = _nghttp(server, INFER, framed(req.SerializeToString()), ["content-type: application/grpc"], tmp_path)
    assert _header(got, ":status") == "200"
    assert _header(got, "grpc-status") == "0"


def test_two_messages_on_a_unary_call(server, tmp_path):
    req, _ = add_sub_request()
    body = framed(req.SerializeToString()) * 2
    got = _nghttp(server, INFER, body, ["content-type: application/grpc", "te: trailers"], tmp_path)
    assert _header(got, "grpc-status") == "12"
    assert "second request message" in _header(got, "grpc-message")


def test_oversized_prefix_is_refused_before_the_body(server, tmp_path):
    """A prefix that announces 100 MB (over the 64 MiB default) is refused at once."""
    body = b"\x00" + (100 << 20).to_bytes(4, "big") + b"abc"
    got = _nghttp(server, INFER, body, ["content-type: application/grpc", "te: trailers"], tmp_path)
    assert _header(got, "grpc-status") == "8"
    assert "104857600" in _header(got, "grpc-message")
    assert_serves(server)


def test_bad_grpc_timeout_and_encoding(server, tmp_path):
    req, _ = add_sub_request()
    body = framed(req.SerializeToString())
    got = _nghttp(server, INFER, body, ["content-type: application/grpc", "grpc-timeout: 1x"], tmp_path)
    assert _header(got, "grpc-status") == "3"
    assert "grpc-timeout" in _header(got, "grpc-message") and "1x" in _header(got, "grpc-message")
    got = _nghttp(server, INFER, body, ["content-type: application/grpc", "grpc-encoding: br"], tmp_path)
    assert _header(got, "grpc-status") == "12"
    assert "'br'" in _header(got, "grpc-message")
    # A compressed flag on an identity call is a protocol error.
    got = _nghttp(server, INFER, framed(b"x", compressed=True), ["content-type: application/grpc"], tmp_path)
    assert _header(got, "grpc-status") == "13"


def test_unknown_method_percent_encodes_its_message(server, tmp_path):
    got = _nghttp(server, "/no.Such/Method%C3%A9", b"", ["content-type: application/grpc"], tmp_path)
    assert _header(got, "grpc-status") == "12"
    msg = _header(got, "grpc-message")
    assert msg.startswith("unknown method '/no.Such/Method"), msg
    assert "%25C3%25A9" in msg, msg  # '%' itself is encoded


def test_garbage_preface_closes_only_that_connection(server):
    c = RawH2(server)
    try:
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"\x00" * 64)
        frames = c.frames(timeout=10)
        assert frames and frames[-1] == ("closed",), frames
    finally:
        c.close()
    assert_serves(server)


@pytest.mark.parametrize("ending", ["connection closed", "stream ended"])
def test_request_cut_inside_a_message(server, ending):
    """The client closes the connection, or ends the stream, 20 bytes into a message:
    an ended stream gets its status (and no message); either way the server serves on."""
    req, _ = add_sub_request()
    body = framed(req.SerializeToString())
    c = RawH2(server)
    try:
        c.start()
        end = END_STREAM if ending == "stream ended" else 0
        c.send(frame(HEADERS, END_HEADERS, 1, request_headers(server, INFER)) + frame(DATA, end, 1, body[:20]))
        if end:
            frames = c.frames(until_stream_end=1)
            assert any(f[0] == HEADERS and f[2] == 1 and f[1] & END_STREAM for f in frames), frames
            assert data_of(frames, 1) == b""
        else:
            time.sleep(0.1)
    finally:
        c.close()
    assert_serves(server)


def _slow_counts(server):
    st = server.get("/v2/models/slow/stats").json()["model_stats"][0]["inference_stats"]
    return st["success"]["count"], st["fail"]["count"]


def _slow_request() -> pb.ModelInferRequest:
    return gh.infer_request("slow", {"x": np.ones((N, N), np.float32)})


def _assert_abandoned_run_stopped(server, expected_s, before) -> None:
    fh.wait_until(lambda: _slow_counts(server) != before, max(30, 4 * expected_s), "the abandoned request to end")
    assert _slow_counts(server) == (before[0], before[1] + 1), "the execution ran on for a client that left"


def test_rst_stream_mid_call_stops_the_execution(slow_server):
    """grpcio's cancel sends RST_STREAM(CANCEL): the running execution stops."""
    server, expected_s = slow_server
    before = _slow_counts(server)
    with gh.channel(server, max_message_bytes=8 * N * N) as ch:
        fut = gh.stub(ch).ModelInfer.future(_slow_request(), timeout=60)
        time.sleep(0.4)
        assert fut.cancel()
        _assert_abandoned_run_stopped(server, expected_s, before)


def _raw_slow_call(server) -> RawH2:
    c = RawH2(server)
    c.start()
    body = framed(_slow_request().SerializeToString())
    out = frame(HEADERS, END_HEADERS, 1, request_headers(server, INFER))
    for i in range(0, len(body), 1 << 20):  # within the server's 1 MiB frame size
        out += frame(DATA, END_STREAM if i + (1 << 20) >= len(body) else 0, 1, body[i:i + (1 << 20)])
    c.send(out)
    return c


def test_connection_closed_mid_call_stops_the_execution(slow_server):
    server, expected_s = slow_server
    # The same bytes on a connection that stays open are answered in full.
    before = _slow_counts(server)
    c = _raw_slow_call(server)
    try:
        frames = c.frames(until_stream_end=1, timeout=max(30, 4 * expected_s))
        resp = pb.ModelInferResponse.FromString(deframe(data_of(frames, 1))[0])
        assert [o.name for o in resp.outputs] == ["y"]
    finally:
        c.close()
    assert _slow_counts(server) == (before[0] + 1, before[1])
    # Closed mid-execution, the run stops.
    before = _slow_counts(server)
    c = _raw_slow_call(server)
    time.sleep(0.4)
    c.close()
    _assert_abandoned_run_stopped(server, expected_s, before)


def test_server_enforces_grpc_timeout(slow_server, tmp_path):
    """The server's own deadline: DEADLINE_EXCEEDED at grpc-timeout, whatever the client
    does, and a shorter deadline that arrives second on a connection still fires first."""
    server, expected_s = slow_server
    body = framed(_slow_request().SerializeToString())
    t0 = time.monotonic()
    got = _nghttp(server, INFER, body, ["content-type: application/grpc", "grpc-timeout: 300m"], tmp_path)
    assert _header(got, "grpc-status") == "4", got
    assert time.monotonic() - t0 < expected_s, "the deadline did not cut the call short"

    c = RawH2(server)
    try:
        c.start()
        out = b""
        for stream, timeout in ((1, "20S"), (3, "200m")):
            out += frame(HEADERS, END_HEADERS, stream, request_headers(server, INFER, [("grpc-timeout", timeout)]))
            for i in range(0, len(body), 1 << 20):
                out += frame(DATA, END_STREAM if i + (1 << 20) >= len(body) else 0, stream, body[i:i + (1 << 20)])
        t0 = time.monotonic()
        c.send(out)
        frames = c.frames(until_stream_end=3, timeout=10)
        took = time.monotonic() - t0
        assert any(f[0] == HEADERS and f[2] == 3 and f[1] & END_STREAM for f in frames), frames
        assert data_of(frames, 3) == b""
        assert not any(f[2] == 1 and f[0] in (HEADERS, DATA) for f in frames), "stream 1 answered first"
        assert took < expected_s, f"stream 3's 200 ms deadline fired after {took:.2f}s"
    finally:
        c.close()


def test_stream_larger_than_the_flow_control_window(server):
    """300 stream messages of 64 KiB (19 MiB, more than the 16 MiB stream window the
    server grants): the server gives the window back as it works (and holds it while a
    stream has 256 requests in flight), so all are answered, in order."""
    reqs = [add_sub_request(seed=i % 7, request_id=f"{i:04d}" + "p" * (64 << 10))[0] for i in range(300)]
    with gh.channel(server, max_message_bytes=1 << 20) as ch:
        answers = list(gh.stub(ch).ModelStreamInfer(iter(reqs), timeout=60))
    assert [a.infer_response.id[:4] for a in answers] == [f"{i:04d}" for i in range(300)]
    assert all(a.error_message == "" for a in answers)


def flood_without_reading(server, budget: int = 320 << 20) -> tuple[RawH2, int]:
    """A client that keeps to HTTP/2 flow control but never takes its answers (it never
    sends a WINDOW_UPDATE, so the server can send it 64 KiB in all) sends 64 KiB add_sub
    stream requests, each answered with its 64 KiB id, round-robin on four streams, until
    it has sent `budget` bytes or the server's windows have held it for 3 s. Returns the
    connection (still open: the caller closes it) and the bytes sent."""
    c = RawH2(server)
    streams = [1, 3, 5, 7]
    conn_window, stream_windows, initial = 65535, {s: 65535 for s in streams}, 65535
    c.send(PREFACE + frame(SETTINGS, 0, 0))

    def take_frames() -> None:
        """Reads what the server sent: its SETTINGS (acknowledged) and WINDOW_UPDATEs widen
        the send windows; DATA is left unacknowledged."""
        nonlocal conn_window, initial
        if select.select([c.sock], [], [], 0.05)[0]:
            chunk = c.sock.recv(1 << 20)
            assert chunk, "the server closed the connection"
            c.buf += chunk
        while len(c.buf) >= 9 and len(c.buf) >= 9 + int.from_bytes(c.buf[:3], "big"):
            n = int.from_bytes(c.buf[:3], "big")
            kind, flags, stream = c.buf[3], c.buf[4], int.from_bytes(c.buf[5:9], "big") & 0x7FFFFFFF
            payload, c.buf = c.buf[9:9 + n], c.buf[9 + n:]
            if kind == SETTINGS and not flags & 1:
                for at in range(0, len(payload), 6):
                    if int.from_bytes(payload[at:at + 2], "big") == 4:  # INITIAL_WINDOW_SIZE
                        value = int.from_bytes(payload[at + 2:at + 6], "big")
                        for s in stream_windows:
                            stream_windows[s] += value - initial
                        initial = value
                c.sock.sendall(frame(SETTINGS, 1, 0))
            elif kind == WINDOW_UPDATE:
                grant = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
                if stream == 0:
                    conn_window += grant
                elif stream in stream_windows:
                    stream_windows[stream] += grant
            elif kind in (RST_STREAM, GOAWAY):
                raise AssertionError(f"the server ended stream {stream} (frame type {kind})")

    deadline = time.monotonic() + 10
    while initial == 65535:  # the server's SETTINGS: 16 MiB stream windows, 1 MiB frames
        assert time.monotonic() < deadline, "no SETTINGS from the server"
        take_frames()
    c.sock.sendall(b"".join(frame(HEADERS, END_HEADERS, s, request_headers(server, STREAM)) for s in streams))
    req, _ = add_sub_request(seed=1, request_id="r" * (64 << 10))
    message = framed(req.SerializeToString())
    sent, turn, last_progress = 0, 0, time.monotonic()
    while sent < budget and time.monotonic() - last_progress < 3:
        s = streams[turn % len(streams)]
        if conn_window >= len(message) and stream_windows[s] >= len(message):
            c.sock.sendall(frame(DATA, 0, s, message))
            conn_window -= len(message)
            stream_windows[s] -= len(message)
            sent += len(message)
            last_progress = time.monotonic()
            turn += 1
        elif all(stream_windows[x] < len(message) for x in streams) or conn_window < len(message):
            take_frames()
        else:
            turn += 1
    return c, sent


def test_client_that_never_reads_is_stopped_by_flow_control(server):
    """flood_without_reading: the server holds the windows of streams and connections
    whose answers pile up, so the client is stopped after a bounded amount, the server's
    memory stays bounded, and other clients are served meanwhile. (Without the bound the
    server took all 320 MiB.)"""
    rss_before = fh.vm_rss_bytes(server.proc.pid)
    c, sent = flood_without_reading(server)
    try:
        assert sent < 128 << 20, f"the server took {sent >> 20} MiB from a client that never reads"
        grown = fh.vm_rss_bytes(server.proc.pid) - rss_before
        assert grown < fh.rss_growth_bound(192 << 20), f"server RSS grew {grown >> 20} MiB for a client that never reads"
        assert_serves(server)
    finally:
        c.close()
    assert_serves(server)
