#!/usr/bin/env bash
# Start-up benchmark (runtimes as modules): `ferry --help`, `ferry runtimes`, `ferry
# serve` of 1 and of 100 small ONNX models (exec to first inference / to all ready, idle
# RSS and threads) and of one TorchScript model (with the PyTorch module's load time),
# for this tree's build and a baseline build side by side in one run (bench/startup_bench.py).
#
# Environment:
#   BENCH_RUNS            runs per binary, alternating (default 5)
#   BENCH_BASELINE_REV    git revision of the baseline (default 8b3be90, the last commit
#                         that linked every runtime into the binary); built once into
#                         build/bench-baseline-<rev> from a git worktree; "none" skips it
#   FERRY_BIN             this tree's binary (default build/dev/ferry, built if missing/stale)
#   BASELINE_BIN          a baseline binary to use instead of building one
#
# Output: a Markdown table on stdout (and build/bench/startup.md); progress on stderr.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BENCH_TAG=startup
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

WORK="$(mktemp -d /tmp/ferry-startup-bench.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
build_ferry
REV="${BENCH_BASELINE_REV:-8b3be90}"
args=(--ferry "modules=$FERRY_BIN")
if [[ -n "${BASELINE_BIN:-}" ]]; then
  args+=(--ferry "baseline=$BASELINE_BIN")
elif [[ "$REV" != none ]]; then
  base_dir="$ROOT/build/bench-baseline-$REV"
  if [[ ! -x "$base_dir/src/build/dev/ferry" ]]; then
    log "building the baseline ferry at $REV (once) in $base_dir"
    rm -rf "$base_dir"
    git worktree add --detach "$base_dir/src" "$REV" >/dev/null
    ln -s "$ROOT/third_party" "$base_dir/src/third_party"
    { cmake -S "$base_dir/src" --preset dev && cmake --build "$base_dir/src/build/dev" --target ferry; } \
      >"$base_dir/build.log" 2>&1 || { tail -n 40 "$base_dir/build.log" >&2; die "baseline build failed"; }
  fi
  args+=(--ferry "baseline=$base_dir/src/build/dev/ferry")
fi
mkdir -p build/bench
log "measuring (${BENCH_RUNS:-5} runs per binary)"
"$ROOT/.venv/bin/python" bench/startup_bench.py --work "$WORK" --runs "${BENCH_RUNS:-5}" "${args[@]}" \
  | tee build/bench/startup.md
