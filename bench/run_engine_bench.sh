#!/usr/bin/env bash
# Serving-engine benchmark (issue 10): what the engine's gateway costs, and how fast the
# engine reacts. In one run:
#   1. add_sub v1 (batch 1, JSON and binary bodies) sent by wrk, closed loop, to
#        direct   — the replica itself (a `ferry serve` child of the engine),
#        gateway  — the engine's REST gateway (--http-threads 1),
#        nginx    — nginx as a reverse proxy to the same replica (one worker,
#                   proxy_pass, upstream keepalive),
#      back to back per concurrency, with the replica on core BENCH_SERVER_CPU and the
#      proxies and wrk on BENCH_CLIENT_CPU: added p50/p99 over direct, and the proxy's
#      own CPU per request (the engine process's threads alone, replicas not counted;
#      nginx's worker);
#   2. the same over gRPC (ModelInfer, unary, build/bench/grpc_load: one connection per
#      call in flight), to the replica, through the engine's gRPC gateway
#      (--grpc-threads 1) and through nginx (grpc_pass, upstream keepalive), at
#      BENCH_GRPC_CONCURRENCY; same columns;
#   3. engine_events.py: first request from zero replicas (small ONNX model), the
#      autoscaler's reaction to a step in load with the documented defaults, and the
#      time to replace a replica killed with SIGKILL.
# See docs/benchmarks.md ("Serving engine").
#
# Environment:
#   BENCH_SECONDS         seconds per wrk run (default 8)
#   BENCH_CONCURRENCY     connection counts (default "1 8 64")
#   BENCH_GRPC_CONCURRENCY  gRPC calls in flight (default "1 8")
#   BENCH_WARMUP_SECONDS  wrk warm-up per target (default 2)
#   BENCH_REPEATS         repetitions of each event measurement (default 5)
#   BENCH_SERVER_CPU      core of the replica (default 0)
#   BENCH_CLIENT_CPU      core of the gateway, nginx and wrk (default 1)
#   FERRY_BIN             binary (default build/dev/ferry, built if missing)
#   PYTHON                python with numpy, onnx, requests (default .venv/bin/python)
#   BENCH_KEEP_WORKDIR=1  keep the temp folder after a clean run
# Output: Markdown on stdout and in build/bench/engine-results.md; progress on stderr.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SECONDS_PER_RUN="${BENCH_SECONDS:-8}"
CONCURRENCY="${BENCH_CONCURRENCY:-1 8 64}"
GRPC_CONCURRENCY="${BENCH_GRPC_CONCURRENCY:-1 8}"
WARMUP_SECONDS="${BENCH_WARMUP_SECONDS:-2}"
REPEATS="${BENCH_REPEATS:-5}"
SERVER_CPU="${BENCH_SERVER_CPU:-0}"
CLIENT_CPU="${BENCH_CLIENT_CPU:-1}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
OUT_DIR="$ROOT/build/bench"
INFER_PATH="/v2/models/add_sub/versions/1/infer"

BENCH_TAG=engine-bench
source "$ROOT/bench/lib.sh"
require_tools wrk nginx taskset curl g++ protoc pkg-config
[[ -x "$PYTHON" ]] || die "python not found at $PYTHON (scripts/setup.sh creates .venv)"

LOAD_BEFORE="$(cut -d" " -f1-3 /proc/loadavg)"
WORK="$(mktemp -d -t ferry-engine-bench.XXXXXX)"
mkdir -p "$OUT_DIR"
build_ferry
build_grpc_load "$OUT_DIR"

log "generating models and request bodies in $WORK"
"$PYTHON" "$ROOT/examples/generate_models.py" "$WORK/repo" >"$WORK/generate.log" 2>&1 \
  || { cat "$WORK/generate.log" >&2; die "generate_models.py failed"; }
"$PYTHON" "$ROOT/bench/make_bodies.py" bodies "$WORK" >&2

read -r GW_PORT GW_GRPC_PORT ADMIN_PORT METRICS_PORT NGINX_PORT NGINX_GRPC_PORT < <(free_ports 6)

