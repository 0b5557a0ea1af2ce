"""Writes the PyTorch runtime's test repository: TorchScript models scripted or traced
here by torch itself, their config.pbtxt files, and torch's own outputs on fixed inputs.

Run with Debian's /usr/bin/python3 (python3-torch 1.13, the version of the libtorch the
runtime links), not the test venv: `python3 torch_models.py REPO_DIR`. Writes
REPO_DIR/<model>/1/model.pt and config.pbtxt, and REPO_DIR/../torch_reference.npz with
each model's inputs and torch's outputs as "<model>/<tensor>" (BF16 as its uint16 bits,
since numpy has no bfloat16).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Dict, Tuple

import numpy as np
import torch

torch.manual_seed(0)
ARRAYS: dict[str, np.ndarray] = {}

# (config type, torch dtype, the op that model applies): one model round-trips all.
DTYPES = [
    ("BOOL", torch.bool), ("UINT8", torch.uint8), ("INT8", torch.int8), ("INT16", torch.int16),
    ("INT32", torch.int32), ("INT64", torch.int64), ("FP16", torch.float16), ("BF16", torch.bfloat16),
    ("FP32", torch.float32), ("FP64", torch.float64),
]


def to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.view(torch.int16).numpy().view(np.uint16) if t.dtype == torch.bfloat16 else t.numpy()


def save(repo: Path, name: str, module: torch.jit.ScriptModule, config: str | None) -> None:
    (repo / name / "1").mkdir(parents=True)
    module.save(str(repo / name / "1" / "model.pt"))
    if config is not None:
        (repo / name / "config.pbtxt").write_text(config)


def record(name: str, tensors: dict[str, torch.Tensor]) -> None:
    for key, t in tensors.items():
        ARRAYS[f"{name}/{key}"] = to_numpy(t.detach())


class Mlp(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))

    def forward(self, x):
        return torch.softmax(self.net(x), dim=1)


class MultiIO(torch.nn.Module):
    """Two inputs bound by argument name, a tuple of two outputs of different types."""

    def forward(self, features: torch.Tensor, scale: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        scaled = features / scale  # not symmetric: swapped inputs would show
        return scaled.sum(dim=1, keepdim=True), scaled.argmax(dim=1, keepdim=True)


class EveryDtype(torch.nn.Module):
    def forward(self, b, u8, i8, i16, i32, i64, f16, bf16, f32, f64):
        return (~b, u8 + 1, i8 * 2, i16 - 3, i32 * 2, i64 + 1, f16 * 2, bf16 + 1, f32 * 2, f64 / 4)


class Embed(torch.nn.Module):
    """INT64 token ids in, embeddings out: traced, not scripted."""

    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(10, 4)

    def forward(self, tokens):
        return self.emb(tokens).mean(dim=1)


class DictOut(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        # "same" is the input itself: the server must copy it out of the request.
        return {"double": x * 2, "same": x, "negated": -x}


class Strict(torch.nn.Module):
    """Raises on some data (its own assert) and fails torch's shape check on others."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(4, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch._assert(bool(x.min() >= 0), "inputs must be non-negative")
        return x @ self.w


