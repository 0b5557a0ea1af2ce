#!/usr/bin/env bash
# The README's first command: set up, build, generate the example models and serve
# them on the default ports (REST 8000, gRPC 8001, metrics 8002): three ONNX models, a
# scikit-learn model in MLServer's layout (run by a Python worker with the project's
# .venv), the C plugin example and a TorchScript model. Extra arguments are passed to
# `ferry serve` (for example --http-port 9000).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/build.sh"
"$ROOT/.venv/bin/python" "$ROOT/examples/generate_models.py" "$ROOT/examples/models"
"$ROOT/.venv/bin/python" "$ROOT/examples/generate_runtime_models.py" "$ROOT/examples/models"
exec "$ROOT/build/dev/ferry" serve --model-repository "$ROOT/examples/models" \
  --python-executable "$ROOT/.venv/bin/python" --plugin-dir "$ROOT/build/dev/plugins" "$@"
