"""Edge cases of ferry's HTTP frontend, sent by hand with `requests` / `http.client`.

Each rejected request must get the right status code AND a `{"error": "..."}` body
whose message names the offending thing (input name, output name, model, ...).
The last test checks that the server survived the whole battery.
"""

from __future__ import annotations

import gzip
import http.client
import json
import zlib

import numpy as np
import pytest

import ferry_helpers as fh
from ferry_helpers import IHCL, assert_error

ADD_SUB_V1 = "/v2/models/add_sub/versions/1/infer"


@pytest.fixture(scope="module")
def srv(ferry_server):
    return ferry_server


def add_sub_inputs(batch=1, seed=0):
    return fh.make_inputs("add_sub", batch, seed)


def add_sub_body(batch=1, seed=0, **kw):
    return fh.json_request(add_sub_inputs(batch, seed), **kw)


def post_json(srv, path, doc, **kw):
    return srv.post(path, data=json.dumps(doc).encode(), **kw)


def check_add_sub(srv, resp, inputs, version=1):
    assert resp.status_code == 200, f"{resp.status_code}: {resp.content[:500]!r}"
    doc, outputs = fh.parse_infer_response(resp)
    assert doc["model_name"] == "add_sub"
    fh.assert_outputs_match(outputs, fh.reference(srv.repo, "add_sub", version, inputs))
    return doc


# --------------------------------------------------------------------------- malformed requests


def test_invalid_json(srv):
    resp = srv.post(ADD_SUB_V1, data=b'{"inputs": [{"name": "INPUT0", ')
    assert_error(resp, 400)


def test_json_not_an_object(srv):
    resp = srv.post(ADD_SUB_V1, data=b'[1, 2, 3]')
    assert_error(resp, 400)


def test_missing_inputs_field(srv):
    resp = post_json(srv, ADD_SUB_V1, {"outputs": [{"name": "OUTPUT0"}]})
    assert_error(resp, 400, "inputs")


def test_unknown_datatype(srv):
    doc = add_sub_body()
    doc["inputs"][0]["datatype"] = "FP33"
    assert_error(post_json(srv, ADD_SUB_V1, doc), 400, ("FP33", "datatype"))


def test_shape_data_length_mismatch(srv):
    doc = add_sub_body()
    doc["inputs"][0]["data"] = doc["inputs"][0]["data"][:-1]  # 15 values for shape [1, 16]
    assert_error(post_json(srv, ADD_SUB_V1, doc), 400, "INPUT0")


def test_shape_not_matching_model(srv):
    doc = add_sub_body()
    doc["inputs"][1]["shape"] = [1, 8, 2]
    assert_error(post_json(srv, ADD_SUB_V1, doc), 400, "INPUT1")


def test_negative_shape(srv):
    doc = add_sub_body()
    doc["inputs"][0]["shape"] = [-1, 16]
    assert_error(post_json(srv, ADD_SUB_V1, doc), 400, "INPUT0")


def test_batch_over_max_batch_size(srv):
    doc = add_sub_body(batch=9)  # max_batch_size is 8
    assert_error(post_json(srv, ADD_SUB_V1, doc), 400, ("add_sub", "batch"))


def test_inconsistent_batch_sizes(srv):
    inputs = add_sub_inputs(batch=2)
    inputs["INPUT1"] = inputs["INPUT1"][:1]
    assert_error(post_json(srv, ADD_SUB_V1, fh.json_request(inputs)), 400, ("INPUT0", "INPUT1", "batch"))


def test_missing_input(srv):
    doc = add_sub_body()
    doc["inputs"] = [i for i in doc["inputs"] if i["name"] != "INPUT1"]
    assert_error(post_json(srv, ADD_SUB_V1, doc), 400, "INPUT1")


def test_extra_unknown_input(srv):
    doc = add_sub_body()
    extra = dict(doc["inputs"][0], name="INPUT9")
    doc["inputs"].append(extra)
    assert_error(post_json(srv, ADD_SUB_V1, doc), 400, "INPUT9")


def test_duplicate_input(srv):
    doc = add_sub_body()
    doc["inputs"].append(dict(doc["inputs"][0]))
    assert_error(post_json(srv, ADD_SUB_V1, doc), 400, "INPUT0")


