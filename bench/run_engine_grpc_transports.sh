#!/usr/bin/env bash
# The engine's gRPC gateway on its two transports, side by side (issue 10): two engines,
# one with --grpc-transport grpc++ and one with --grpc-transport native, each fronting
# one add_sub replica pinned to core BENCH_SERVER_CPU (idle while the other engine is
# measured). build/bench/grpc_load sends unary ModelInfer (one connection per call in
# flight) to the first engine's replica directly, then through each gateway, back to back
# per concurrency, and through nginx (one worker, grpc_pass, upstream keepalive) to the
# same replica; the gateways (--grpc-threads 1), nginx and the client share BENCH_CLIENT_CPU.
# Gateway CPU per call = user + system time of the engine process (its own threads,
# replicas not counted) over the calls answered; nginx's is its worker's.
#
# Environment:
#   BENCH_SECONDS           seconds per run (default 8)
#   BENCH_GRPC_CONCURRENCY  calls in flight (default "1 8")
#   BENCH_WARMUP_SECONDS    warm-up per target (default 2)
#   BENCH_SERVER_CPU        core of the replicas (default 0)
#   BENCH_CLIENT_CPU        core of the gateways and grpc_load (default 1)
#   FERRY_BIN, PYTHON       as run_engine_bench.sh
# Output: Markdown on stdout and in build/bench/engine-grpc-transports.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SECONDS_PER_RUN="${BENCH_SECONDS:-8}"
GRPC_CONCURRENCY="${BENCH_GRPC_CONCURRENCY:-1 8}"
WARMUP_SECONDS="${BENCH_WARMUP_SECONDS:-2}"
SERVER_CPU="${BENCH_SERVER_CPU:-0}"
CLIENT_CPU="${BENCH_CLIENT_CPU:-1}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
OUT_DIR="$ROOT/build/bench"
TRANSPORTS=(grpc++ native)

BENCH_TAG=engine-grpc-transports
source "$ROOT/bench/lib.sh"
require_tools taskset curl g++ protoc pkg-config nginx
[[ -x "$PYTHON" ]] || die "python not found at $PYTHON (scripts/setup.sh creates .venv)"

LOAD_BEFORE="$(cut -d" " -f1-3 /proc/loadavg)"
WORK="$(mktemp -d -t ferry-engine-grpc.XXXXXX)"
mkdir -p "$OUT_DIR"
build_ferry
build_grpc_load "$OUT_DIR"
"$PYTHON" "$ROOT/examples/generate_models.py" "$WORK/repo" >"$WORK/generate.log" 2>&1 \
  || { cat "$WORK/generate.log" >&2; die "generate_models.py failed"; }

proc_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }  # the process's own threads only
CLK_TCK="$(getconf CLK_TCK)"
declare -A ENGINE_PID GRPC_PORT
i=0
for t in "${TRANSPORTS[@]}"; do
  read -r http grpc admin metrics < <(free_ports 4)
  mkdir -p "$WORK/e$i"
  cat >"$WORK/e$i/spec.yaml" <<YAML
deployments:
- name: arith
  revisions:
  - name: v1
    models: [$WORK/repo/add_sub]
    serve: {http-threads: 1, intra-op-threads: 1}
  replicas: 1
  cpusets: ["$SERVER_CPU"]
YAML
  log "starting ferry engine --grpc-transport $t (gRPC :$grpc)"
  start_server "$WORK/e$i/engine.log" "$FERRY_BIN" engine --config "$WORK/e$i/spec.yaml" --state-dir "$WORK/e$i/state" \
    --http-address 127.0.0.1 --http-port "$http" --http-threads 1 --grpc-port "$grpc" --grpc-threads 1 \
    --grpc-transport "$t" --admin-port "$admin" --metrics-port "$metrics"
  ENGINE_PID[$t]=$SERVER_PID
  GRPC_PORT[$t]=$grpc
  wait_http "http://127.0.0.1:$http/v2/health/ready" "$SERVER_PID" "ferry engine ($t)" 60
  taskset -a -p -c "$CLIENT_CPU" "$SERVER_PID" >/dev/null
  if [[ $i == 0 ]]; then
    REPLICA_GRPC_PORT="$(curl -s "http://127.0.0.1:$admin/v1/status" | "$PYTHON" -c \
      'import json,sys; print(json.load(sys.stdin)["revisions"][0]["replicas"][0]["grpc_port"])')"
  fi
  i=$((i + 1))
done

