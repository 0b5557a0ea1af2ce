"""Bodies built to exhaust the server (deep nesting, huge shapes, endless headers) get a
precise error, and the server keeps serving."""

from __future__ import annotations

import socket

import ferry_helpers as fh

PATH = "/v2/models/add_sub/versions/1/infer"


def _raw(server, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=30) as s:
        s.sendall(payload)
        chunks = []
        while True:
            data = s.recv(65536)
            if not data:
                break
            chunks.append(data)
            if b"\r\n\r\n" in b"".join(chunks) and len(b"".join(chunks)) > 64:
                break
    return b"".join(chunks)


def _alive_and_correct(server):
    inputs = fh.make_inputs("add_sub", 1, seed=3)
    resp = server.post(PATH, json=fh.json_request(inputs))
    assert resp.status_code == 200, resp.text
    fh.assert_outputs_match(fh.parse_infer_response(resp)[1], fh.reference(server.repo, "add_sub", 1, inputs))


def test_deeply_nested_data(ferry_factory):
    server = ferry_factory.start(name="hostile")
    body = (b"{\"inputs\":[{\"name\":\"INPUT0\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":"
            + b"[" * 3_000_000 + b"]" * 3_000_000 + b"}]}")
    fh.assert_error(server.post(PATH, data=body), 400, "INPUT0")
    fh.assert_error(server.post(PATH, data=b"[" * 3_000_000), 400)
    fh.assert_error(server.post("/v2/repository/index", data=b"{" * 1_000_000), 400)
    _alive_and_correct(server)


def test_shapes_that_overflow_or_claim_huge_sizes(ferry_server):
    doc = {"inputs": [{"name": "INPUT0", "shape": [2**62, 2**62], "datatype": "FP32", "data": [1]},
                      {"name": "INPUT1", "shape": [1, 16], "datatype": "FP32", "data": [0] * 16}]}
    fh.assert_error(ferry_server.post(PATH, json=doc), 400, "INPUT0")
    doc["inputs"][0] = {"name": "INPUT0", "shape": [2**40, 16], "datatype": "FP32",
                        "parameters": {"binary_data_size": 2**46}}
    fh.assert_error(ferry_server.post(PATH, json=doc), 400, "INPUT0")
    _alive_and_correct(ferry_server)


def test_oversized_headers_close_the_connection_only(ferry_server):
    reply = _raw(ferry_server, b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n")
    # 431 Request Header Fields Too Large (RFC 6585), naming the limit.
    assert reply.startswith(b"HTTP/1.1 431"), reply[:80]
    assert b"the message head exceeds 65536 bytes" in reply, reply[-200:]
    _alive_and_correct(ferry_server)


def test_an_unknown_model_is_404_whatever_the_body(ferry_server):
    # The model name is the first thing wrong: 404 naming it, as for a valid body.
    for body in (b'{"outputs": []}', b"not json", b'{"inputs": [{"name": "x"}]}'):
        resp = ferry_server.post("/v2/models/no_such_model/infer", data=body)
        fh.assert_error(resp, 404, "no_such_model")
    # A known model with the same bad body still gets the body's own error.
    fh.assert_error(ferry_server.post("/v2/models/add_sub/infer", data=b'{"outputs": []}'), 400, "inputs")
    _alive_and_correct(ferry_server)