def test_unknown_requested_output(srv):
    doc = add_sub_body(outputs=["OUTPUT0", "OUTPUT7"])
    assert_error(post_json(srv, ADD_SUB_V1, doc), 400, "OUTPUT7")


def test_wrong_datatype_for_input(srv):
    doc = add_sub_body()
    doc["inputs"][0]["datatype"] = "INT32"
    doc["inputs"][0]["data"] = list(range(16))
    assert_error(post_json(srv, ADD_SUB_V1, doc), 400, "INPUT0")


def test_wrong_json_element_kind(srv):
    doc = add_sub_body()
    doc["inputs"][1]["data"] = ["x"] * 16
    assert_error(post_json(srv, ADD_SUB_V1, doc), 400, "INPUT1")


def test_int_input_rejects_fractional_json(srv):
    doc = fh.json_request(fh.make_inputs("int_ops", 1))
    doc["inputs"][0]["data"] = [1.5, 2, 3, 4]
    assert_error(post_json(srv, "/v2/models/int_ops/infer", doc), 400, "X")


def test_fp16_json_data_rejected(srv):
    doc = add_sub_body()
    doc["inputs"][0]["datatype"] = "FP16"
    assert_error(post_json(srv, ADD_SUB_V1, doc), 400, ("INPUT0", "FP16"))


def test_bytes_input_against_fp32_model(srv):
    doc = add_sub_body()
    doc["inputs"][0]["datatype"] = "BYTES"
    doc["inputs"][0]["data"] = ["abc"] * 16
    assert_error(post_json(srv, ADD_SUB_V1, doc), 400, "INPUT0")


def test_input_with_two_data_sources(srv):
    doc = add_sub_body()
    doc["inputs"][0]["parameters"] = {"binary_data_size": 64}
    resp = srv.post(ADD_SUB_V1, data=json.dumps(doc).encode() + b"\0" * 64,
                    headers={IHCL: str(len(json.dumps(doc).encode()))})
    assert_error(resp, 400, "INPUT0")


# --------------------------------------------------------------------------- binary extension errors


def test_binary_data_size_larger_than_tail(srv):
    body, headers = fh.binary_request(add_sub_inputs())
    resp = srv.post(ADD_SUB_V1, data=body[:-28], headers=headers)  # INPUT1 is 28 bytes short
    assert_error(resp, 400, ("INPUT1", "binary_data_size"))


def test_binary_tail_with_extra_bytes(srv):
    body, headers = fh.binary_request(add_sub_inputs())
    resp = srv.post(ADD_SUB_V1, data=body + b"\0" * 8, headers=headers)
    assert_error(resp, 400)


def test_header_length_larger_than_body(srv):
    body, headers = fh.binary_request(add_sub_inputs())
    headers[IHCL] = str(len(body) + 10)
    resp = srv.post(ADD_SUB_V1, data=body, headers=headers)
    msg = assert_error(resp, 400)
    assert "inference-header-content-length" in msg.lower(), msg


def test_header_length_not_a_number(srv):
    body, headers = fh.binary_request(add_sub_inputs())
    headers[IHCL] = "abc"
    msg = assert_error(srv.post(ADD_SUB_V1, data=body, headers=headers), 400)
    assert "inference-header-content-length" in msg.lower(), msg


def test_binary_tail_without_header_length(srv):
    body, _ = fh.binary_request(add_sub_inputs())
    assert_error(srv.post(ADD_SUB_V1, data=body), 400)


# --------------------------------------------------------------------------- routing


def test_unknown_model(srv):
    resp = post_json(srv, "/v2/models/no_such_model/infer", add_sub_body())
    assert_error(resp, 404, "no_such_model")
    assert_error(srv.get("/v2/models/no_such_model"), 404, "no_such_model")
    assert srv.get("/v2/models/no_such_model/ready").status_code != 200


def test_unknown_version(srv):
    resp = post_json(srv, "/v2/models/add_sub/versions/7/infer", add_sub_body())
    assert_error(resp, 404, "add_sub", "7")
    assert srv.get("/v2/models/add_sub/versions/7/ready").status_code != 200


def test_non_numeric_version(srv):
    resp = post_json(srv, "/v2/models/add_sub/versions/abc/infer", add_sub_body())
    assert_error(resp, (400, 404))


def test_unknown_paths(srv):
    for path in ("/v2/nope", "/nothing", "/v2/models/add_sub/whatever", "/v3/health/live"):
        assert_error(srv.get(path), 404)