def main(repo: Path) -> None:
    repo.mkdir(parents=True)
    rng = np.random.default_rng(0)

    mlp = torch.jit.script(Mlp().eval())
    save(repo, "torch_mlp", mlp, """
name: "torch_mlp"
platform: "pytorch_libtorch"
max_batch_size: 16
input [ { name: "INPUT__0" data_type: TYPE_FP32 dims: [ 8 ] } ]
output [ { name: "OUTPUT__0" data_type: TYPE_FP32 dims: [ 3 ] } ]
dynamic_batching { max_queue_delay_microseconds: 3000 }
instance_group [ { count: 2 kind: KIND_CPU } ]
parameters { key: "intra_op_thread_count" value: { string_value: "1" } }
""")
    x = torch.from_numpy(rng.standard_normal((48, 8)).astype(np.float32))
    with torch.no_grad():
        record("torch_mlp", {"INPUT__0": x, "OUTPUT__0": mlp(x)})

    multi = torch.jit.script(MultiIO())
    # Inputs listed in the other order than forward()'s: bound by name.
    save(repo, "torch_multi_io", multi, """
backend: "pytorch"
max_batch_size: 8
input [
  { name: "scale" data_type: TYPE_FP32 dims: [ 5 ] },
  { name: "features" data_type: TYPE_FP32 dims: [ 5 ] }
]
output [
  { name: "weighted_sum" data_type: TYPE_FP32 dims: [ 1 ] },
  { name: "argmax" data_type: TYPE_INT64 dims: [ 1 ] }
]
""")
    features = torch.from_numpy(rng.standard_normal((3, 5)).astype(np.float32))
    scale = torch.from_numpy(rng.uniform(0.5, 2, (3, 5)).astype(np.float32))
    s, a = multi(features, scale)
    record("torch_multi_io", {"features": features, "scale": scale, "weighted_sum": s, "argmax": a})

    every = torch.jit.script(EveryDtype())
    # Triton's naming convention: positions from the __N suffixes, config order shuffled.
    order = list(range(len(DTYPES)))[::-1]
    ins = ",\n".join(f'  {{ name: "IN_{DTYPES[i][0]}__{i}" data_type: TYPE_{DTYPES[i][0]} dims: [ -1 ] }}' for i in order)
    outs = ",\n".join(f'  {{ name: "OUT_{DTYPES[i][0]}__{i}" data_type: TYPE_{DTYPES[i][0]} dims: [ -1 ] }}' for i in order)
    save(repo, "torch_dtypes", every, f"input [\n{ins}\n]\noutput [\n{outs}\n]\n")
    inputs = []
    for cfg, dt in DTYPES:
        if dt == torch.bool:
            t = torch.from_numpy(rng.integers(0, 2, 6).astype(bool))
        elif dt.is_floating_point:
            t = torch.from_numpy(rng.standard_normal(6) * 10).to(dt)
        else:
            info = torch.iinfo(dt)
            t = torch.from_numpy(rng.integers(max(info.min, -50), min(info.max, 50), 6)).to(dt)
        inputs.append(t)
    results = every(*inputs)
    for (cfg, _), i, o in zip(DTYPES, inputs, results):
        idx = [d[0] for d in DTYPES].index(cfg)
        record("torch_dtypes", {f"IN_{cfg}__{idx}": i, f"OUT_{cfg}__{idx}": o})

    tokens = torch.from_numpy(rng.integers(0, 10, (4, 3)))
    embed = torch.jit.trace(Embed().eval(), tokens)
    # Config names unlike forward()'s argument: bound by config order.
    save(repo, "torch_embed", embed, """
platform: "pytorch_libtorch"
max_batch_size: 4
input [ { name: "ids" data_type: TYPE_INT64 dims: [ 3 ] } ]
output [ { name: "embedding" data_type: TYPE_FP32 dims: [ 4 ] } ]
""")
    with torch.no_grad():
        record("torch_embed", {"ids": tokens, "embedding": embed(tokens)})

    dict_out = torch.jit.script(DictOut())
    save(repo, "torch_dict", dict_out, """
backend: "pytorch"
input [ { name: "x" data_type: TYPE_FP32 dims: [ 2, 3 ] } ]
output [
  { name: "negated" data_type: TYPE_FP32 dims: [ 2, 3 ] },
  { name: "same" data_type: TYPE_FP32 dims: [ 2, 3 ] },
  { name: "double" data_type: TYPE_FP32 dims: [ 2, 3 ] }
]
""")
    xd = torch.from_numpy(rng.standard_normal((2, 3)).astype(np.float32))
    record("torch_dict", {"x": xd, **dict_out(xd)})

    strict = torch.jit.script(Strict())
    # dims [-1, -1]: the width check is left to torch.
    save(repo, "torch_strict", strict, """
backend: "pytorch"
input [ { name: "x" data_type: TYPE_FP32 dims: [ -1, -1 ] } ]
output [ { name: "y" data_type: TYPE_FP32 dims: [ -1, 2 ] } ]
""")
    xs = torch.from_numpy(rng.uniform(0, 1, (3, 4)).astype(np.float32))
    with torch.no_grad():
        record("torch_strict", {"x": xs, "y": strict(xs)})

    # Failures: not a TorchScript file; a config with one input too many; no config.
    (repo / "torch_corrupt" / "1").mkdir(parents=True)
    (repo / "torch_corrupt" / "1" / "model.pt").write_bytes(b"PK\x03\x04 this is not a torch archive")
    (repo / "torch_corrupt" / "config.pbtxt").write_text("""
backend: "pytorch"
input [ { name: "x" data_type: TYPE_FP32 dims: [ 1 ] } ]
output [ { name: "y" data_type: TYPE_FP32 dims: [ 1 ] } ]
""")
    save(repo, "torch_extra_input", multi, """
backend: "pytorch"
input [
  { name: "features" data_type: TYPE_FP32 dims: [ 5 ] },
  { name: "scale" data_type: TYPE_FP32 dims: [ 5 ] },
  { name: "surplus" data_type: TYPE_FP32 dims: [ 5 ] }
]
output [ { name: "weighted_sum" data_type: TYPE_FP32 dims: [ 1 ] } ]
""")
    save(repo, "torch_no_config", mlp, None)

    np.savez(repo.parent / "torch_reference.npz", **ARRAYS)
    print(f"torch {torch.__version__}: wrote {sorted(p.name for p in repo.iterdir())}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
