#!/usr/bin/env bash
# The README's second command: set up, build, then run every test — the C++ unit
# tests (ctest), the integration tests (pytest against the real server), and the
# bad-input and lifecycle tests again against an AddressSanitizer build, whose
# LeakSanitizer turns any leak into a non-zero exit that the tests check.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/build.sh"
cd "$ROOT"
PYTEST=("$ROOT/.venv/bin/python" -m pytest -q -p no:cacheprovider)

echo "== unit tests (ctest)"
ctest --preset dev -j2 --timeout 120

echo "== integration tests (pytest)"
FERRY_BIN="$ROOT/build/dev/ferry" "${PYTEST[@]}" tests/integration

echo "== bad input (REST and gRPC), shutdown and reload under AddressSanitizer (pytest)"
[[ -f build/asan/build.ninja ]] || cmake --preset asan >/dev/null
cmake --build --preset asan --target ferry
FERRY_BIN="$ROOT/build/asan/ferry" \
  ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS="suppressions=$ROOT/tests/lsan.supp" \
  "${PYTEST[@]}" tests/integration/test_raw_http.py tests/integration/test_hostile_input.py tests/integration/test_grpc.py \
  tests/integration/test_shutdown.py tests/integration/test_reload_under_load.py
