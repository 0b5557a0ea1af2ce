#!/usr/bin/env python3
"""Request bodies, sanity checks and the nginx config for bench/run_rest_bench.sh.

Subcommands (all files live in one work folder, DIR):

  bodies DIR
      Writes the two add_sub v1, batch-1 request bodies that the benchmark replays:
        json.req        a pure JSON request (inputs as JSON data, both outputs requested)
        binary.req      a binary-tensor-extension request: JSON header + 2 x 64 raw bytes,
                        both outputs requested with binary_data=true
        binary.ihcl     the request's Inference-Header-Content-Length value
        inputs.npz      the input arrays (for the reference computation)

  check DIR URL MODEL_ONNX
      POSTs each body to URL (ferry's infer endpoint) twice, fails unless both answers are
      200, byte-identical, and decode to the outputs onnxruntime's Python session computes
      on MODEL_ONNX.  Saves what ferry answered, for the static responder:
        KIND.resp       the response body
        KIND.ctype      its Content-Type
        KIND.resp_ihcl  its Inference-Header-Content-Length (binary only; absent otherwise)

  nginx-conf DIR PORT_JSON PORT_BINARY PATH OUT
      Writes an nginx config (worker_processes 1, no master, 127.0.0.1 only) with one
      server per body kind, each answering POST PATH with `return 200` of the response
      ferry gave for that kind (same Content-Type; the binary one also sends ferry's
      Inference-Header-Content-Length).  Two ports, so both kinds use ferry's exact path.

  check-static DIR URL_JSON URL_BINARY
      Fails unless nginx answers each body with 200 and exactly ferry's bytes and headers.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import requests

IHCL = "Inference-Header-Content-Length"
KINDS = ("json", "binary")
SEED = 20240601


def make_inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(SEED)
    return {
        "INPUT0": rng.standard_normal((1, 16)).astype(np.float32),
        "INPUT1": rng.standard_normal((1, 16)).astype(np.float32),
    }


def cmd_bodies(d: Path) -> None:
    d.mkdir(parents=True, exist_ok=True)
    inputs = make_inputs()
    np.savez(d / "inputs.npz", **inputs)
    outputs = ["OUTPUT0", "OUTPUT1"]
    compact = dict(separators=(",", ":"))

    # JSON: flat data, float32 values written as the shortest decimal that round-trips.
    doc = {
        "inputs": [{"name": n, "shape": list(a.shape), "datatype": "FP32",
                    "data": [float(x) for x in a.reshape(-1)]} for n, a in inputs.items()],
        "outputs": [{"name": n} for n in outputs],
    }
    (d / "json.req").write_bytes(json.dumps(doc, **compact).encode())

    # Binary tensor extension: JSON header, then the raw little-endian tensors.
    header = {
        "inputs": [{"name": n, "shape": list(a.shape), "datatype": "FP32",
                    "parameters": {"binary_data_size": a.nbytes}} for n, a in inputs.items()],
        "outputs": [{"name": n, "parameters": {"binary_data": True}} for n in outputs],
    }
    head = json.dumps(header, **compact).encode()
    tail = b"".join(np.ascontiguousarray(a, dtype="<f4").tobytes() for a in inputs.values())
    (d / "binary.req").write_bytes(head + tail)
    (d / "binary.ihcl").write_text(str(len(head)))
    print(f"bodies: json.req {len((d / 'json.req').read_bytes())} B, "
          f"binary.req {len(head) + len(tail)} B (header {len(head)} B)")


def request_headers(d: Path, kind: str) -> dict[str, str]:
    if kind == "json":
        return {"Content-Type": "application/json"}
    return {"Content-Type": "application/octet-stream", IHCL: (d / "binary.ihcl").read_text().strip()}


def decode(body: bytes, ihcl: str | None) -> dict[str, np.ndarray]:
    n = int(ihcl) if ihcl is not None else len(body)
    doc = json.loads(body[:n])
    tail = body[n:]
    out, off = {}, 0
    for o in doc["outputs"]:
        if o["datatype"] != "FP32":
            raise SystemExit(f"unexpected datatype for {o['name']}: {o['datatype']}")
        size = (o.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            out[o["name"]] = np.frombuffer(tail[off:off + size], dtype="<f4").reshape(o["shape"])
            off += size
        else:
            out[o["name"]] = np.asarray(o["data"], dtype=np.float32).reshape(o["shape"])
    if off != len(tail):
        raise SystemExit(f"{len(tail) - off} unexplained bytes after the binary outputs")
    return out


def fail(msg: str) -> None:
    print(f"SANITY CHECK FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def cmd_check(d: Path, url: str, model: str) -> None:
    import onnxruntime as ort

    inputs = dict(np.load(d / "inputs.npz"))
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    ref = dict(zip(names, sess.run(names, inputs)))
    for kind in KINDS:
        body = (d / f"{kind}.req").read_bytes()
        answers = []
        for _ in range(2):
            r = requests.post(url, data=body, headers=request_headers(d, kind), timeout=10)
            if r.status_code != 200:
                fail(f"{kind}: ferry answered {r.status_code}: {r.text[:300]}")
            answers.append(r)
        r = answers[0]
        if answers[1].content != r.content:
            fail(f"{kind}: two identical requests got different response bodies; a static replay would be wrong")
        ihcl = r.headers.get(IHCL)
        if (kind == "binary") != (ihcl is not None):
            fail(f"{kind}: {IHCL} header {'missing' if ihcl is None else 'unexpected'} in the response")
        got = decode(r.content, ihcl)
        if sorted(got) != sorted(ref):
            fail(f"{kind}: outputs {sorted(got)}, expected {sorted(ref)}")
        for name, exp in ref.items():
            if got[name].shape != exp.shape or not np.allclose(got[name], exp, rtol=1e-6, atol=1e-6):
                fail(f"{kind}: {name} = {got[name]!r}, onnxruntime says {exp!r}")
        (d / f"{kind}.resp").write_bytes(r.content)
        (d / f"{kind}.ctype").write_text(r.headers.get("Content-Type", ""))
        if ihcl is not None:
            (d / f"{kind}.resp_ihcl").write_text(ihcl)
        print(f"check {kind}: 200, {len(r.content)} B, Content-Type {r.headers.get('Content-Type')}"
              + (f", {IHCL} {ihcl}" if ihcl else "") + ", outputs match onnxruntime")


def nginx_string(data: bytes) -> tuple[str, bool]:
    """data as an nginx double-quoted string; True when it needs the $dollar variable."""
    out, dollar = [], False
    for b in data:
        c = chr(b)
        if c == "\\":
            out.append("\\\\")
        elif c == '"':
            out.append('\\"')
        elif c == "$":
            out.append("${dollar}")  # '$' cannot be escaped in nginx strings; a geo var holds it
            dollar = True
        else:
            out.append(c)
    return "".join(out), dollar


def cmd_nginx_conf(d: Path, port_json: str, port_binary: str, path: str, out: Path) -> None:
    servers, need_dollar = [], False
    for kind, port in (("json", port_json), ("binary", port_binary)):
        text, dollar = nginx_string((d / f"{kind}.resp").read_bytes())
        need_dollar |= dollar
        extra = ""
        ihcl_file = d / f"{kind}.resp_ihcl"
        if ihcl_file.exists():
            extra = f"            add_header {IHCL} {ihcl_file.read_text().strip()};\n"
        servers.append(
            "    server {\n"
            f"        listen 127.0.0.1:{port};\n"
            f"        location = {path} {{\n"
            f"            default_type \"{(d / f'{kind}.ctype').read_text().strip()}\";\n"
            f"{extra}"
            f"            return 200 \"{text}\";\n"
            "        }\n"
            "        location / { return 404; }\n"
            "    }\n")
    conf = (
        "worker_processes 1;\n"
        "daemon off;\n"
        "master_process off;\n"
        f"pid {d}/nginx.pid;\n"
        f"error_log {d}/nginx-error.log warn;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        "    access_log off;\n"
        "    server_tokens off;\n"
        "    keepalive_requests 1000000000;\n"
        "    keepalive_timeout 300s;\n"
        f"    client_body_temp_path {d}/nginx-body;\n"
        f"    proxy_temp_path {d}/nginx-proxy;\n"
        f"    fastcgi_temp_path {d}/nginx-fastcgi;\n"
        f"    uwsgi_temp_path {d}/nginx-uwsgi;\n"
        f"    scgi_temp_path {d}/nginx-scgi;\n"
        + ('    geo $dollar { default "$"; }\n' if need_dollar else "")
        + "".join(servers)
        + "}\n")
    out.write_bytes(conf.encode("latin-1"))


def cmd_check_static(d: Path, url_json: str, url_binary: str) -> None:
    for kind, url in (("json", url_json), ("binary", url_binary)):
        r = requests.post(url, data=(d / f"{kind}.req").read_bytes(), headers=request_headers(d, kind), timeout=10)
        want = (d / f"{kind}.resp").read_bytes()
        if r.status_code != 200 or r.content != want:
            fail(f"nginx {kind}: status {r.status_code}, {len(r.content)} B; expected 200 and ferry's {len(want)} B")
        if r.headers.get("Content-Type") != (d / f"{kind}.ctype").read_text().strip():
            fail(f"nginx {kind}: Content-Type {r.headers.get('Content-Type')!r}")
        ihcl_file = d / f"{kind}.resp_ihcl"
        if ihcl_file.exists() and r.headers.get(IHCL) != ihcl_file.read_text().strip():
            fail(f"nginx {kind}: {IHCL} {r.headers.get(IHCL)!r}")
        print(f"check-static {kind}: 200, {len(r.content)} B, same body and headers as ferry")


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        raise SystemExit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "bodies" and len(args) == 1:
        cmd_bodies(Path(args[0]))
    elif cmd == "check" and len(args) == 3:
        cmd_check(Path(args[0]), args[1], args[2])
    elif cmd == "nginx-conf" and len(args) == 5:
        cmd_nginx_conf(Path(args[0]), args[1], args[2], args[3], Path(args[4]))
    elif cmd == "check-static" and len(args) == 3:
        cmd_check_static(Path(args[0]), args[1], args[2])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
