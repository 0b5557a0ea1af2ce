#!/usr/bin/env bash
# REST benchmark for ferry: add_sub v1 at batch 1, JSON and binary bodies, closed-loop
# concurrency (default 1 8 64), against two ceilings measured in the same run:
#   - in-process: the same model called through ONNX Runtime's C API in a loop
#     (build/bench/inprocess_ort), pinned to core 0;
#   - static HTTP: nginx, one worker pinned to core 0, answering the same POST with
#     `return 200` of the exact bytes ferry answers.
# ferry (one HTTP thread, one intra-op thread) is pinned to core 0 as well; wrk (one
# thread, N connections) runs on core 1.  See docs/benchmarks.md.
#
# Environment:
#   BENCH_SECONDS         seconds per wrk run (default 10)
#   BENCH_CONCURRENCY     connection counts (default "1 8 64")
#   BENCH_WARMUP_SECONDS  wrk warm-up per server and body (default 2)
#   BENCH_INPROC_SECONDS  in-process loop length (default 3)
#   BENCH_SERVER_CPU      core for ferry, nginx and the in-process loop (default 0)
#   BENCH_CLIENT_CPU      core for wrk (default 1)
#   FERRY_BIN             server binary (default build/dev/ferry, built if missing/stale)
#   PYTHON                python with numpy, onnx, onnxruntime, requests (default .venv/bin/python)
#   BENCH_KEEP_WORKDIR=1  keep the temp folder (logs, bodies, nginx.conf) after a clean run
#
# Output: a Markdown report on stdout and in build/bench/results.md; progress on stderr.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
CONCURRENCY="${BENCH_CONCURRENCY:-1 8 64}"
WARMUP_SECONDS="${BENCH_WARMUP_SECONDS:-2}"
INPROC_SECONDS="${BENCH_INPROC_SECONDS:-3}"
SERVER_CPU="${BENCH_SERVER_CPU:-0}"
CLIENT_CPU="${BENCH_CLIENT_CPU:-1}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
OUT_DIR="$ROOT/build/bench"
ORT_DIR="$ROOT/third_party/onnxruntime"
INFER_PATH="/v2/models/add_sub/versions/1/infer"

BENCH_TAG=bench
source "$ROOT/bench/lib.sh"

for tool in wrk nginx taskset curl g++; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (wrk: apt-get install -y wrk; nginx: apt-get install -y nginx-light)"
done
[[ -x "$PYTHON" ]] || die "python not found at $PYTHON (set PYTHON or create .venv with scripts/setup.sh)"
[[ -f "$ORT_DIR/include/onnxruntime_c_api.h" ]] || die "ONNX Runtime not found under $ORT_DIR"

LOAD_BEFORE="$(cut -d" " -f1-3 /proc/loadavg)"
WORK="$(mktemp -d -t ferry-bench.XXXXXX)"

# ---------------------------------------------------------------------------- build
mkdir -p "$OUT_DIR"
build_ferry

log "compiling build/bench/inprocess_ort"
g++ -O2 -std=c++17 -Wall -Wextra -I "$ORT_DIR/include" "$ROOT/bench/inprocess_ort.cc" \
  -o "$OUT_DIR/inprocess_ort" -L "$ORT_DIR/lib" -lonnxruntime -Wl,-rpath,"$ORT_DIR/lib"

# ---------------------------------------------------------------------------- inputs
log "generating the model repository and request bodies in $WORK"
"$PYTHON" "$ROOT/examples/generate_models.py" "$WORK/repo" >"$WORK/generate.log" 2>&1 \
  || { cat "$WORK/generate.log" >&2; die "generate_models.py failed"; }
MODEL="$WORK/repo/add_sub/1/model.onnx"
"$PYTHON" "$ROOT/bench/make_bodies.py" bodies "$WORK" >&2

read -r FERRY_PORT METRICS_PORT NGINX_JSON_PORT NGINX_BIN_PORT < <(free_ports 4)


# ---------------------------------------------------------------------------- servers
# --intra-op-threads 1 explicitly, to match the in-process program whatever the default
# (since 691caa8 the default follows CPU affinity and also resolves to 1 under taskset).
log "starting ferry on 127.0.0.1:$FERRY_PORT (core $SERVER_CPU)"
start_server "$WORK/ferry.log" taskset -c "$SERVER_CPU" "$FERRY_BIN" serve --model-repository "$WORK/repo" \
  --http-address 127.0.0.1 --http-port "$FERRY_PORT" --metrics-port "$METRICS_PORT" \
  --http-threads 1 --intra-op-threads 1
FERRY_PID=$SERVER_PID
wait_http "http://127.0.0.1:$FERRY_PORT/v2/health/ready" "$FERRY_PID" ferry

log "sanity check: ferry vs onnxruntime (Python)"
"$PYTHON" "$ROOT/bench/make_bodies.py" check "$WORK" "http://127.0.0.1:$FERRY_PORT$INFER_PATH" "$MODEL" >&2