read -r NGINX_PORT < <(free_ports 1)
{ nginx_conf_head "$WORK"; cat <<CONF
http {
  access_log off;
  upstream replica_grpc { server 127.0.0.1:$REPLICA_GRPC_PORT; keepalive 64; }
  server { listen 127.0.0.1:$NGINX_PORT http2; http2_max_requests 1000000; location / { grpc_pass grpc://replica_grpc; } }
}
CONF
} >"$WORK/nginx.conf"
start_server "$WORK/nginx.out" taskset -c "$CLIENT_CPU" nginx -p "$WORK" -c "$WORK/nginx.conf"
ENGINE_PID[nginx]=$SERVER_PID  # measured the same way: its one process
GRPC_PORT[nginx]=$NGINX_PORT
wait_port "$NGINX_PORT" "$SERVER_PID" nginx

target_of() { [[ $1 == direct ]] && echo "127.0.0.1:$REPLICA_GRPC_PORT" || echo "127.0.0.1:${GRPC_PORT[$1]}"; }
TARGETS=(direct "${TRANSPORTS[@]}" nginx)
log "sanity check: every path answers as onnxruntime computes (tritonclient.grpc, unary and stream)"
for t in "${TARGETS[@]}"; do
  "$PYTHON" "$ROOT/bench/grpc_check.py" check "$WORK" "$(target_of "$t")" "$WORK/repo/add_sub/1/model.onnx" >&2 \
    || die "gRPC through $t does not answer as onnxruntime computes"
done
run_load() { run_grpc_unary "$(target_of "$1")" "$2" "$3" "$4" "$CLIENT_CPU"; }  # TARGET CONC SECONDS LABEL
for t in "${TARGETS[@]}"; do run_load "$t" 8 "$WARMUP_SECONDS" "warmup-$t" >/dev/null; done
declare -A R
for c in $GRPC_CONCURRENCY; do
  for t in "${TARGETS[@]}"; do
    log "$t c=$c (${SECONDS_PER_RUN}s)"
    pid="${ENGINE_PID[$t]:-}"
    t0=0; [[ -n $pid ]] && t0="$(proc_ticks "$pid")"
    line="$(run_load "$t" "$c" "$SECONDS_PER_RUN" "$t/c$c")"
    t1=0; [[ -n $pid ]] && t1="$(proc_ticks "$pid")"
    log "  $line"
    for k in rps p50_us p99_us requests errors wrong timeouts; do R[$t/$c/$k]="$(field "$line" "$k")"; done
    R[$t/$c/cpu_us]="$(calc "($t1 - $t0) * 1000000 / $CLK_TCK / ${R[$t/$c/requests]}" 1)"
  done
done
LOAD_AFTER="$(cut -d" " -f1-3 /proc/loadavg)"
stop_servers

report() {
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), ferry $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) cores, load average before / after: $LOAD_BEFORE / $LOAD_AFTER"
  echo
  echo "gRPC ModelInfer (unary) add_sub v1 batch 1, build/bench/grpc_load on core $CLIENT_CPU, one connection per call in flight, ${SECONDS_PER_RUN}s per run; replicas on core $SERVER_CPU; each gateway --grpc-threads 1, and nginx (1 worker, grpc_pass, upstream keepalive), on core $CLIENT_CPU. Latencies µs; CPU = the proxy process's user + system time per call."
  echo
  echo "| calls | req/s direct / grpc++ / native / nginx | p50 / p99 direct | p50 / p99 grpc++ | p50 / p99 native | p50 / p99 nginx | added p50 grpc++ / native / nginx | CPU µs/call grpc++ / native / nginx | native / grpc++ | native / nginx | errors d/g/n/x |"
  echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  local c e
  for c in $GRPC_CONCURRENCY; do
    local d="direct/$c" g="grpc++/$c" n="native/$c" x="nginx/$c"
    e() { echo $(( ${R[$1/errors]:-0} + ${R[$1/wrong]:-0} + ${R[$1/timeouts]:-0} )); }
    echo "| $c | $(fmt "${R[$d/rps]}") / $(fmt "${R[$g/rps]}") / $(fmt "${R[$n/rps]}") / $(fmt "${R[$x/rps]}") | ${R[$d/p50_us]} / ${R[$d/p99_us]} | ${R[$g/p50_us]} / ${R[$g/p99_us]} | ${R[$n/p50_us]} / ${R[$n/p99_us]} | ${R[$x/p50_us]} / ${R[$x/p99_us]} | $(calc "${R[$g/p50_us]} - ${R[$d/p50_us]}" 0) / $(calc "${R[$n/p50_us]} - ${R[$d/p50_us]}" 0) / $(calc "${R[$x/p50_us]} - ${R[$d/p50_us]}" 0) | ${R[$g/cpu_us]} / ${R[$n/cpu_us]} / ${R[$x/cpu_us]} | $(calc "${R[$n/cpu_us]} / ${R[$g/cpu_us]}" 2) | $(calc "${R[$n/cpu_us]} / ${R[$x/cpu_us]}" 2) | $(e "$d")/$(e "$g")/$(e "$n")/$(e "$x") |"
  done
}
REPORT="$(report)"
printf '%s\n' "$REPORT" >"$OUT_DIR/engine-grpc-transports.md"
printf '%s\n' "$REPORT"

