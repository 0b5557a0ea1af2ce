#!/usr/bin/env bash
# Observability cost, in one run:
#  1. Tracing on the request path: ferry serving the REST benchmark's model (add_sub v1,
#     batch 1, the JSON body of bench/make_bodies.py) at concurrency 64, side by side:
#       off       no --trace-endpoint
#       trace1    spans of 1% of the requests (--trace-sample-rate 0.01) exported over
#                 OTLP/HTTP to a real OpenTelemetry Collector (tools/otelcol)
#       trace100  spans of every request to the same collector
#     Three servers pinned to one core (--http-threads 1 --intra-op-threads 1; the
#     exporter thread shares it), wrk and the collector on another; the configurations
#     take turns, round after round, so they see the same machine weather.
#  2. Scrape cost of the metrics endpoint with many models: servers of 1, 10 and 100
#     models (copies of add_sub, each asked once so that its per-model series exist):
#     size of /metrics, its sample count, the scrape's wall time and the server's CPU
#     time per scrape (over BENCH_SCRAPES scrapes), with the share of a core that costs
#     at a 15 s and a 1 s scrape interval.
#
# Environment:
#   BENCH_SECONDS         seconds per wrk run (default 10)
#   BENCH_ROUNDS          rounds of the three tracing configurations (default 3)
#   BENCH_CONNECTIONS     wrk connections (default 64)
#   BENCH_SCRAPES         scrapes per server in part 2 (default 200)
#   BENCH_SERVER_CPU      core for the servers (default 0)
#   BENCH_CLIENT_CPU      core for wrk, the collector and curl (default 1)
#   FERRY_BIN             server binary (default build/dev/ferry, built if missing)
#   PYTHON                python with numpy, onnx (default .venv/bin/python)
#   BENCH_KEEP_WORKDIR=1  keep the temp folder after a clean run
#
# Output: a Markdown report on stdout and in build/bench/observability.md; progress on stderr.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
ROUNDS="${BENCH_ROUNDS:-3}"
CONNECTIONS="${BENCH_CONNECTIONS:-64}"
SCRAPES="${BENCH_SCRAPES:-200}"
SERVER_CPU="${BENCH_SERVER_CPU:-0}"
CLIENT_CPU="${BENCH_CLIENT_CPU:-1}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
OTELCOL="$ROOT/third_party/bin/otelcol"
OUT_DIR="$ROOT/build/bench"
INFER_PATH="/v2/models/add_sub/versions/1/infer"
CONFIGS=(off trace1 trace100)
SIZES=(1 10 100)

BENCH_TAG=observability-bench
source "$ROOT/bench/lib.sh"
require_tools wrk taskset curl
[[ -x "$PYTHON" ]] || die "python not found at $PYTHON (set PYTHON or create .venv with scripts/setup.sh)"
[[ -x "$OTELCOL" ]] || die "no OpenTelemetry Collector at $OTELCOL (tools/otelcol/install.sh; scripts/setup.sh runs it)"

LOAD_BEFORE="$(cut -d" " -f1-3 /proc/loadavg)"
WORK="$(mktemp -d -t ferry-observability-bench.XXXXXX)"
mkdir -p "$OUT_DIR"
build_ferry

log "generating the model repositories and request bodies in $WORK"
"$PYTHON" "$ROOT/examples/generate_models.py" "$WORK/repo" >"$WORK/generate.log" 2>&1 \
  || { cat "$WORK/generate.log" >&2; die "generate_models.py failed"; }
"$PYTHON" "$ROOT/bench/make_bodies.py" bodies "$WORK" >&2
"$PYTHON" - "$WORK" "${SIZES[@]}" <<'PYEOF'
import sys
from pathlib import Path
sys.path.insert(0, "examples")  # run from the repository root
import onnx
from generate_models import build_add_sub
model = build_add_sub(1)
for n in map(int, sys.argv[2:]):
    for i in range(n):
        d = Path(sys.argv[1]) / f"many_{n}" / f"add_sub_{i}" / "1"
        d.mkdir(parents=True)
        onnx.save(model, str(d / "model.onnx"))
PYEOF

# ---------------------------------------------------------------- part 1: tracing
read -r OTLP_PORT < <(free_ports 1)
log "starting the OpenTelemetry Collector on 127.0.0.1:$OTLP_PORT (core $CLIENT_CPU)"
start_server "$WORK/otelcol.log" env OTELCOL_HTTP_ENDPOINT="127.0.0.1:$OTLP_PORT" OTELCOL_OUTPUT="$WORK/traces.jsonl" \
  taskset -c "$CLIENT_CPU" "$OTELCOL" --config "$ROOT/tools/otelcol/test-config.yaml"
OTELCOL_PID=$SERVER_PID
for _ in $(seq 300); do
  [[ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d '{}' \
    "http://127.0.0.1:$OTLP_PORT/v1/traces" 2>/dev/null)" == 200 ]] && break
  kill -0 "$OTELCOL_PID" 2>/dev/null || { tail -n 20 "$WORK/otelcol.log" >&2; die "otelcol exited"; }
  sleep 0.1
done

repo_for() { echo "$WORK/repo"; }
flags_for() {  # CONFIG
  case "$1" in
    off) ;;
    trace1) echo "--trace-endpoint http://127.0.0.1:$OTLP_PORT/v1/traces --trace-sample-rate 0.01" ;;
    trace100) echo "--trace-endpoint http://127.0.0.1:$OTLP_PORT/v1/traces --trace-sample-rate 1" ;;
  esac
}

