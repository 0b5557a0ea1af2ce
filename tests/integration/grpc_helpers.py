"""Helpers for ferry's gRPC integration tests (test_grpc.py): clients and raw stubs,
hand-built ModelInferRequest messages, and a repository of small models covering more
datatypes than the examples (FP16, BYTES, BOOL, INT64, FP32).
"""

from __future__ import annotations

from pathlib import Path

import threading

import grpc
import numpy as np
import tritonclient.grpc as grpcclient
import onnx
from onnx import TensorProto, helper
from tritonclient.grpc import InferResult
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pb_grpc
from tritonclient.utils import np_to_triton_dtype, serialize_byte_tensor

import ferry_helpers as fh

RPC_TIMEOUT_S = 10.0
STREAM_WAIT_S = 20.0

# --------------------------------------------------------------------------- connections


def grpc_url(server) -> str:
    return fh.grpc_url(server)


def channel(server, max_message_bytes: int | None = None) -> grpc.Channel:
    """An insecure channel to the server's gRPC port; the caller closes it."""
    opts = []
    if max_message_bytes is not None:
        opts += [("grpc.max_send_message_length", max_message_bytes),
                 ("grpc.max_receive_message_length", max_message_bytes)]
    return grpc.insecure_channel(grpc_url(server), options=opts)


def stub(ch: grpc.Channel) -> pb_grpc.GRPCInferenceServiceStub:
    return pb_grpc.GRPCInferenceServiceStub(ch)


# --------------------------------------------------------------------------- requests


def infer_inputs(inputs: dict[str, np.ndarray]) -> list[grpcclient.InferInput]:
    out = []
    for name, arr in inputs.items():
        inp = grpcclient.InferInput(name, list(arr.shape), np_to_triton_dtype(arr.dtype))
        inp.set_data_from_numpy(arr)
        out.append(inp)
    return out


class StreamCollector:
    """A tritonclient stream callback that keeps (result, error) in arrival order."""

    def __init__(self, expected: int):
        self.items: list = []
        self.expected = expected
        self.done = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, result, error):
        with self.lock:
            self.items.append((result, error))
            if len(self.items) >= self.expected:
                self.done.set()

    def wait(self, timeout=STREAM_WAIT_S):
        assert self.done.wait(timeout), f"only {len(self.items)} of {self.expected} stream responses arrived"
        return list(self.items)


def tensor_bytes(arr: np.ndarray) -> bytes:
    """raw_input_contents bytes of an array: little-endian, BYTES length-prefixed."""
    arr = np.asarray(arr)
    if arr.dtype == np.object_ or arr.dtype.kind in "SU":
        serialized = serialize_byte_tensor(arr)
        return serialized.item() if serialized.size > 0 else b""
    return np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()


def datatype_of(arr: np.ndarray) -> str:
    return np_to_triton_dtype(np.asarray(arr).dtype)


def infer_request(model: str, inputs: dict[str, np.ndarray], version: str = "", outputs=None,
                  request_id: str = "", typed: bool = False) -> pb.ModelInferRequest:
    """A ModelInferRequest; raw_input_contents by default, typed `contents` with typed=True."""
    req = pb.ModelInferRequest(model_name=model, model_version=version, id=request_id)
    for name, arr in inputs.items():
        arr = np.asarray(arr)
        t = req.inputs.add(name=name, datatype=datatype_of(arr), shape=list(arr.shape))
        if typed:
            set_typed_contents(t.contents, arr)
        else:
            req.raw_input_contents.append(tensor_bytes(arr))
    for name in outputs or ():
        req.outputs.add(name=name)
    return req


