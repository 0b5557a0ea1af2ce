#!/usr/bin/env bash
# Installs dependencies (scripts/setup.sh) and builds ferry with the given CMake
# preset (default: dev) into build/<preset>/. Extra arguments go to setup.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PRESET="${FERRY_PRESET:-dev}"
"$ROOT/scripts/setup.sh" "$@"
cd "$ROOT"
# Configure only when needed: a fresh tree or a changed cache is handled by cmake itself.
if [[ ! -f "build/$PRESET/build.ninja" ]]; then
  cmake --preset "$PRESET" >/dev/null
fi
cmake --build --preset "$PRESET"
