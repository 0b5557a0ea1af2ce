#!/usr/bin/env python3
"""gRPC sanity check and load-generator inputs for bench/run_grpc_bench.sh.

  check DIR HOST:PORT MODEL_ONNX
      Uses the same add_sub v1 batch-1 inputs as bench/make_bodies.py (same seed) and
      onnxruntime's Python session on MODEL_ONNX as the reference.  Through
      tritonclient.grpc (a stock client) it sends
        - two unary ModelInfer calls, and
        - four requests on one ModelStreamInfer (bidirectional) stream,
      and fails unless every answer carries OUTPUT0 and OUTPUT1 equal to onnxruntime's.
      Writes, for build/bench/grpc_load:
        DIR/grpc_inputs.bin    INPUT0 then INPUT1, raw little-endian FP32 (2 x 64 bytes)
        DIR/grpc_expect.bin    OUTPUT0 then OUTPUT1 as onnxruntime computed them
"""

from __future__ import annotations

import queue
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_bodies import make_inputs  # noqa: E402  (same inputs as the REST bodies)


def fail(msg: str) -> None:
    print(f"GRPC SANITY CHECK FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def compare(what: str, result, ref: dict[str, np.ndarray]) -> None:
    for name, exp in ref.items():
        got = result.as_numpy(name)
        if got is None:
            fail(f"{what}: no {name} in the response")
        if got.dtype != np.float32 or got.shape != exp.shape or not np.array_equal(got, exp):
            fail(f"{what}: {name} = {got!r}, onnxruntime says {exp!r}")


def cmd_check(d: Path, url: str, model: str) -> None:
    import onnxruntime as ort
    import tritonclient.grpc as grpcclient

    inputs = make_inputs()
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    ref = dict(zip(names, sess.run(names, inputs)))
    if sorted(ref) != ["OUTPUT0", "OUTPUT1"]:
        fail(f"model outputs {sorted(ref)}")

    d.mkdir(parents=True, exist_ok=True)
    (d / "grpc_inputs.bin").write_bytes(
        b"".join(np.ascontiguousarray(inputs[n], dtype="<f4").tobytes() for n in ("INPUT0", "INPUT1")))
    (d / "grpc_expect.bin").write_bytes(
        b"".join(np.ascontiguousarray(ref[n], dtype="<f4").tobytes() for n in ("OUTPUT0", "OUTPUT1")))

    def build():
        ins = []
        for n in ("INPUT0", "INPUT1"):
            t = grpcclient.InferInput(n, list(inputs[n].shape), "FP32")
            t.set_data_from_numpy(inputs[n])
            ins.append(t)
        outs = [grpcclient.InferRequestedOutput(n) for n in ("OUTPUT0", "OUTPUT1")]
        return ins, outs

    client = grpcclient.InferenceServerClient(url)
    try:
        if not client.is_server_ready():
            fail("server not ready over gRPC")
        for i in range(2):
            ins, outs = build()
            compare(f"unary call {i + 1}", client.infer("add_sub", ins, model_version="1", outputs=outs), ref)
        print("grpc check unary: 2 calls, OUTPUT0/OUTPUT1 equal onnxruntime's")

        results: queue.Queue = queue.Queue()
        client.start_stream(callback=lambda result, error: results.put((result, error)))
        n = 4
        for i in range(n):
            ins, outs = build()
            client.async_stream_infer("add_sub", ins, model_version="1", outputs=outs, request_id=f"s{i}")
        for i in range(n):
            try:
                result, error = results.get(timeout=10)
            except queue.Empty:
                fail(f"stream: only {i} of {n} responses within 10 s")
            if error is not None:
                fail(f"stream response {i}: error {error}")
            rid = result.get_response().id
            if rid != f"s{i}":
                fail(f"stream response {i}: id {rid!r}, expected 's{i}' (responses out of order?)")
            compare(f"stream response {i}", result, ref)
        client.stop_stream()
        print(f"grpc check stream: {n} requests on one stream, in order, OUTPUT0/OUTPUT1 equal onnxruntime's")
    finally:
        client.close()


def main(argv: list[str]) -> None:
    if len(argv) == 5 and argv[1] == "check":
        cmd_check(Path(argv[2]), argv[3], argv[4])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
