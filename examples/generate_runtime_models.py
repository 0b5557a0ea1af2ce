#!/usr/bin/env python3
"""Add one example model per non-ONNX runtime to ferry's example repository.

Usage:
    python examples/generate_runtime_models.py OUT_DIR

Run with the project's .venv python (scikit-learn, joblib). Writes, next to what
generate_models.py writes:
  iris_sklearn    an MLServer-style folder (model-settings.json + model.joblib): a
                  scikit-learn LogisticRegression fitted on scikit-learn's bundled iris
                  data; input "input-0" FP64 [rows, 4]; outputs "predict" (class) and
                  "predict_proba". Served by a Python worker process.
  add_one         the C plugin example (examples/plugins/add_one): OUTPUT_<T> =
                  INPUT_<T> + 1 for every numeric type. Served by libferry_add_one.so
                  from the server's --plugin-dir.
  torch_linear    a TorchScript model (y = x @ W + b, FP32 [rows, 4] -> [rows, 3]),
                  traced by Debian's python3-torch (/usr/bin/python3), which
                  scripts/setup.sh installs; skipped with a note when it is missing.
Weights come from fixed seeds; re-running replaces these folders only.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

TORCH_CONFIG = """\
name: "torch_linear"
platform: "pytorch_libtorch"
max_batch_size: 8
input [ { name: "INPUT__0" data_type: TYPE_FP32 dims: [ 4 ] } ]
output [ { name: "OUTPUT__0" data_type: TYPE_FP32 dims: [ 3 ] } ]
"""

TORCH_SCRIPT = """
import sys, torch
torch.manual_seed(7)
class Linear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)
    def forward(self, x):
        return self.fc(x)
# Traced, not scripted: scripting reads the class's source file, and this runs from -c.
torch.jit.trace(Linear().eval(), torch.zeros(1, 4)).save(sys.argv[1])
"""


def iris_sklearn(out: Path) -> None:
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    folder = out / "iris_sklearn"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    x, y = load_iris(return_X_y=True)
    joblib.dump(LogisticRegression(max_iter=1000).fit(x, y), folder / "model.joblib")
    settings = {
        "name": "iris_sklearn",
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib", "version": "1"},
        "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}],
        "outputs": [{"name": "predict", "datatype": "INT64", "shape": [-1]},
                    {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 3]}],
    }
    (folder / "model-settings.json").write_text(json.dumps(settings, indent=2) + "\n")


def add_one(out: Path) -> None:
    dest = out / "add_one"
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(HERE / "plugins" / "add_one" / "models" / "add_one", dest)


def torch_linear(out: Path) -> bool:
    folder = out / "torch_linear"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "1").mkdir(parents=True)
    proc = subprocess.run(["/usr/bin/python3", "-c", TORCH_SCRIPT, str(folder / "1" / "model.pt")],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        shutil.rmtree(folder)
        print("torch_linear skipped: /usr/bin/python3 cannot script it (python3-torch missing?):\n"
              + proc.stderr.strip()[-400:], file=sys.stderr)
        return False
    (folder / "config.pbtxt").write_text(TORCH_CONFIG)
    return True


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    iris_sklearn(out)
    add_one(out)
    made = ["iris_sklearn", "add_one"] + (["torch_linear"] if torch_linear(out) else [])
    print(f"wrote {', '.join(made)} into {out}")


if __name__ == "__main__":
    main()
