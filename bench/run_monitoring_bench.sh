#!/usr/bin/env bash
# Monitoring cost on the request path: ferry serving the example mlp_classifier (ONNX,
# FP32 [1, 4] in, label and probabilities out; one row per request, JSON) at concurrency
# 64, side by side in one run:
#   off          no monitoring
#   log10        payload logging of 10% of requests to a JSONL file
#   drift_log10  drift on every feature and prediction (a profile built by `ferry profile
#                build` from 5,000 rows; windows of 1,000 rows) plus payload logging of
#                10% to a file: the issue's configuration
#   log100       payload logging of every request to a JSONL file
# Four servers, each pinned to the same core (--http-threads 1 --intra-op-threads 1; the
# monitoring thread shares that core), wrk on another core; the configurations take turns,
# round after round, so they see the same machine weather.
#
# Environment:
#   BENCH_SECONDS         seconds per wrk run (default 10)
#   BENCH_ROUNDS          rounds of the three configurations (default 3)
#   BENCH_CONNECTIONS     wrk connections (default 64)
#   BENCH_SERVER_CPU      core for the servers (default 0)
#   BENCH_CLIENT_CPU      core for wrk (default 1)
#   FERRY_BIN             server binary (default build/dev/ferry, built if missing)
#   PYTHON                python with numpy, onnx, onnxruntime, requests (default .venv/bin/python)
#   BENCH_KEEP_WORKDIR=1  keep the temp folder (logs, payload logs) after a clean run
#
# Output: a Markdown report on stdout and in build/bench/monitoring.md; progress on stderr.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
ROUNDS="${BENCH_ROUNDS:-3}"
CONNECTIONS="${BENCH_CONNECTIONS:-64}"
SERVER_CPU="${BENCH_SERVER_CPU:-0}"
CLIENT_CPU="${BENCH_CLIENT_CPU:-1}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
OUT_DIR="$ROOT/build/bench"
INFER_PATH="/v2/models/mlp_classifier/versions/1/infer"
CONFIGS=(off log10 drift_log10 log100)

BENCH_TAG=monitoring-bench
source "$ROOT/bench/lib.sh"
require_tools wrk taskset curl
[[ -x "$PYTHON" ]] || die "python not found at $PYTHON (set PYTHON or create .venv with scripts/setup.sh)"

LOAD_BEFORE="$(cut -d" " -f1-3 /proc/loadavg)"
WORK="$(mktemp -d -t ferry-monitoring-bench.XXXXXX)"
mkdir -p "$OUT_DIR"
build_ferry

make_monitoring_repos "$WORK" "$FERRY_BIN"

repo_for() { if [[ "$1" == drift_* ]]; then echo "$WORK/repo_drift"; else echo "$WORK/repo"; fi; }
flags_for() {  # CONFIG
  case "$1" in
    off) ;;
    log10 | drift_log10) echo "--payload-log file:$WORK/$1/payloads.jsonl --payload-log-sample-rate 0.1" ;;
    log100) echo "--payload-log file:$WORK/log100/payloads.jsonl" ;;
  esac
}

start_config_servers "${CONFIGS[@]}"

declare -A R
run_rounds "$ROUNDS" "$SECONDS_PER_RUN" "${CONFIGS[@]}"

metric() { metric_sum "${MPORT[$1]}" "$2" "$3"; }  # CONFIG NAME FILTER

report() {
  echo "# ferry monitoring cost"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), ferry $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || echo ' (src/ modified)'), $(nproc) cores, kernel $(uname -r), load average before the run: $LOAD_BEFORE"
  echo
  echo "mlp_classifier v1, one row per request, JSON body (no request id: the server gives each monitored request a UUID). Servers on core $SERVER_CPU (--http-threads 1 --intra-op-threads 1; the monitoring thread shares the core), wrk -c$CONNECTIONS on core $CLIENT_CPU, ${SECONDS_PER_RUN}s per run, $ROUNDS rounds, configurations in turn. Server CPU = user + system time of the server (all threads) per request."
  echo
  echo "| configuration | req/s (median of rounds) | rounds | vs off | p50 µs | p99 µs | server CPU µs/req | events written | records dropped | drift windows | errors |"
  echo "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  local cfg off_rps rps
  off_rps="$(median_of "$ROUNDS" off rps)"
  for cfg in "${CONFIGS[@]}"; do
    rps="$(median_of "$ROUNDS" "$cfg" rps)"
    echo "| $cfg | $(fmt "$rps") | $(rounds_of "$ROUNDS" "$cfg") | $(calc "100 * ($rps - $off_rps) / $off_rps" 1)% | $(fmt "$(median_of "$ROUNDS" "$cfg" p50)") | $(fmt "$(median_of "$ROUNDS" "$cfg" p99)") | $(median_of "$ROUNDS" "$cfg" cpu) | $(fmt "$(metric "$cfg" ferry_payload_log_events_total 'result="written"')") | $(fmt "$(metric "$cfg" ferry_monitoring_records_dropped_total '')") | $(fmt "$(metric "$cfg" ferry_drift_evaluations_total '')") | $(errors_of "$ROUNDS" "$cfg") |"
  done
  echo
  local goal
  goal="$(median_of "$ROUNDS" drift_log10 rps)"
  echo "Goal: drift on every feature plus payload logging of 10% costs ≤ 5% of the throughput: $(awk -v a="$goal" -v b="$off_rps" 'BEGIN { print ((b - a) / b <= 0.05 ? "met" : "missed") }') ($(calc "100 * ($off_rps - $goal) / $off_rps" 1)% lower than off)."
}

REPORT="$(report)"
printf '%s\n' "$REPORT" >"$OUT_DIR/monitoring.md"
printf '%s\n' "$REPORT"
log "report written to build/bench/monitoring.md"