def test_wrong_method(srv):
    assert_error(srv.get(ADD_SUB_V1), 405)
    assert_error(srv.get("/v2/models/add_sub/infer"), 405)
    assert_error(srv.post("/v2/health/live"), 405)


def test_health(srv):
    assert srv.get("/v2/health/live").status_code == 200
    assert srv.get("/v2/health/ready").status_code == 200
    assert srv.get("/v2/models/add_sub/ready").status_code == 200
    assert srv.get("/v2/models/add_sub/versions/2/ready").status_code == 200


def test_server_metadata_with_and_without_trailing_slash(srv):
    for path in ("/v2", "/v2/"):
        resp = srv.get(path)
        assert resp.status_code == 200, path
        doc = resp.json()
        assert doc["name"] and doc["version"] and isinstance(doc["extensions"], list)


def test_percent_encoded_model_name(srv):
    assert srv.get("/v2/models/add%5Fsub/ready").status_code == 200
    resp = srv.get("/v2/models/add%5Fsub")
    assert resp.status_code == 200 and resp.json()["name"] == "add_sub"
    inputs = add_sub_inputs(seed=21)
    check_add_sub(srv, post_json(srv, "/v2/models/add%5Fsub/versions/1/infer", fh.json_request(inputs)), inputs)


def test_query_string_ignored(srv):
    assert srv.get("/v2/health/live?foo=1").status_code == 200
    assert srv.get("/v2/health/ready?test_1=1&test_2=2").status_code == 200
    inputs = add_sub_inputs(seed=22)
    check_add_sub(srv, post_json(srv, ADD_SUB_V1 + "?foo=1", fh.json_request(inputs)), inputs)


# --------------------------------------------------------------------------- successful requests


def test_no_content_type_required(srv):
    inputs = add_sub_inputs(seed=23)
    resp = srv.post(ADD_SUB_V1, data=json.dumps(fh.json_request(inputs)).encode())
    assert "Content-Type" not in resp.request.headers
    check_add_sub(srv, resp, inputs)


def test_json_response_headers(srv):
    inputs = add_sub_inputs(batch=2, seed=24)
    resp = srv.post(ADD_SUB_V1, json=fh.json_request(inputs, request_id="r-1"))
    doc = check_add_sub(srv, resp, inputs)
    assert resp.headers["Content-Type"].split(";")[0].strip() == "application/json"
    assert IHCL not in resp.headers
    assert doc["id"] == "r-1"
    assert doc["model_version"] == "1"
    for out in doc["outputs"]:
        assert "data" in out and isinstance(out["data"], list)
        assert out["datatype"] == "FP32" and out["shape"] == [2, 16]


def test_nested_and_flat_data_give_same_outputs(srv):
    inputs = add_sub_inputs(batch=2, seed=25)
    flat = srv.post(ADD_SUB_V1, json=fh.json_request(inputs, nested=False))
    nested = srv.post(ADD_SUB_V1, json=fh.json_request(inputs, nested=True))
    _, out_flat = fh.parse_infer_response(flat)
    _, out_nested = fh.parse_infer_response(nested)
    check_add_sub(srv, nested, inputs)
    for name in out_flat:
        np.testing.assert_array_equal(out_flat[name], out_nested[name])


def test_binary_response_located_by_binary_data_size(srv):
    inputs = add_sub_inputs(batch=3, seed=26)
    doc = fh.json_request(inputs)
    doc["outputs"] = [{"name": "OUTPUT1", "parameters": {"binary_data": True}},
                      {"name": "OUTPUT0", "parameters": {"binary_data": True}}]
    resp = srv.post(ADD_SUB_V1, json=doc)
    assert resp.status_code == 200, resp.content[:300]
    assert IHCL in resp.headers
    header_len = int(resp.headers[IHCL])
    head = json.loads(resp.content[:header_len])
    sizes = [o["parameters"]["binary_data_size"] for o in head["outputs"]]
    assert sizes == [3 * 16 * 4, 3 * 16 * 4]
    assert len(resp.content) == header_len + sum(sizes)
    check_add_sub(srv, resp, inputs)