def set_typed_contents(contents: pb.InferTensorContents, arr: np.ndarray) -> None:
    flat = np.asarray(arr).reshape(-1)
    kind = datatype_of(arr)
    if kind == "BOOL":
        contents.bool_contents.extend(bool(v) for v in flat)
    elif kind in ("INT8", "INT16", "INT32"):
        contents.int_contents.extend(int(v) for v in flat)
    elif kind == "INT64":
        contents.int64_contents.extend(int(v) for v in flat)
    elif kind in ("UINT8", "UINT16", "UINT32"):
        contents.uint_contents.extend(int(v) for v in flat)
    elif kind == "UINT64":
        contents.uint64_contents.extend(int(v) for v in flat)
    elif kind == "FP32":
        contents.fp32_contents.extend(float(v) for v in flat)
    elif kind == "FP64":
        contents.fp64_contents.extend(float(v) for v in flat)
    elif kind == "BYTES":
        contents.bytes_contents.extend(v if isinstance(v, bytes) else str(v).encode() for v in flat)
    else:
        raise ValueError(f"no typed contents field for {kind}")


def response_arrays(resp: pb.ModelInferResponse) -> dict[str, np.ndarray]:
    result = InferResult(resp)
    return {o.name: result.as_numpy(o.name) for o in resp.outputs}


def rpc_error(call, *args, **kw) -> grpc.RpcError:
    """Run a stub call that must fail; returns the RpcError (code() / details())."""
    kw.setdefault("timeout", RPC_TIMEOUT_S)
    try:
        call(*args, **kw)
    except grpc.RpcError as err:
        return err
    raise AssertionError(f"{getattr(call, '_method', call)!r} succeeded, expected an error")


def assert_rpc_error(err: grpc.RpcError, code: grpc.StatusCode, *mentions: str) -> str:
    msg = err.details() or ""
    assert err.code() == code, f"status {err.code()}, expected {code}; message {msg!r}"
    for m in mentions:
        assert m in msg, f"error message {msg!r} does not mention {m!r}"
    return msg


# --------------------------------------------------------------------------- datatype models

OPSET = 17
IR_VERSION = 8

# model name -> (input name, output name); every model takes [batch, N] and has no config
# file, so ferry auto-completes it (max_batch_size 1024, --default-max-batch-size).
DTYPE_MODELS = {
    "fp16_add": ("X", "Y"),      # FLOAT16 [-1,4]: Y = X + X
    "string_identity": ("S", "T"),  # STRING [-1,2]: T = S
    "bool_not": ("B", "NB"),     # BOOL [-1,4]: NB = not B
    "int64_neg": ("I", "NI"),    # INT64 [-1,4]: NI = -I
    "fp32_mul": ("F", "G"),      # FLOAT [-1,4]: G = F * F
}


def _save(repo: Path, name: str, node, elem: int, cols: int, in_name: str, out_name: str) -> None:
    graph = helper.make_graph(
        [node], name,
        inputs=[helper.make_tensor_value_info(in_name, elem, ["batch", cols])],
        outputs=[helper.make_tensor_value_info(out_name, elem, ["batch", cols])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="ferry-tests")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    (repo / name / "1").mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(repo / name / "1" / "model.onnx"))


def build_dtype_repo(repo: Path) -> Path:
    _save(repo, "fp16_add", helper.make_node("Add", ["X", "X"], ["Y"]), TensorProto.FLOAT16, 4, "X", "Y")
    _save(repo, "string_identity", helper.make_node("Identity", ["S"], ["T"]), TensorProto.STRING, 2, "S", "T")
    _save(repo, "bool_not", helper.make_node("Not", ["B"], ["NB"]), TensorProto.BOOL, 4, "B", "NB")
    _save(repo, "int64_neg", helper.make_node("Neg", ["I"], ["NI"]), TensorProto.INT64, 4, "I", "NI")
    _save(repo, "fp32_mul", helper.make_node("Mul", ["F", "F"], ["G"]), TensorProto.FLOAT, 4, "F", "G")
    return repo


def dtype_reference(repo: Path, model: str, arr: np.ndarray) -> np.ndarray:
    """onnxruntime's output for a datatype model.  onnxruntime's Python API takes and gives
    strings as str, so BYTES go in decoded as UTF-8 and the answer is encoded back."""
    in_name, out_name = DTYPE_MODELS[model]
    if arr.dtype == np.object_:
        as_str = np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])(arr)
        out = fh.reference(repo, model, 1, {in_name: as_str})[out_name]
        return np.vectorize(lambda s: s.encode("utf-8"), otypes=[object])(out)
    return fh.reference(repo, model, 1, {in_name: arr})[out_name]
