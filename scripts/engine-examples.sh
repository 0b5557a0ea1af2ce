#!/usr/bin/env bash
# The examples of scripts/serve-examples.sh, run under `ferry engine` instead: set up,
# build, generate the example models, write a one-deployment spec for them into the state
# folder and start the engine on the default ports (gateway REST 8080 and gRPC 8081,
# admin 8090, metrics 8092), with 2 replicas autoscaled between 1 and 4. Extra arguments
# go to `ferry engine` (for example --http-port 9080). See docs/engine.md.
#
# Env: FERRY_ENGINE_STATE_DIR  state folder (default build/engine-examples)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/build.sh"
"$ROOT/.venv/bin/python" "$ROOT/examples/generate_models.py" "$ROOT/examples/models"
"$ROOT/.venv/bin/python" "$ROOT/examples/generate_runtime_models.py" "$ROOT/examples/models"
STATE="${FERRY_ENGINE_STATE_DIR:-$ROOT/build/engine-examples}"
mkdir -p "$STATE"
cat >"$STATE/spec.yaml" <<SPEC
deployments:
- name: examples
  revisions:
  - name: v1
    model_repository: $ROOT/examples/models
    serve: {python-executable: $ROOT/.venv/bin/python, plugin-dir: $ROOT/build/dev/plugins}
  replicas: {min: 1, max: 4, initial: 2}
SPEC
exec "$ROOT/build/dev/ferry" engine --config "$STATE/spec.yaml" --state-dir "$STATE" "$@"