def test_request_level_binary_data_output(srv):
    inputs = fh.make_inputs("int_ops", 2, seed=27)
    body, headers = fh.binary_request(inputs, parameters={"binary_data_output": True})
    resp = srv.post("/v2/models/int_ops/infer", data=body, headers=headers)
    assert resp.status_code == 200, resp.content[:300]
    assert IHCL in resp.headers
    doc, outputs = fh.parse_infer_response(resp)
    assert all("binary_data_size" in o["parameters"] for o in doc["outputs"])
    fh.assert_outputs_match(outputs, fh.reference(srv.repo, "int_ops", 1, inputs))


def test_mixed_json_and_binary_inputs_and_outputs(srv):
    inputs = add_sub_inputs(batch=2, seed=28)
    body, headers = fh.binary_request(inputs, binary_inputs=["INPUT1"],
                                      outputs={"OUTPUT0": False, "OUTPUT1": True})
    resp = srv.post(ADD_SUB_V1, data=body, headers=headers)
    doc = check_add_sub(srv, resp, inputs)
    by_name = {o["name"]: o for o in doc["outputs"]}
    assert "data" in by_name["OUTPUT0"]
    assert by_name["OUTPUT1"]["parameters"]["binary_data_size"] == 2 * 16 * 4


def test_bool_output_as_json(srv):
    inputs = fh.make_inputs("int_ops", 1, seed=29)
    resp = srv.post("/v2/models/int_ops/infer", json=fh.json_request(inputs, outputs=["GREATER"]))
    assert resp.status_code == 200, resp.content[:300]
    out = resp.json()["outputs"][0]
    assert out["datatype"] == "BOOL" and all(isinstance(v, bool) for v in out["data"])
    expected = fh.reference(srv.repo, "int_ops", 1, inputs)["GREATER"]
    assert out["data"] == expected.reshape(-1).tolist()


def _raw_post(srv, path, body, headers):
    conn = http.client.HTTPConnection("127.0.0.1", srv.http_port, timeout=fh.HTTP_TIMEOUT_S)
    try:
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_response_really_compressed(srv, encoding):
    """Accept-Encoding is honoured: the raw body is compressed, IHCL counts uncompressed JSON."""
    inputs = add_sub_inputs(batch=4, seed=30)
    body, headers = fh.binary_request(inputs, outputs={"OUTPUT0": True, "OUTPUT1": False})
    headers["Accept-Encoding"] = encoding
    status, resp_headers, raw = _raw_post(srv, ADD_SUB_V1, body, headers)
    assert status == 200, raw[:300]
    assert resp_headers.get("content-encoding") == encoding
    plain = gzip.decompress(raw) if encoding == "gzip" else zlib.decompress(raw)
    _, outputs = fh.parse_infer_body(plain, int(resp_headers[IHCL.lower()]))
    fh.assert_outputs_match(outputs, fh.reference(srv.repo, "add_sub", 1, inputs))


def test_unsupported_content_encoding(srv):
    body = json.dumps(add_sub_body()).encode()
    resp = srv.post(ADD_SUB_V1, data=body, headers={"Content-Encoding": "br"})
    assert_error(resp, (400, 415, 501))


def test_corrupt_gzip_body(srv):
    resp = srv.post(ADD_SUB_V1, data=b"\x1f\x8b\x08\x00garbage", headers={"Content-Encoding": "gzip"})
    assert_error(resp, 400)


def test_keep_alive_survives_error_responses(srv):
    """Errors sent before the body is used must not leave its bytes to spoil the next request."""
    inputs = add_sub_inputs(batch=2, seed=32)
    good = json.dumps(fh.json_request(inputs)).encode()
    bad_shape = add_sub_body()
    bad_shape["inputs"][0]["shape"] = [1, 15]
    bad_requests = [
        ("POST", "/v2/models/no_such_model/infer", good),
        ("POST", "/v2/models/add_sub/versions/7/infer", good),
        ("POST", ADD_SUB_V1, json.dumps(bad_shape).encode()),
        ("POST", "/v2/health/live", good),
        ("POST", "/v2/nope", good),
    ]
    conn = http.client.HTTPConnection("127.0.0.1", srv.http_port, timeout=fh.HTTP_TIMEOUT_S)
    try:
        for method, path, body in bad_requests:
            conn.request(method, path, body=body)
            resp = conn.getresponse()
            payload = resp.read()
            assert resp.status >= 400, (path, resp.status, payload[:200])
            # http.client reconnects by itself if the server chose to close the connection
            conn.request("POST", ADD_SUB_V1, body=good)
            resp = conn.getresponse()
            payload = resp.read()
            assert resp.status == 200, (f"request after an error on {path}", resp.status, payload[:300])
            hl = resp.getheader(IHCL)
            _, outputs = fh.parse_infer_body(payload, int(hl) if hl else None)
            fh.assert_outputs_match(outputs, fh.reference(srv.repo, "add_sub", 1, inputs))
    finally:
        conn.close()


