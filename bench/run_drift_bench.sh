#!/usr/bin/env bash
# Drift-detection quality and drift-update throughput: ferry's drift library (the code
# DriftMonitor runs) against alibi-detect's KSDrift on the same streams (scikit-learn's
# bundled breast_cancer, wine, digits, diabetes with injected shifts; see
# bench/drift_quality.py for the design and the readings).
#
# alibi-detect (from PyPI, pinned below; it pins numpy < 2 and pulls transformers, so it
# gets its own venv, outside the clone) lives in /var/cache/ferry/alibi-detect-<v>/venv,
# created once. It is a benchmark reference only (Business Source License): never vendored.
#
# Environment:
#   BENCH_REPLICATES  seeded replicates per (data set, n, shift) cell (default 200)
#   BENCH_CACHE       cache root (default /var/cache/ferry)
# Output: Markdown on stdout and in build/bench/drift_results.md; progress on stderr.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BENCH_TAG=drift-bench
source "$ROOT/bench/lib.sh"

REPLICATES="${BENCH_REPLICATES:-200}"
ALIBI_VERSION=0.13.0
VENV="${BENCH_CACHE:-/var/cache/ferry}/alibi-detect-$ALIBI_VERSION/venv"
PKGS=(alibi-detect==$ALIBI_VERSION scikit-learn==1.9.1)
OUT_DIR="$ROOT/build/bench"
WORK="$(mktemp -d -t ferry-drift-bench.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT_DIR"
require_tools g++ python3

if [[ "$(cat "$VENV/.pkgs" 2>/dev/null || true)" != "${PKGS[*]}" ]]; then
  log "installing ${PKGS[*]} into $VENV (a few minutes, once)"
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "${PKGS[@]}" >"$WORK/pip.log" 2>&1 \
    || { tail -n 30 "$WORK/pip.log" >&2; die "pip install of alibi-detect failed"; }
  echo "${PKGS[*]}" >"$VENV/.pkgs"
fi

log "compiling build/bench/drift_bench (-O2, the drift library's sources)"
g++ -O2 -std=c++20 -Wall -Wextra -I "$ROOT/src" "$ROOT/bench/drift_bench.cc" \
  "$ROOT"/src/monitoring/drift/{kll_sketch,sort_doubles,histogram,category_counts,feature_sketch,reference_ranks,stat_tests,drift_evaluation,profile_builder,sliding_window}.cc \
  "$ROOT/src/core/status.cc" -o "$OUT_DIR/drift_bench"

VERSIONS="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(", ".join(f"{p} {m.version(p)}" for p in ("alibi-detect", "scikit-learn", "scipy", "numpy")))')"
log "running $REPLICATES replicates per cell ($VERSIONS)"
{
  echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "Commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown); command: BENCH_REPLICATES=$REPLICATES bench/run_drift_bench.sh; $VERSIONS"
  echo
  TRANSFORMERS_VERBOSITY=error "$VENV/bin/python" "$ROOT/bench/drift_quality.py" "$OUT_DIR/drift_bench" "$WORK" "$REPLICATES" \
    2> >(grep -v "PyTorch, TensorFlow" >&2)
} | tee "$OUT_DIR/drift_results.md"