start_config_servers "${CONFIGS[@]}"

declare -A R
run_rounds "$ROUNDS" "$SECONDS_PER_RUN" "${CONFIGS[@]}"

declare -A SPANS
sleep 2  # the exporter's last batch
for cfg in "${CONFIGS[@]}"; do
  for result in exported dropped failed; do
    SPANS[$cfg/$result]="$(metric_sum "${MPORT[$cfg]}" ferry_trace_spans_total "result=\"$result\"")"
  done
done
for cfg in "${CONFIGS[@]}"; do kill -TERM "${PID[$cfg]}" 2>/dev/null || true; done

# ---------------------------------------------------------------- part 2: scrape cost
declare -A S
CLK_TCK="$(getconf CLK_TCK)"
for n in "${SIZES[@]}"; do
  read -r port mport < <(free_ports 2)
  log "scrape cost: ferry with $n models on core $SERVER_CPU"
  start_server "$WORK/ferry-many-$n.log" taskset -c "$SERVER_CPU" "$FERRY_BIN" serve \
    --model-repository "$WORK/many_$n" --http-address 127.0.0.1 --http-port "$port" --metrics-port "$mport" \
    --grpc-port 0 --http-threads 1 --intra-op-threads 1
  pid=$SERVER_PID
  wait_http "http://127.0.0.1:$port/v2/health/ready" "$pid" "ferry ($n models)" 120
  for ((i = 0; i < n; i++)); do
    code="$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary "@$WORK/json.req" \
      "http://127.0.0.1:$port/v2/models/add_sub_$i/infer")"
    [[ "$code" == 200 ]] || die "add_sub_$i answered $code"
  done
  curl -s "http://127.0.0.1:$mport/metrics" >"$WORK/metrics-$n.txt"
  S[$n/bytes]="$(wc -c <"$WORK/metrics-$n.txt")"
  S[$n/samples]="$(grep -vc '^#' "$WORK/metrics-$n.txt")"
  t0="$(tree_cpu_ticks "$pid")"
  times=()
  for ((i = 0; i < SCRAPES; i++)); do
    times+=("$(taskset -c "$CLIENT_CPU" curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$mport/metrics")")
  done
  t1="$(tree_cpu_ticks "$pid")"
  S[$n/wall_ms]="$(calc "$(median "${times[@]}") * 1000" 2)"
  S[$n/cpu_ms]="$(calc "($t1 - $t0) * 1000 / $CLK_TCK / $SCRAPES" 2)"
  kill -TERM "$pid" 2>/dev/null || true
done

report() {
  echo "# ferry observability cost"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), ferry $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || echo ' (src/ modified)'), $(nproc) cores, kernel $(uname -r), load average before the run: $LOAD_BEFORE"
  echo
  echo "## Tracing"
  echo
  echo "add_sub v1, batch 1, JSON body, no traceparent (the server samples). Servers on core $SERVER_CPU (--http-threads 1 --intra-op-threads 1; the span exporter's thread shares the core), wrk -c$CONNECTIONS and the OpenTelemetry Collector ($("$OTELCOL" --version 2>/dev/null | head -1)) on core $CLIENT_CPU, ${SECONDS_PER_RUN}s per run, $ROUNDS rounds, configurations in turn. Server CPU = user + system time of the server (all threads) per request."
  echo
  echo "| configuration | req/s (median of rounds) | rounds | vs off | p50 µs | p99 µs | server CPU µs/req | spans exported | dropped | failed | errors |"
  echo "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  local cfg off_rps rps n
  off_rps="$(median_of "$ROUNDS" off rps)"
  for cfg in "${CONFIGS[@]}"; do
    rps="$(median_of "$ROUNDS" "$cfg" rps)"
    echo "| $cfg | $(fmt "$rps") | $(rounds_of "$ROUNDS" "$cfg") | $(calc "100 * ($rps - $off_rps) / $off_rps" 1)% | $(fmt "$(median_of "$ROUNDS" "$cfg" p50)") | $(fmt "$(median_of "$ROUNDS" "$cfg" p99)") | $(median_of "$ROUNDS" "$cfg" cpu) | $(fmt "${SPANS[$cfg/exported]}") | $(fmt "${SPANS[$cfg/dropped]}") | $(fmt "${SPANS[$cfg/failed]}") | $(errors_of "$ROUNDS" "$cfg") |"
  done
  echo
  echo "## Scrape cost"
  echo
  echo "GET /metrics of servers with 1, 10 and 100 models (copies of add_sub, each asked once), server on core $SERVER_CPU, curl on core $CLIENT_CPU, $SCRAPES scrapes each, one after another. CPU = the server's user + system time per scrape (clock ticks of $((1000 / CLK_TCK)) ms, summed over the scrapes)."
  echo
  echo "| models | /metrics bytes | samples | scrape wall ms (median) | server CPU ms/scrape | share of a core at 15 s | at 1 s |"
  echo "|---:|---:|---:|---:|---:|---:|---:|"
  for n in "${SIZES[@]}"; do
    echo "| $n | ${S[$n/bytes]} | ${S[$n/samples]} | ${S[$n/wall_ms]} | ${S[$n/cpu_ms]} | $(calc "${S[$n/cpu_ms]} / 15000 * 100" 3)% | $(calc "${S[$n/cpu_ms]} / 1000 * 100" 2)% |"
  done
}

REPORT="$(report)"
printf '%s\n' "$REPORT" >"$OUT_DIR/observability.md"
printf '%s\n' "$REPORT"
log "report written to build/bench/observability.md"
