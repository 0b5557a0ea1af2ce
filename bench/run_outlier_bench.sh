#!/usr/bin/env bash
# Per-request cost of outlier scores (monitoring.outliers, docs/monitoring.md "Outliers"):
# bench/outlier_bench.cc times OutlierMonitor::Annotate, the code ferry serve runs on the
# request path, beside the drift library's per-request update of the same requests (the
# monitoring thread's work for drift), in one run, as ns per request and their ratio.
#
# Needs the dev build (cmake --build --preset dev): it links that build's libraries.
# Output: Markdown on stdout and in build/bench/outlier_results.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BENCH_TAG=outlier-bench
source "$ROOT/bench/lib.sh"
require_tools g++

BUILD="$ROOT/build/dev"
OUT_DIR="$ROOT/build/bench"
WORK="$(mktemp -d -t ferry-outlier-bench.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT_DIR"
for lib in monitoring/outliers/libferry_outliers.a monitoring/drift/libferry_drift.a core/libferry_core.a; do
  [[ -f "$BUILD/src/$lib" ]] || die "$BUILD/src/$lib missing: build with 'cmake --build --preset dev' first"
done

log "compiling build/bench/outlier_bench (-O2, against build/dev's libraries)"
g++ -O2 -std=c++20 -Wall -Wextra -I "$ROOT/src" "$ROOT/bench/outlier_bench.cc" \
  "$BUILD/src/monitoring/outliers/libferry_outliers.a" "$BUILD/src/monitoring/drift/libferry_drift.a" \
  "$BUILD/src/core/libferry_core.a" -lprometheus-cpp-core -lpthread -o "$OUT_DIR/outlier_bench"

{
  echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "Commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown); command: bench/run_outlier_bench.sh"
  echo
  "$OUT_DIR/outlier_bench" "$WORK"
} | tee "$OUT_DIR/outlier_results.md"
