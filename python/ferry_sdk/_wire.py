"""The binary infer messages between the server and a worker (src/runtime/python/worker_messages.h).

Loading stays JSON (once per worker); every request and reply is a small fixed-layout
packet, little-endian, so a call costs a few struct unpacks instead of JSON parsing:

  request  "FIN2" u32 0, u64 id, u64 shm_size, u64 output_offset, u32 n_inputs, u32 n_outputs
           then per input:  u8 datatype, u8 rank, u16 name_len, u32 0, u64 offset, u64 size,
                            rank x i64 dims, name (UTF-8)
           then per output: u16 name_len, name
  reply    "FRE2" u32 status (0 ok, 1 the request's fault, 2 the model's, 3 unsupported), u64 id,
           u64 shm_size, u32 n_outputs
           then per output as per input above; or, when status != 0, the error text.

Datatype codes are Triton's config enum (TYPE_BOOL = 1 ... TYPE_BF16 = 14), as ferry's
DataType. Tensor bytes never travel here; they lie in the shared-memory region.
"""

from __future__ import annotations

import struct
from typing import Dict, List, Tuple

# Bumped with any change to the layouts above; the load reply carries it so the server
# can refuse a worker from another SDK version with a clear message.
WIRE_VERSION = 3

REQUEST_MAGIC = b"FIN2"
REPLY_MAGIC = b"FRE2"
# UNSUPPORTED (since 3): the model lacks what the request asked of it (an explanation).
OK, USER_ERROR, MODEL_ERROR, UNSUPPORTED = 0, 1, 2, 3
# The one output name of an explain call (ModelInstance::Explain): the worker answers
# it with Model.explain() instead of execute().
EXPLAIN_OUTPUT = "__ferry_explain__"

REQUEST_HEAD = struct.Struct("<4sIQQQII")
REPLY_HEAD = struct.Struct("<4sIQQI")
TENSOR = struct.Struct("<BBHIQQ")
NAME_LEN = struct.Struct("<H")

CODE_TO_V2 = {1: "BOOL", 2: "UINT8", 3: "UINT16", 4: "UINT32", 5: "UINT64", 6: "INT8", 7: "INT16", 8: "INT32",
              9: "INT64", 10: "FP16", 11: "FP32", 12: "FP64", 13: "BYTES", 14: "BF16"}
V2_TO_CODE = {v: k for k, v in CODE_TO_V2.items()}

_dims: Dict[int, struct.Struct] = {}
_names: Dict[bytes, str] = {}
_encoded: Dict[str, bytes] = {}


def _dims_struct(rank: int) -> struct.Struct:
    s = _dims.get(rank)
    if s is None:
        s = _dims[rank] = struct.Struct(f"<{rank}q")
    return s


def _name(raw: bytes) -> str:
    s = _names.get(raw)
    if s is None:
        s = raw.decode()
        if len(_names) < 4096:  # names repeat call after call; a bound keeps odd peers from growing it
            _names[raw] = s
    return s


def _encode_name(name: str) -> bytes:
    b = _encoded.get(name)
    if b is None:
        b = name.encode()
        if len(_encoded) < 4096:
            _encoded[name] = b
    return b


class Request:
    """One parsed infer request: id, the region size the server mapped, where outputs
    start, each input as (name, datatype, shape, offset, size), the output names."""

    __slots__ = ("id", "shm_size", "output_offset", "inputs", "outputs")

    def __init__(self, rid: int, shm_size: int, output_offset: int,
                 inputs: List[Tuple[str, str, Tuple[int, ...], int, int]], outputs: List[str]):
        self.id = rid
        self.shm_size = shm_size
        self.output_offset = output_offset
        self.inputs = inputs
        self.outputs = outputs


def is_request(buf) -> bool:
    return len(buf) >= REQUEST_HEAD.size and bytes(buf[:4]) == REQUEST_MAGIC


_parsed: Dict[bytes, Request] = {}
_ID = struct.Struct("<Q")


def parse_request(buf) -> Request:
    """Parses a request packet; ValueError naming what is wrong when it is malformed.

    Requests of one model repeat the same bytes apart from the id (same names, shapes
    and places), so a parse is kept by the bytes after the id and reused: the returned
    Request is shared and must not be modified."""
    key = bytes(buf[16:])
    req = _parsed.get(key)
    if req is not None:
        if bytes(buf[:4]) != REQUEST_MAGIC:
            raise ValueError(f"the request packet starts with {bytes(buf[:4])!r}, not {REQUEST_MAGIC!r}")
        return Request(_ID.unpack_from(buf, 8)[0], req.shm_size, req.output_offset, req.inputs, req.outputs)
    req = _parse(buf)
    if len(_parsed) >= 256:  # batch sizes vary; a bound keeps the cache small
        _parsed.clear()
    _parsed[key] = req
    return req


def _parse(buf) -> Request:
    try:
        magic, _, rid, shm_size, output_offset, n_in, n_out = REQUEST_HEAD.unpack_from(buf, 0)
        if magic != REQUEST_MAGIC:
            raise ValueError(f"the request packet starts with {magic!r}, not {REQUEST_MAGIC!r}")
        pos = REQUEST_HEAD.size
        inputs = []
        for _ in range(n_in):
            code, rank, name_len, _, offset, size = TENSOR.unpack_from(buf, pos)
            pos += TENSOR.size
            shape = _dims_struct(rank).unpack_from(buf, pos)
            pos += 8 * rank
            name = _name(bytes(buf[pos:pos + name_len]))
            pos += name_len
            dt = CODE_TO_V2.get(code)
            if dt is None:
                raise ValueError(f"input '{name}': unknown datatype code {code}")
            inputs.append((name, dt, shape, offset, size))
        outputs = []
        for _ in range(n_out):
            (name_len,) = NAME_LEN.unpack_from(buf, pos)
            pos += 2
            outputs.append(_name(bytes(buf[pos:pos + name_len])))
            pos += name_len
    except struct.error as exc:
        raise ValueError(f"the request packet is cut short ({exc})") from None
    if pos > len(buf):
        raise ValueError("the request packet is cut short")
    if pos != len(buf):
        raise ValueError(f"the request packet holds {len(buf) - pos} bytes past its end")
    return Request(rid, shm_size, output_offset, inputs, outputs)


_tails: Dict[tuple, bytes] = {}


def encode_reply(rid: int, shm_size: int, specs: List[Tuple[str, str, Tuple[int, ...], int, int]]) -> bytes:
    """A successful reply naming each output's (name, datatype, shape, offset, size)."""
    key = tuple(specs)
    tail = _tails.get(key)
    if tail is None:
        parts = []
        for name, dt, shape, offset, size in specs:
            raw = _encode_name(name)
            rank = len(shape)
            parts.append(TENSOR.pack(V2_TO_CODE[dt], rank, len(raw), 0, offset, size))
            parts.append(_dims_struct(rank).pack(*shape))
            parts.append(raw)
        tail = b"".join(parts)
        if len(_tails) >= 256:
            _tails.clear()
        _tails[key] = tail
    return REPLY_HEAD.pack(REPLY_MAGIC, OK, rid, shm_size, len(specs)) + tail


def encode_error(rid: int, status: int, message: str) -> bytes:
    return REPLY_HEAD.pack(REPLY_MAGIC, status, rid, 0, 0) + message.encode("utf-8", "replace")
