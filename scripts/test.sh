#!/usr/bin/env bash
# The README's second command: set up, build, then run every test — the C++ unit
# tests (ctest) and the integration tests (pytest against the real server).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/build.sh"
cd "$ROOT"
echo "== unit tests (ctest)"
ctest --preset dev -j2 --timeout 120
echo "== integration tests (pytest)"
FERRY_BIN="$ROOT/build/dev/ferry" "$ROOT/.venv/bin/python" -m pytest tests/integration -q -p no:cacheprovider