# ---------------------------------------------------------------------------- part 1
cat >"$WORK/spec.yaml" <<YAML
deployments:
- name: arith
  revisions:
  - name: v1
    models: [repo/add_sub]
    serve: {http-threads: 1, intra-op-threads: 1}
  replicas: 1
  cpusets: ["$SERVER_CPU"]
YAML
log "starting ferry engine (gateway :$GW_PORT, admin :$ADMIN_PORT)"
start_server "$WORK/engine.log" "$FERRY_BIN" engine --config "$WORK/spec.yaml" --state-dir "$WORK/state" \
  --http-address 127.0.0.1 --http-port "$GW_PORT" --http-threads 1 --grpc-port "$GW_GRPC_PORT" --grpc-threads 1 \
  --admin-port "$ADMIN_PORT" --metrics-port "$METRICS_PORT"
ENGINE_PID=$SERVER_PID
wait_http "http://127.0.0.1:$GW_PORT/v2/health/ready" "$ENGINE_PID" "ferry engine"
# The spec pins the replica; the engine's own threads go to the client core now (pinned
# before, its cpusets check would refuse core SERVER_CPU).
taskset -a -p -c "$CLIENT_CPU" "$ENGINE_PID" >/dev/null
read -r REPLICA_PORT REPLICA_GRPC_PORT < <(curl -s "http://127.0.0.1:$ADMIN_PORT/v1/status" | "$PYTHON" -c \
  'import json,sys; r = json.load(sys.stdin)["revisions"][0]["replicas"][0]; print(r["port"], r["grpc_port"])')
log "replica on 127.0.0.1:$REPLICA_PORT (gRPC :$REPLICA_GRPC_PORT)"

{ nginx_conf_head "$WORK"; cat <<CONF
http {
  access_log off;
  client_body_temp_path $WORK/nginx-body;
  proxy_temp_path $WORK/nginx-proxy;
  client_max_body_size 64m;
  client_body_buffer_size 1m;
  upstream replica { server 127.0.0.1:$REPLICA_PORT; keepalive 64; }
  upstream replica_grpc { server 127.0.0.1:$REPLICA_GRPC_PORT; keepalive 64; }
  server {
    listen 127.0.0.1:$NGINX_GRPC_PORT http2;
    http2_max_requests 1000000;
    location / { grpc_pass grpc://replica_grpc; }
  }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    keepalive_requests 1000000;
    location / {
      proxy_pass http://replica;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
CONF
} >"$WORK/nginx.conf"
start_server "$WORK/nginx.out" taskset -c "$CLIENT_CPU" nginx -p "$WORK" -c "$WORK/nginx.conf"
NGINX_PID=$SERVER_PID
wait_port "$NGINX_PORT" "$NGINX_PID" nginx

url_for() {  # TARGET
  case "$1" in
    direct) echo "http://127.0.0.1:$REPLICA_PORT$INFER_PATH" ;;
    gateway) echo "http://127.0.0.1:$GW_PORT$INFER_PATH" ;;
    nginx) echo "http://127.0.0.1:$NGINX_PORT$INFER_PATH" ;;
  esac
}
headers_for() {  # KIND
  if [[ $1 == json ]]; then echo "Content-Type: application/json"
  else echo "Content-Type: application/octet-stream|Inference-Header-Content-Length: $(cat "$WORK/binary.ihcl")"
  fi
}
for target in direct gateway nginx; do  # every path answers the same bytes
  for kind in json binary; do
    hdr=(); IFS='|' read -r -a parts <<<"$(headers_for "$kind")"
    for h in "${parts[@]}"; do hdr+=(-H "$h"); done
    code="$(curl -s -o "$WORK/check.$target.$kind" -w '%{http_code}' -X POST --data-binary @"$WORK/$kind.req" \
      "${hdr[@]}" "$(url_for "$target")")"
    [[ $code == 200 ]] || die "$target answered $code to the $kind body"
    cmp -s "$WORK/check.direct.$kind" "$WORK/check.$target.$kind" || die "$target's $kind answer differs from the replica's"
  done
done
proc_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }  # the process's own threads only
CLK_TCK="$(getconf CLK_TCK)"

for target in direct gateway nginx; do
  run_wrk_post "$(url_for "$target")" "$WORK/json.req" "$(headers_for json)" "warmup-$target" 8 "$WARMUP_SECONDS" "$CLIENT_CPU" >/dev/null