log "starting nginx on 127.0.0.1:$NGINX_JSON_PORT (json) and :$NGINX_BIN_PORT (binary) (core $SERVER_CPU)"
"$PYTHON" "$ROOT/bench/make_bodies.py" nginx-conf "$WORK" "$NGINX_JSON_PORT" "$NGINX_BIN_PORT" "$INFER_PATH" \
  "$WORK/nginx.conf"
nginx -t -q -p "$WORK" -e "$WORK/nginx-error.log" -c "$WORK/nginx.conf" 2>&1 >&2 | grep -v '^$' >&2 || true
start_server "$WORK/nginx.out" taskset -c "$SERVER_CPU" nginx -p "$WORK" -e "$WORK/nginx-error.log" -c "$WORK/nginx.conf"
NGINX_PID=$SERVER_PID
wait_port "$NGINX_JSON_PORT" "$NGINX_PID" nginx
wait_port "$NGINX_BIN_PORT" "$NGINX_PID" nginx
"$PYTHON" "$ROOT/bench/make_bodies.py" check-static "$WORK" \
  "http://127.0.0.1:$NGINX_JSON_PORT$INFER_PATH" "http://127.0.0.1:$NGINX_BIN_PORT$INFER_PATH" >&2

# ---------------------------------------------------------------------------- in-process ceiling
log "in-process ceiling: ${INPROC_SECONDS}s of ONNX Runtime calls on core $SERVER_CPU"
INPROC_LINE="$(taskset -c "$SERVER_CPU" "$OUT_DIR/inprocess_ort" "$MODEL" "$INPROC_SECONDS")"
log "$INPROC_LINE"
INPROC_RATE="$(field "$INPROC_LINE" calls_per_s)"
INPROC_MEAN="$(field "$INPROC_LINE" mean_us)"
INPROC_P50="$(field "$INPROC_LINE" p50_us)"

# ---------------------------------------------------------------------------- wrk runs
url_for() {  # TARGET KIND
  case "$1:$2" in
    ferry:*) echo "http://127.0.0.1:$FERRY_PORT$INFER_PATH" ;;
    nginx:json) echo "http://127.0.0.1:$NGINX_JSON_PORT$INFER_PATH" ;;
    nginx:binary) echo "http://127.0.0.1:$NGINX_BIN_PORT$INFER_PATH" ;;
  esac
}
headers_for() {  # KIND
  if [[ $1 == json ]]; then echo "Content-Type: application/json"
  else echo "Content-Type: application/octet-stream|Inference-Header-Content-Length: $(cat "$WORK/binary.ihcl")"
  fi
}
run_wrk() {  # TARGET KIND CONNECTIONS SECONDS -> prints the WRKRESULT line
  local out
  out="$(BENCH_BODY="$WORK/$2.req" BENCH_HEADERS="$(headers_for "$2")" BENCH_LABEL="$1/$2/c$3" \
    taskset -c "$CLIENT_CPU" wrk -t1 -c"$3" -d"$4"s --timeout 5s -s "$ROOT/bench/wrk_post.lua" "$(url_for "$1" "$2")" 2>&1)" \
    || { printf '%s\n' "$out" >&2; die "wrk failed for $1/$2/c$3"; }
  grep '^WRKRESULT' <<<"$out" || { printf '%s\n' "$out" >&2; die "no result line from wrk for $1/$2/c$3"; }
}
ferry_alive() {
  kill -0 "$FERRY_PID" 2>/dev/null || die "ferry died during the benchmark (see the log tail below)"
}

log "warm-up: ${WARMUP_SECONDS}s per server and body at 8 connections"
FERRY_WRK_TOTAL=0
for kind in json binary; do
  for target in ferry nginx; do
    line="$(run_wrk "$target" "$kind" 8 "$WARMUP_SECONDS")"
    if [[ $target == ferry ]]; then FERRY_WRK_TOTAL=$((FERRY_WRK_TOTAL + $(field "$line" requests))); fi
  done
done
ferry_alive

CLK_TCK="$(getconf CLK_TCK)"
declare -A R
for c in $CONCURRENCY; do
  for kind in json binary; do
    for target in ferry nginx; do  # back to back, so both see the same machine weather
      log "$target $kind c=$c (${SECONDS_PER_RUN}s)"
      pid="$FERRY_PID"; [[ $target == nginx ]] && pid="$NGINX_PID"
      t0="$(tree_cpu_ticks "$pid")"
      line="$(run_wrk "$target" "$kind" "$c" "$SECONDS_PER_RUN")"
      t1="$(tree_cpu_ticks "$pid")"
      log "  $line"
      # Server CPU time (user + system, all threads) per request: less sensitive to
      # other tenants than wall-clock rates, since time spent waiting is not counted.
      R[$target/$kind/$c/cpu_us]="$(calc "($t1 - $t0) * 1000000 / $CLK_TCK / $(field "$line" requests)" 1)"
      for k in rps p50_us p99_us requests err_connect err_read err_write err_status err_timeout; do
        R[$target/$kind/$c/$k]="$(field "$line" "$k")"
      done
      if [[ $target == ferry ]]; then
        ferry_alive
        FERRY_WRK_TOTAL=$((FERRY_WRK_TOTAL + R[ferry/$kind/$c/requests]))
      fi
    done
  done
