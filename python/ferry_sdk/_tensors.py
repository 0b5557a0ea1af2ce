"""Tensors between the server and a worker: numpy views over the shared-memory region.

The server writes each input at an offset of the region and names it in the request
packet (name, datatype, shape, offset, size); the worker writes outputs from
``output_offset`` on, each at a 64-byte boundary, and names them in the reply. BYTES
tensors use the protocol's layout (a 4-byte little-endian length before each element).
"""

from __future__ import annotations

import math
import mmap
import os
import struct
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

ALIGN = 64

V2_TO_NP = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
}
NP_TO_V2 = {v: k for k, v in V2_TO_NP.items()}
# Triton config names (config JSON "data_type") to protocol names.
CONFIG_TO_V2 = {"TYPE_" + k: k for k in V2_TO_NP}
CONFIG_TO_V2["TYPE_STRING"] = "BYTES"


class OutputError(Exception):
    """An output the model returned that cannot be sent: the model's fault (HTTP 500)."""


def align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


class Region:
    """The worker's mapping of the shared-memory file; grows when either side grows it."""

    def __init__(self, fd: int):
        self.fd = fd
        self.size = 0
        self.map: Optional[mmap.mmap] = None
        self.bytes: Optional[memoryview] = None  # the whole mapping, for writing outputs

    def ensure(self, size: int) -> None:
        """Maps at least `size` bytes, first growing the file itself when it is smaller."""
        if size <= self.size:
            return
        if os.fstat(self.fd).st_size < size:
            os.ftruncate(self.fd, size)
        old, old_bytes = self.map, self.bytes
        self.map = mmap.mmap(self.fd, size)
        self.bytes = memoryview(self.map)
        self.size = size
        if old_bytes is not None:
            old_bytes.release()
        if old is not None:
            try:
                old.close()
            except BufferError:
                pass  # a model kept a view of an old input: the GC unmaps it later

    def check(self, offset: int, size: int) -> None:
        if offset < 0 or size < 0 or offset + size > self.size:
            raise ValueError(f"tensor at [{offset}, {offset + size}) lies outside the {self.size}-byte region")

    def view(self, offset: int, size: int) -> memoryview:
        self.check(offset, size)
        return self.bytes[offset:offset + size]


def decode_bytes(buf: memoryview, count: int, name: str) -> np.ndarray:
    out = np.empty(count, dtype=object)
    raw = bytes(buf)
    pos = 0
    for i in range(count):
        if pos + 4 > len(raw):
            raise ValueError(f"input '{name}': BYTES element {i} is cut short")
        (n,) = struct.unpack_from("<I", raw, pos)
        pos += 4
        if pos + n > len(raw):
            raise ValueError(f"input '{name}': BYTES element {i} is cut short")
        out[i] = raw[pos:pos + n]
        pos += n
    return out


def encode_bytes(arr: np.ndarray, name: str) -> bytes:
    parts = []
    for item in arr.reshape(-1):
        if isinstance(item, (bytes, bytearray, memoryview)):
            b = bytes(item)
        elif isinstance(item, str):
            b = item.encode()
        elif isinstance(item, np.bytes_):
            b = bytes(item)
        else:
            b = str(item).encode()
        parts.append(struct.pack("<I", len(b)))
        parts.append(b)
    return b"".join(parts)


def read_inputs(region: Region, specs) -> Dict[str, np.ndarray]:
    """Numpy views (no copy) over the inputs the server wrote, from (name, datatype,
    shape, offset, size) specs; BYTES become object arrays."""
    inputs = {}
    for name, dt, shape, offset, size in specs:
        count = math.prod(shape)
        if dt == "BYTES":
            inputs[name] = decode_bytes(region.view(offset, size), count, name).reshape(shape)
            continue
        np_dt = V2_TO_NP.get(dt)
        if np_dt is None:
            raise TypeError(f"input '{name}': datatype {dt} has no numpy equivalent")
        region.check(offset, size)
        if count * np_dt.itemsize != size:
            raise ValueError(f"input '{name}': shape {list(shape)} of {dt} needs {count * np_dt.itemsize} bytes, "
                             f"the request holds {size}")
        inputs[name] = np.frombuffer(region.map, dtype=np_dt, count=count, offset=offset).reshape(shape)
    return inputs


def to_output_array(name: str, value: Any, declared: Optional[str]) -> Tuple[np.ndarray, str]:
    """The array to send for output `name` and its protocol datatype.

    A declared datatype wins: numbers are cast to it when numpy's "same_kind" rule
    allows (int64 labels to FP64, FP64 to FP32), anything else is an error naming the
    output. Undeclared outputs keep numpy's own type.
    """
    if type(value) is np.ndarray and declared is not None and value.dtype == V2_TO_NP.get(declared) \
            and value.flags.c_contiguous:
        return value, declared  # the common case: already what the config declares
    arr = np.asarray(value)
    if declared == "BYTES" or (declared is None and arr.dtype.kind in "OSU"):
        return arr, "BYTES"
    if declared is None:
        dt = NP_TO_V2.get(arr.dtype)
        if dt is None:
            raise OutputError(f"output '{name}': numpy dtype {arr.dtype} has no protocol datatype")
        return np.ascontiguousarray(arr), dt
    target = V2_TO_NP.get(declared)
    if target is None:
        raise OutputError(f"output '{name}': datatype {declared} has no numpy equivalent")
    if arr.dtype != target:
        if arr.dtype.kind in "OSU" or not np.can_cast(arr.dtype, target, casting="same_kind"):
            raise OutputError(f"output '{name}': the model returned {arr.dtype} but the config declares {declared}")
        arr = arr.astype(target)
    return np.ascontiguousarray(arr), declared


def write_outputs(region: Region, start: int, arrays: List[Tuple[str, np.ndarray, str]]) -> List[Tuple]:
    """Writes each array at the next 64-byte boundary from `start`, growing the region;
    returns each output's (name, datatype, shape, offset, size)."""
    specs = []
    offset = align(start)
    for name, arr, dt in arrays:
        data = encode_bytes(arr, name) if dt == "BYTES" else None
        size = len(data) if data is not None else arr.nbytes
        needed = offset + size
        if needed > region.size:
            region.ensure(max(needed, region.size * 2))
        if size:
            region.bytes[offset:needed] = data if data is not None else arr.reshape(-1).view(np.uint8)
        specs.append((name, dt, arr.shape, offset, size))
        offset = align(needed)
    return specs