done
declare -A R
for c in $CONCURRENCY; do
  for kind in json binary; do
    for target in direct gateway nginx; do
      log "$target $kind c=$c (${SECONDS_PER_RUN}s)"
      pid=""; [[ $target == gateway ]] && pid=$ENGINE_PID; [[ $target == nginx ]] && pid=$NGINX_PID
      t0=0; [[ -n $pid ]] && t0="$(proc_ticks "$pid")"
      line="$(run_wrk_post "$(url_for "$target")" "$WORK/$kind.req" "$(headers_for "$kind")" "$target/$kind/c$c" \
        "$c" "$SECONDS_PER_RUN" "$CLIENT_CPU")"
      t1=0; [[ -n $pid ]] && t1="$(proc_ticks "$pid")"
      log "  $line"
      for k in rps p50_us p99_us requests err_connect err_read err_write err_status err_timeout; do
        R[$target/$kind/$c/$k]="$(field "$line" "$k")"
      done
      R[$target/$kind/$c/cpu_us]="$(calc "($t1 - $t0) * 1000000 / $CLK_TCK / ${R[$target/$kind/$c/requests]}" 1)"
      kill -0 "$ENGINE_PID" 2>/dev/null || die "the engine died during the benchmark"
    done
  done
done
# gRPC: the same three paths, ModelInfer with one connection per call in flight.
grpc_target() {  # TARGET -> host:port
  case "$1" in
    direct) echo "127.0.0.1:$REPLICA_GRPC_PORT" ;;
    gateway) echo "127.0.0.1:$GW_GRPC_PORT" ;;
    nginx) echo "127.0.0.1:$NGINX_GRPC_PORT" ;;
  esac
}
log "sanity check: gRPC through every path vs onnxruntime (tritonclient.grpc)"
for target in direct gateway nginx; do
  "$PYTHON" "$ROOT/bench/grpc_check.py" check "$WORK" "$(grpc_target "$target")" "$WORK/repo/add_sub/1/model.onnx" >&2 \
    || die "gRPC through $target does not answer as onnxruntime computes"
done
run_grpc_load() { run_grpc_unary "$(grpc_target "$1")" "$2" "$3" "$4" "$CLIENT_CPU"; }  # TARGET CONC SECONDS LABEL
for target in direct gateway nginx; do run_grpc_load "$target" 8 "$WARMUP_SECONDS" "warmup-$target" >/dev/null; done
for c in $GRPC_CONCURRENCY; do
  for target in direct gateway nginx; do
    log "$target grpc c=$c (${SECONDS_PER_RUN}s)"
    pid=""; [[ $target == gateway ]] && pid=$ENGINE_PID; [[ $target == nginx ]] && pid=$NGINX_PID
    t0=0; [[ -n $pid ]] && t0="$(proc_ticks "$pid")"
    line="$(run_grpc_load "$target" "$c" "$SECONDS_PER_RUN" "$target/grpc/c$c")"
    t1=0; [[ -n $pid ]] && t1="$(proc_ticks "$pid")"
    log "  $line"
    for k in rps p50_us p99_us requests errors wrong timeouts; do R[$target/grpc/$c/$k]="$(field "$line" "$k")"; done
    R[$target/grpc/$c/cpu_us]="$(calc "($t1 - $t0) * 1000000 / $CLK_TCK / ${R[$target/grpc/$c/requests]}" 1)"
    kill -0 "$ENGINE_PID" 2>/dev/null || die "the engine died during the benchmark"
  done
done
GW_METRICS="$(curl -s "http://127.0.0.1:$METRICS_PORT/metrics" || true)"
stop_servers

# ---------------------------------------------------------------------------- part 2
log "event timings (cold start, step in load, replacement), $REPEATS repeats each"
EVENTS="$("$PYTHON" "$ROOT/bench/engine_events.py" --ferry "$FERRY_BIN" --work "$WORK" --repo "$WORK/repo" \
  --repeats "$REPEATS" --client-cpu "$CLIENT_CPU")" || die "engine_events.py failed"

