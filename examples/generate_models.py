#!/usr/bin/env python3
"""Build ferry's example model repository.

Usage:
    python examples/generate_models.py OUT_DIR

Writes OUT_DIR/<model>/<version>/model.onnx (plus a config file where the model
has one).  Every model is built with onnx.helper at opset 17 / IR version 8 so
that onnxruntime 1.20 loads it.  Weights come from a fixed numpy seed, so the
output is byte-for-byte identical on every run.  Running it again replaces the
model folders it owns and leaves anything else in OUT_DIR alone.

Models:
  mlp_classifier  no config file (the server auto-completes it from the ONNX
                  file); input "input" FP32 [batch, 4]; outputs
                  "probabilities" FP32 [batch, 3] and "label" INT64 [batch, 1].
  add_sub         Triton config.pbtxt, versions 1 and 2; OUTPUT0 = INPUT0 + INPUT1
                  (version 2 adds 1 more), OUTPUT1 = INPUT0 - INPUT1.
  int_ops         ferry model.yaml; INT64 X, Y -> SUM, PROD (INT64), GREATER (BOOL).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8
SEED = 125  # chosen so the three classes come out roughly balanced on N(0,1) inputs
BATCH = "batch"  # symbolic name of the dynamic batch dimension

ADD_SUB_CONFIG = """\
name: "add_sub"
platform: "onnxruntime_onnx"
max_batch_size: 8
version_policy: { all { } }
input [
  {
    name: "INPUT0"
    data_type: TYPE_FP32
    dims: [ 16 ]
  },
  {
    name: "INPUT1"
    data_type: TYPE_FP32
    dims: [ 16 ]
  }
]
output [
  {
    name: "OUTPUT0"
    data_type: TYPE_FP32
    dims: [ 16 ]
  },
  {
    name: "OUTPUT1"
    data_type: TYPE_FP32
    dims: [ 16 ]
  }
]
instance_group [ { kind: KIND_CPU count: 1 } ]
"""

INT_OPS_YAML = """\
platform: onnxruntime_onnx
max_batch_size: 8
inputs:
  - {name: X, datatype: INT64, shape: [4]}
  - {name: Y, datatype: INT64, shape: [4]}
outputs:
  - {name: SUM, datatype: INT64, shape: [4]}
  - {name: PROD, datatype: INT64, shape: [4]}
  - {name: GREATER, datatype: BOOL, shape: [4]}
"""


def _model(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="ferry-examples",
        producer_version="1",
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


def _tensor(name: str, elem_type: int, cols: int) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem_type, [BATCH, cols])


def build_mlp_classifier() -> onnx.ModelProto:
    rng = np.random.default_rng(SEED)
    w1 = rng.normal(0.0, 1.0, size=(4, 16)).astype(np.float32)
    b1 = rng.normal(0.0, 0.5, size=(16,)).astype(np.float32)
    w2 = rng.normal(0.0, 1.0, size=(16, 3)).astype(np.float32)
    b2 = rng.normal(0.0, 0.5, size=(3,)).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["input", "W1"], ["h_mm"], name="fc1_matmul"),
        helper.make_node("Add", ["h_mm", "B1"], ["h_add"], name="fc1_bias"),
        helper.make_node("Relu", ["h_add"], ["h_relu"], name="fc1_relu"),
        helper.make_node("MatMul", ["h_relu", "W2"], ["logits_mm"], name="fc2_matmul"),
        helper.make_node("Add", ["logits_mm", "B2"], ["logits"], name="fc2_bias"),
        helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=1),
        helper.make_node("ArgMax", ["probabilities"], ["label"], name="argmax", axis=1, keepdims=1),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp_classifier",
        inputs=[_tensor("input", TensorProto.FLOAT, 4)],
        outputs=[
            _tensor("probabilities", TensorProto.FLOAT, 3),
            _tensor("label", TensorProto.INT64, 1),
        ],
        initializer=[
            numpy_helper.from_array(w1, "W1"),
            numpy_helper.from_array(b1, "B1"),
            numpy_helper.from_array(w2, "W2"),
            numpy_helper.from_array(b2, "B2"),
        ],
    )
    return _model(graph)


def build_add_sub(version: int) -> onnx.ModelProto:
    nodes = []
    initializers = []
    if version == 1:
        nodes.append(helper.make_node("Add", ["INPUT0", "INPUT1"], ["OUTPUT0"], name="add"))
    else:
        # Version 2 adds an extra 1 to OUTPUT0 so the two versions can be told apart.
        initializers.append(numpy_helper.from_array(np.array([1.0], dtype=np.float32), "ONE"))
        nodes.append(helper.make_node("Add", ["INPUT0", "INPUT1"], ["sum"], name="add"))
        nodes.append(helper.make_node("Add", ["sum", "ONE"], ["OUTPUT0"], name="add_one"))
    nodes.append(helper.make_node("Sub", ["INPUT0", "INPUT1"], ["OUTPUT1"], name="sub"))
    graph = helper.make_graph(
        nodes,
        f"add_sub_v{version}",
        inputs=[_tensor("INPUT0", TensorProto.FLOAT, 16), _tensor("INPUT1", TensorProto.FLOAT, 16)],
        outputs=[_tensor("OUTPUT0", TensorProto.FLOAT, 16), _tensor("OUTPUT1", TensorProto.FLOAT, 16)],
        initializer=initializers,
    )
    return _model(graph)


def build_int_ops() -> onnx.ModelProto:
    nodes = [
        helper.make_node("Add", ["X", "Y"], ["SUM"], name="sum"),
        helper.make_node("Mul", ["X", "Y"], ["PROD"], name="prod"),
        helper.make_node("Greater", ["X", "Y"], ["GREATER"], name="greater"),
    ]
    graph = helper.make_graph(
        nodes,
        "int_ops",
        inputs=[_tensor("X", TensorProto.INT64, 4), _tensor("Y", TensorProto.INT64, 4)],
        outputs=[
            _tensor("SUM", TensorProto.INT64, 4),
            _tensor("PROD", TensorProto.INT64, 4),
            _tensor("GREATER", TensorProto.BOOL, 4),
        ],
    )
    return _model(graph)


def _write_model(out_dir: Path, name: str, versions: dict[int, onnx.ModelProto],
                 extra_files: dict[str, str]) -> None:
    model_dir = out_dir / name
    if model_dir.exists():
        shutil.rmtree(model_dir)
    for version, model in versions.items():
        version_dir = model_dir / str(version)
        version_dir.mkdir(parents=True)
        (version_dir / "model.onnx").write_bytes(model.SerializeToString())
    for filename, text in extra_files.items():
        (model_dir / filename).write_text(text, encoding="utf-8")


def generate(out_dir: Path) -> list[str]:
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_model(out_dir, "mlp_classifier", {1: build_mlp_classifier()}, {})
    _write_model(out_dir, "add_sub", {1: build_add_sub(1), 2: build_add_sub(2)},
                 {"config.pbtxt": ADD_SUB_CONFIG})
    _write_model(out_dir, "int_ops", {1: build_int_ops()}, {"model.yaml": INT_OPS_YAML})
    return ["mlp_classifier", "add_sub", "int_ops"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate ferry's example ONNX model repository.")
    parser.add_argument("out_dir", type=Path, help="model repository folder to write (created if missing)")
    args = parser.parse_args(argv)
    names = generate(args.out_dir)
    print(f"wrote {', '.join(names)} to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
