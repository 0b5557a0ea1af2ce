#!/usr/bin/env bash
# Streaming benchmark: `ferry stream` (mlp_classifier, V2 JSON messages, 3 partitions) on a
# local Kafka 4.1.2 broker, exactly-once next to at-least-once in one run: messages/s over a
# backlog, and end-to-end p50/p99 at a fixed input rate (bench/stream_bench.py says how).
# Bounded in time: about 2 x (backlog + BENCH_SECONDS + start-ups), a few minutes.
#
# Environment: BENCH_BACKLOG (20000), BENCH_RATE (500 messages/s), BENCH_SECONDS (10),
#   BENCH_STREAM_BATCH (64, --batch-size), FERRY_BIN (build/dev/ferry), PYTHON (.venv/bin/python).
# Needs the Kafka jars (tools/kafka/install.sh). Output: a Markdown table on stdout and in
# build/bench/stream_results.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
export FERRY_BIN="${FERRY_BIN:-$ROOT/build/dev/ferry}"
[[ -x "$FERRY_BIN" ]] || { echo "no ferry binary at $FERRY_BIN (cmake --build --preset dev)" >&2; exit 1; }
[[ -e third_party/kafka/libs ]] || { echo "no Kafka jars: run tools/kafka/install.sh" >&2; exit 1; }
mkdir -p build/bench
timeout 900 "$PY" bench/stream_bench.py | tee build/bench/stream_results.md