done

# ferry's own view after the run: did every request succeed?
METRICS="$(curl -s "http://127.0.0.1:$METRICS_PORT/metrics" || true)"
ferry_ok="$(awk '/^ferry_inference_requests_total\{/ && /model="add_sub"/ && /version="1"/ {s += $NF} END {print s + 0}' <<<"$METRICS")"
ferry_failures="$(awk '/^ferry_inference_failures_total\{/ && /model="add_sub"/ {s += $NF} END {print s + 0}' <<<"$METRICS")"

# ---------------------------------------------------------------------------- report
errors_of() {  # TARGET KIND C
  local e=0 k
  for k in err_connect err_read err_write err_status err_timeout; do
    e=$((e + ${R[$1/$2/$3/$k]:-0}))
  done
  echo "$e"
}

report() {
  echo "# ferry REST benchmark"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), ferry $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || echo ' (src/ modified)'), $(nproc) cores, kernel $(uname -r), load average before the run: $LOAD_BEFORE"
  echo
  echo "add_sub v1, batch 1 (two FP32 [1,16] inputs, both outputs requested; binary body asks binary outputs)."
  echo "Servers on core $SERVER_CPU (ferry: --http-threads 1 --intra-op-threads 1; nginx: 1 worker), wrk -t1 -cN on core $CLIENT_CPU, ${SECONDS_PER_RUN}s per run, keep-alive."
  echo "Latencies are wrk's, in µs (request written to response read, loopback included). Server CPU = user + system time of the server process (all threads) during the run, divided by the requests answered."
  echo
  echo "| body | conns | ferry req/s | ferry p50 µs | ferry p99 µs | nginx req/s | nginx p50 µs | nginx p99 µs | ferry/nginx req/s | server CPU µs/req ferry / nginx | errors ferry / nginx |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  local c kind
  for kind in json binary; do
    for c in $CONCURRENCY; do
      local f="ferry/$kind/$c" n="nginx/$kind/$c"
      echo "| $kind | $c | $(fmt "${R[$f/rps]}") | ${R[$f/p50_us]} | ${R[$f/p99_us]} | $(fmt "${R[$n/rps]}") | ${R[$n/p50_us]} | ${R[$n/p99_us]} | $(calc "100 * ${R[$f/rps]} / ${R[$n/rps]}" 0)% | ${R[$f/cpu_us]} / ${R[$n/cpu_us]} | $(errors_of ferry "$kind" "$c")/$(errors_of nginx "$kind" "$c") |"
    done
  done
  echo
  echo "In-process ceiling (ONNX Runtime C API, 1 intra-op thread, core $SERVER_CPU): $(fmt "$INPROC_RATE") calls/s, $(fmt "$INPROC_MEAN" 2) µs per call (p50 $(fmt "$INPROC_P50" 2) µs)."
  echo
  echo "Server overhead per request at 1 connection = ferry p50 − in-process per-call time:"
  echo
  echo "| body | ferry p50 µs | in-process µs | overhead µs | nginx p50 µs (loopback + HTTP floor) | ferry p50 − nginx p50 µs | goal |"
  echo "|---|---:|---:|---:|---:|---:|---|"
  if [[ " $CONCURRENCY " == *" 1 "* ]]; then
    for kind in json binary; do
      local over
      over="$(calc "${R[ferry/$kind/1/p50_us]} - $INPROC_MEAN" 1)"
      local goal="—"
      if [[ $kind == binary ]]; then
        goal="≤ 30 µs: $(awk -v o="$over" 'BEGIN { print (o <= 30 ? "met" : "missed") }')"
      fi
      echo "| $kind | ${R[ferry/$kind/1/p50_us]} | $(fmt "$INPROC_MEAN" 2) | $over | ${R[nginx/$kind/1/p50_us]} | $((R[ferry/$kind/1/p50_us] - R[nginx/$kind/1/p50_us])) | $goal |"
    done
  else
    echo "| (concurrency 1 not in BENCH_CONCURRENCY) | | | | | | |"
  fi
  echo
  local met=0 total=0
  for kind in json binary; do
    for c in $CONCURRENCY; do
      total=$((total + 1))
      if awk -v f="${R[ferry/$kind/$c/rps]}" -v n="${R[nginx/$kind/$c/rps]}" 'BEGIN { exit !(f >= 0.5 * n) }'; then
        met=$((met + 1))
      fi
    done
  done
  echo "Goal ≥ 50% of the static responder's request rate: met in $met of $total cases."
  echo
  echo "ferry's own counters after the run: $ferry_ok successful and $ferry_failures failed add_sub requests; wrk completed $FERRY_WRK_TOTAL requests against ferry (timed runs and warm-up; requests still in flight when wrk stops are answered but not counted by wrk)."
}

REPORT="$(report)"
printf '%s\n' "$REPORT" >"$OUT_DIR/results.md"
printf '%s\n' "$REPORT"
log "report written to build/bench/results.md"
