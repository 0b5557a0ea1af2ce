#!/usr/bin/env bash
# Monitoring cost on the request path: ferry serving the REST benchmark's model (add_sub v1,
# batch 1, the JSON body of bench/make_bodies.py) at concurrency 64, side by side in one run:
#   off       no monitoring
#   log10     payload logging of 10% of requests to a JSONL file
#   log100    payload logging of every request to a JSONL file
# Three servers, each pinned to the same core (--http-threads 1 --intra-op-threads 1; the
# monitoring thread shares that core), wrk on another core; the configurations take turns,
# round after round, so they see the same machine weather. Drift will be added here.
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
INFER_PATH="/v2/models/add_sub/versions/1/infer"
CONFIGS=(off log10 log100)

BENCH_TAG=monitoring-bench
source "$ROOT/bench/lib.sh"
require_tools wrk taskset curl
[[ -x "$PYTHON" ]] || die "python not found at $PYTHON (set PYTHON or create .venv with scripts/setup.sh)"

LOAD_BEFORE="$(cut -d" " -f1-3 /proc/loadavg)"
WORK="$(mktemp -d -t ferry-monitoring-bench.XXXXXX)"
mkdir -p "$OUT_DIR"
build_ferry

log "generating the model repository and request bodies in $WORK"
"$PYTHON" "$ROOT/examples/generate_models.py" "$WORK/repo" >"$WORK/generate.log" 2>&1 \
  || { cat "$WORK/generate.log" >&2; die "generate_models.py failed"; }
"$PYTHON" "$ROOT/bench/make_bodies.py" bodies "$WORK" >&2

flags_for() {  # CONFIG
  case "$1" in
    off) ;;
    log10) echo "--payload-log file:$WORK/log10/payloads.jsonl --payload-log-sample-rate 0.1" ;;
    log100) echo "--payload-log file:$WORK/log100/payloads.jsonl" ;;
  esac
}

declare -A PORT MPORT PID
for cfg in "${CONFIGS[@]}"; do
  read -r PORT[$cfg] MPORT[$cfg] < <(free_ports 2)
  log "starting ferry ($cfg) on 127.0.0.1:${PORT[$cfg]} (core $SERVER_CPU) $(flags_for "$cfg")"
  # shellcheck disable=SC2046
  start_server "$WORK/ferry-$cfg.log" taskset -c "$SERVER_CPU" "$FERRY_BIN" serve --model-repository "$WORK/repo" \
    --http-address 127.0.0.1 --http-port "${PORT[$cfg]}" --metrics-port "${MPORT[$cfg]}" --grpc-port 0 \
    --http-threads 1 --intra-op-threads 1 $(flags_for "$cfg")
  PID[$cfg]=$SERVER_PID
  wait_http "http://127.0.0.1:${PORT[$cfg]}/v2/health/ready" "${PID[$cfg]}" "ferry ($cfg)"
done

run() {  # CONFIG SECONDS -> WRKRESULT line
  run_wrk_post "http://127.0.0.1:${PORT[$1]}$INFER_PATH" "$WORK/json.req" "Content-Type: application/json" \
    "$1/c$CONNECTIONS" "$CONNECTIONS" "$2" "$CLIENT_CPU"
}

log "warm-up: 2 s per server"
for cfg in "${CONFIGS[@]}"; do run "$cfg" 2 >/dev/null; done