errors_of() {  # TARGET KIND C
  local e=0 k
  for k in err_connect err_read err_write err_status err_timeout errors wrong timeouts; do e=$((e + ${R[$1/$2/$3/$k]:-0})); done
  echo "$e"
}
report() {
  echo "# ferry engine benchmark"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), ferry $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) cores, kernel $(uname -r), load average before the run: $LOAD_BEFORE"
  echo
  echo "add_sub v1, batch 1. Replica (\`ferry serve\` --http-threads 1 --intra-op-threads 1) on core $SERVER_CPU; the gateway (engine --http-threads 1), nginx (1 worker, proxy_pass, upstream keepalive) and wrk (-t1, -t2 from 32 connections) share core $CLIENT_CPU. ${SECONDS_PER_RUN}s per run, keep-alive, back to back. Latencies are wrk's (µs); proxy CPU = user + system time of the proxy process (engine: all its threads, replicas not counted) per request."
  echo
  echo "| body | conns | direct req/s | gateway req/s | nginx req/s | gateway / direct | direct p50 / p99 | gateway p50 / p99 | nginx p50 / p99 | added p50 gateway / nginx | proxy CPU µs/req gateway / nginx | errors d/g/n |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  local c kind
  for kind in json binary; do
    for c in $CONCURRENCY; do
      local d="direct/$kind/$c" g="gateway/$kind/$c" n="nginx/$kind/$c"
      echo "| $kind | $c | $(fmt "${R[$d/rps]}") | $(fmt "${R[$g/rps]}") | $(fmt "${R[$n/rps]}") | $(calc "100 * ${R[$g/rps]} / ${R[$d/rps]}" 0)% | ${R[$d/p50_us]} / ${R[$d/p99_us]} | ${R[$g/p50_us]} / ${R[$g/p99_us]} | ${R[$n/p50_us]} / ${R[$n/p99_us]} | $((R[$g/p50_us] - R[$d/p50_us])) / $((R[$n/p50_us] - R[$d/p50_us])) | ${R[$g/cpu_us]} / ${R[$n/cpu_us]} | $(errors_of direct "$kind" "$c")/$(errors_of gateway "$kind" "$c")/$(errors_of nginx "$kind" "$c") |"
    done
  done
  echo
  echo "gRPC ModelInfer (unary), build/bench/grpc_load on core $CLIENT_CPU, one connection per call in flight; the gateway is the engine's gRPC gateway (--grpc-threads 1), nginx proxies with grpc_pass and upstream keepalive. Same columns."
  echo
  echo "| protocol | calls | direct req/s | gateway req/s | nginx req/s | gateway / direct | direct p50 / p99 | gateway p50 / p99 | nginx p50 / p99 | added p50 gateway / nginx | proxy CPU µs/req gateway / nginx | errors d/g/n |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for c in $GRPC_CONCURRENCY; do
    local d="direct/grpc/$c" g="gateway/grpc/$c" n="nginx/grpc/$c"
    echo "| grpc | $c | $(fmt "${R[$d/rps]}") | $(fmt "${R[$g/rps]}") | $(fmt "${R[$n/rps]}") | $(calc "100 * ${R[$g/rps]} / ${R[$d/rps]}" 0)% | ${R[$d/p50_us]} / ${R[$d/p99_us]} | ${R[$g/p50_us]} / ${R[$g/p99_us]} | ${R[$n/p50_us]} / ${R[$n/p99_us]} | $(calc "${R[$g/p50_us]} - ${R[$d/p50_us]}" 0) / $(calc "${R[$n/p50_us]} - ${R[$d/p50_us]}" 0) | ${R[$g/cpu_us]} / ${R[$n/cpu_us]} | $(errors_of direct grpc "$c")/$(errors_of gateway grpc "$c")/$(errors_of nginx grpc "$c") |"
  done
  echo
  local retries
  retries="$(awk '/^ferry_engine_upstream_retries_total/ {s += $NF} END {print s + 0}' <<<"$GW_METRICS")"
  echo "Gateway upstream retries during the run: $retries."
  echo
  printf '%s\n' "$EVENTS"
}
REPORT="$(report)"
printf '%s\n' "$REPORT" >"$OUT_DIR/engine-results.md"
printf '%s\n' "$REPORT"
log "report written to build/bench/engine-results.md"