# --------------------------------------------------------------------------- size limit


def test_body_over_max_input_size(ferry_factory):
    server = ferry_factory.start(args=["--http-max-input-size", "1024"], name="maxinput")
    # integer-valued floats keep the JSON short
    inputs = {k: np.floor(v * 10).astype(np.float32) for k, v in add_sub_inputs(seed=31).items()}
    small = json.dumps(fh.json_request(inputs)).encode()
    assert len(small) < 1024
    ok = server.post(ADD_SUB_V1, data=small)
    assert ok.status_code == 200, ok.content[:300]
    fh.assert_outputs_match(fh.parse_infer_response(ok)[1], fh.reference(server.repo, "add_sub", 1, inputs))

    big = json.dumps(fh.json_request(inputs, request_id="x" * 4096)).encode()
    assert len(big) >= 4096
    assert_error(server.post(ADD_SUB_V1, data=big), 413)

    # a small compressed body that inflates past the limit is refused as well
    bomb = gzip.compress(big)
    assert len(bomb) < 1024
    resp = server.post(ADD_SUB_V1, data=bomb, headers={"Content-Encoding": "gzip"})
    assert_error(resp, (400, 413))

    assert server.get("/v2/health/live").status_code == 200
    assert server.post(ADD_SUB_V1, data=small).status_code == 200


# --------------------------------------------------------------------------- survival (keep last)


def test_zz_server_survived_the_battery(srv):
    assert srv.proc.poll() is None, "ferry exited during the raw HTTP tests"
    assert srv.get("/v2/health/live").status_code == 200
    assert srv.get("/v2/health/ready").status_code == 200
    inputs = add_sub_inputs(batch=3, seed=99)
    check_add_sub(srv, srv.post(ADD_SUB_V1, json=fh.json_request(inputs)), inputs)
    body, headers = fh.binary_request(inputs, outputs={"OUTPUT0": True, "OUTPUT1": True})
    check_add_sub(srv, srv.post("/v2/models/add_sub/versions/2/infer", data=body, headers=headers), inputs, version=2)


def test_a_configless_onnx_model_takes_any_batch_size_up_to_the_server_default(ferry_factory, model_repo):
    # mlp_classifier has no config: rows up to --default-max-batch-size (1024) pass.
    srv = ferry_factory.start(repos=model_repo, name="default-mbs")
    rows = [[5.1, 3.5, 1.4, 0.2]] * 5
    ok = srv.post("/v2/models/mlp_classifier/infer",
                  json={"inputs": [{"name": "input", "shape": [5, 4], "datatype": "FP32", "data": rows}]})
    assert ok.status_code == 200 and ok.json()["outputs"][0]["shape"][0] == 5, ok.text
    assert srv.get("/v2/models/mlp_classifier/config").json()["max_batch_size"] == 1024
    # The flag sets it; 0 keeps the runtime's own (4 for ONNX Runtime, as Triton).
    small = ferry_factory.start(repos=model_repo, args=["--default-max-batch-size", "0"], name="runtime-mbs")
    refused = small.post("/v2/models/mlp_classifier/infer",
                         json={"inputs": [{"name": "input", "shape": [5, 4], "datatype": "FP32", "data": rows}]})
    fh.assert_error(refused, 400, "batch size 5 is outside 1..4")


def test_head_answers_headers_only_and_the_connection_stays_usable(srv):
    import socket

    host, port = srv.url.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"HEAD /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\nGET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while data.count(b"\r\n\r\n") < 2 or not data.endswith(b'{"ready":true}'):
            chunk = s.recv(4096)
            assert chunk, f"connection closed early: {data!r}"
            data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200") and b"Content-Length: 14" in head, head
    # No body after the HEAD answer: the next bytes are the GET answer's status line.
    assert rest.startswith(b"HTTP/1.1 200"), rest