CLK_TCK="$(getconf CLK_TCK)"
declare -A R
for ((round = 1; round <= ROUNDS; round++)); do
  for cfg in "${CONFIGS[@]}"; do
    log "round $round: $cfg (${SECONDS_PER_RUN}s, $CONNECTIONS connections)"
    t0="$(tree_cpu_ticks "${PID[$cfg]}")"
    line="$(run "$cfg" "$SECONDS_PER_RUN")"
    t1="$(tree_cpu_ticks "${PID[$cfg]}")"
    kill -0 "${PID[$cfg]}" 2>/dev/null || die "ferry ($cfg) died during the benchmark"
    log "  $line"
    R[$cfg/$round/rps]="$(field "$line" rps)"
    R[$cfg/$round/p50]="$(field "$line" p50_us)"
    R[$cfg/$round/p99]="$(field "$line" p99_us)"
    R[$cfg/$round/cpu]="$(calc "($t1 - $t0) * 1000000 / $CLK_TCK / $(field "$line" requests)" 1)"
    errors=0
    for k in err_connect err_read err_write err_status err_timeout; do errors=$((errors + $(field "$line" "$k"))); done
    R[$cfg/$round/errors]=$errors
  done
done

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
metric() {  # CONFIG NAME FILTER -> sum of the matching samples
  curl -s "http://127.0.0.1:${MPORT[$1]}/metrics" | awk -v n="$2" -v f="$3" '$1 ~ "^"n"[{ ]" && index($0, f) { s += $NF } END { print s + 0 }'
}

report() {
  echo "# ferry monitoring cost"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), ferry $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || echo ' (src/ modified)'), $(nproc) cores, kernel $(uname -r), load average before the run: $LOAD_BEFORE"
  echo
  echo "add_sub v1, batch 1, JSON body (no request id: the server gives each monitored request a UUID). Servers on core $SERVER_CPU (--http-threads 1 --intra-op-threads 1; the monitoring thread shares the core), wrk -c$CONNECTIONS on core $CLIENT_CPU, ${SECONDS_PER_RUN}s per run, $ROUNDS rounds, configurations in turn. Server CPU = user + system time of the server (all threads) per request."
  echo
  echo "| configuration | req/s (median of rounds) | rounds | vs off | p50 µs | p99 µs | server CPU µs/req | events written | records dropped | errors |"
  echo "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"
  local cfg off_rps
  off_rps="$(median $(for ((r = 1; r <= ROUNDS; r++)); do echo "${R[off/$r/rps]}"; done))"
  for cfg in "${CONFIGS[@]}"; do
    local rps p50 p99 cpu all="" errs=0
    rps="$(median $(for ((r = 1; r <= ROUNDS; r++)); do echo "${R[$cfg/$r/rps]}"; done))"
    p50="$(median $(for ((r = 1; r <= ROUNDS; r++)); do echo "${R[$cfg/$r/p50]}"; done))"
    p99="$(median $(for ((r = 1; r <= ROUNDS; r++)); do echo "${R[$cfg/$r/p99]}"; done))"
    cpu="$(median $(for ((r = 1; r <= ROUNDS; r++)); do echo "${R[$cfg/$r/cpu]}"; done))"
    for ((r = 1; r <= ROUNDS; r++)); do all+="$(fmt "${R[$cfg/$r/rps]}") "; errs=$((errs + R[$cfg/$r/errors])); done
    echo "| $cfg | $(fmt "$rps") | ${all% } | $(calc "100 * ($rps - $off_rps) / $off_rps" 1)% | $(fmt "$p50") | $(fmt "$p99") | $cpu | $(fmt "$(metric "$cfg" ferry_payload_log_events_total 'result="written"')") | $(fmt "$(metric "$cfg" ferry_monitoring_records_dropped_total '')") | $errs |"
  done
  echo
  local l10
  l10="$(median $(for ((r = 1; r <= ROUNDS; r++)); do echo "${R[log10/$r/rps]}"; done))"
  echo "Goal: payload logging of 10% costs ≤ 5% of the throughput: $(awk -v a="$l10" -v b="$off_rps" 'BEGIN { print ((b - a) / b <= 0.05 ? "met" : "missed") }') ($(calc "100 * ($off_rps - $l10) / $off_rps" 1)% lower)."
}

REPORT="$(report)"
printf '%s\n' "$REPORT" >"$OUT_DIR/monitoring.md"
printf '%s\n' "$REPORT"
log "report written to build/bench/monitoring.md"
