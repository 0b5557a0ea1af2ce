# Shared pieces of the bench/run_*_bench.sh scripts. Source it after setting
# BENCH_TAG (the log prefix) and ROOT (the repository root):
#   log/die, free_ports, wait_http/wait_port, start_server/stop_servers (with a cleanup
#   trap that stops every server started and keeps WORK on failure), build_ferry,
#   run_wrk_post, field/calc/fmt, tree_cpu_ticks, median, and run_rounds with
#   median_of/rounds_of/errors_of for round-robin comparisons of configurations.
# Bash only; uses set -euo pipefail semantics of the caller.

log() { printf '[%s] %s\n' "${BENCH_TAG:-bench}" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "${BENCH_TAG:-bench}" "$*" >&2; exit 1; }

require_tools() {  # TOOL... (a hint for each missing one comes from the caller's message)
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (scripts/setup.sh, or apt-get install -y $tool)"
  done
}

# N free TCP ports on 127.0.0.1, space-separated (held open together so they differ).
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
PY
}

wait_http() {  # URL PID WHAT [SECONDS]: until URL answers 200
  local i
  for ((i = 0; i < ${4:-30} * 10; i++)); do
    kill -0 "$2" 2>/dev/null || die "$3 exited during startup"
    [[ "$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)" == 200 ]] && return 0
    sleep 0.1
  done
  die "$3 did not answer 200 on $1 within ${4:-30} s"
}
wait_port() {  # PORT PID WHAT: until something listens on 127.0.0.1:PORT
  local i
  for ((i = 0; i < 300; i++)); do
    kill -0 "$2" 2>/dev/null || die "$3 exited during startup"
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  die "$3 is not listening on port $1 after 30 s"
}

# Servers started with start_server are stopped (TERM, then KILL after 5 s) on exit;
# on failure the tail of each one's log is shown and WORK is kept.
declare -a BENCH_PIDS=() BENCH_LOGS=()
start_server() {  # LOGFILE CMD... ; sets SERVER_PID
  "${@:2}" </dev/null >"$1" 2>&1 &
  SERVER_PID=$!
  BENCH_PIDS+=("$SERVER_PID")
  BENCH_LOGS+=("$1")
}
stop_servers() {
  local pid i
  for pid in "${BENCH_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${BENCH_PIDS[@]}"; do
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  BENCH_PIDS=()
}
bench_cleanup() {
  local rc=$? f
  stop_servers
  if [[ $rc -ne 0 ]]; then
    for f in "${BENCH_LOGS[@]}"; do
      [[ -f "$f" ]] && { log "--- last lines of $f ---"; tail -n 30 "$f" >&2 || true; }
    done
    log "failed (exit $rc); work folder kept: ${WORK:-}"
  elif [[ "${BENCH_KEEP_WORKDIR:-0}" == 1 ]]; then
    log "work folder kept: ${WORK:-}"
  elif [[ -n "${WORK:-}" ]]; then
    rm -rf "$WORK"
  fi
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

# FERRY_BIN, or build/dev/ferry built with the dev preset (log in WORK/build.log).
build_ferry() {
  if [[ -z "${FERRY_BIN:-}" ]]; then
    log "building ferry (cmake dev preset)"
    { cmake --preset dev && cmake --build --preset dev --target ferry; } >"$WORK/build.log" 2>&1 \
      || { tail -n 40 "$WORK/build.log" >&2; die "ferry build failed"; }
    FERRY_BIN="$ROOT/build/dev/ferry"
  fi
  [[ -x "$FERRY_BIN" ]] || die "ferry binary not executable: $FERRY_BIN"
}

# One closed-loop wrk run posting BODY_FILE to URL; prints wrk_post.lua's WRKRESULT line.
run_wrk_post() {  # URL BODY_FILE HEADERS LABEL CONNECTIONS SECONDS CPU
  local out threads=1
  (($5 >= 32)) && threads=2
  out="$(BENCH_BODY="$2" BENCH_HEADERS="$3" BENCH_LABEL="$4" \
    taskset -c "$7" wrk -t"$threads" -c"$5" -d"$6"s --timeout 10s -s "$ROOT/bench/wrk_post.lua" "$1" 2>&1)" \
    || { printf '%s\n' "$out" >&2; die "wrk failed for $4"; }
  grep '^WRKRESULT' <<<"$out" || { printf '%s\n' "$out" >&2; die "no result line from wrk for $4"; }
}

field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1"; }          # LINE KEY -> value of KEY=value
calc() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }              # EXPR [DECIMALS]
fmt() { awk -v x="$1" -v d="${2:-0}" 'BEGIN { printf "%.*f", d, x }'; }
# User + system clock ticks used so far by PID and every live process below it (model
# worker processes included); read before and after a run, divide by CLK_TCK.
tree_cpu_ticks() {  # PID
  local total=0 pid child
  local -a todo=("$1")
  while ((${#todo[@]})); do
    pid="${todo[0]}"; todo=("${todo[@]:1}")
    total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    for child in $(pgrep -P "$pid" || true); do todo+=("$child"); done
  done
  echo "$total"
}

# Median of the numbers given as arguments.
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

# One single-core `ferry serve` per configuration, for a round-robin comparison: the
# caller sets WORK, FERRY_BIN, SERVER_CPU, CLIENT_CPU, CONNECTIONS, INFER_PATH (posted
# WORK/json.req as JSON) and defines `flags_for CONFIG` (extra serve flags) and
# `repo_for CONFIG` (its model repository). Fills PORT, MPORT and PID (CONFIG -> value),
# defines `run CONFIG SECONDS` for run_rounds, and warms every server up for 2 s.
declare -A PORT MPORT PID
start_config_servers() {  # CONFIG...
  local cfg
  for cfg in "$@"; do
    read -r PORT[$cfg] MPORT[$cfg] < <(free_ports 2)
    log "starting ferry ($cfg) on 127.0.0.1:${PORT[$cfg]} (core $SERVER_CPU) $(flags_for "$cfg")"
    # shellcheck disable=SC2046
    start_server "$WORK/ferry-$cfg.log" taskset -c "$SERVER_CPU" "$FERRY_BIN" serve --model-repository "$(repo_for "$cfg")" \
      --http-address 127.0.0.1 --http-port "${PORT[$cfg]}" --metrics-port "${MPORT[$cfg]}" --grpc-port 0 \
      --http-threads 1 --intra-op-threads 1 $(flags_for "$cfg")
    PID[$cfg]=$SERVER_PID
    wait_http "http://127.0.0.1:${PORT[$cfg]}/v2/health/ready" "${PID[$cfg]}" "ferry ($cfg)"
  done
  log "warm-up: 2 s per server"
  for cfg in "$@"; do run "$cfg" 2 >/dev/null; done
}
run() {  # CONFIG SECONDS -> WRKRESULT line
  run_wrk_post "http://127.0.0.1:${PORT[$1]}$INFER_PATH" "$WORK/json.req" "Content-Type: application/json" \
    "$1/c$CONNECTIONS" "$CONNECTIONS" "$2" "$CLIENT_CPU"
}
# Sum of the samples of metric NAME whose line contains FILTER, scraped from a metrics port.
metric_sum() {  # METRICS_PORT NAME FILTER
  curl -s "http://127.0.0.1:$1/metrics" | awk -v n="$2" -v f="$3" '$1 ~ "^"n"[{ ]" && index($0, f) { s += $NF } END { print s + 0 }'
}

# Round-robin comparison of configurations under closed-loop wrk load, so that every
# configuration sees the same machine weather. Needs `run` and PID (start_config_servers,
# or the caller's own) and `declare -A R`; run_rounds fills R[CONFIG/ROUND/{rps,p50,p99,cpu,errors}]
# (cpu: the server's user + system µs per request, all threads and children).
run_rounds() {  # ROUNDS SECONDS CONFIG...
  local rounds="$1" secs="$2" round cfg line t0 t1 errors k clk
  shift 2
  clk="$(getconf CLK_TCK)"
  for ((round = 1; round <= rounds; round++)); do
    for cfg in "$@"; do
      log "round $round: $cfg (${secs}s)"
      t0="$(tree_cpu_ticks "${PID[$cfg]}")"
      line="$(run "$cfg" "$secs")"
      t1="$(tree_cpu_ticks "${PID[$cfg]}")"
      kill -0 "${PID[$cfg]}" 2>/dev/null || die "server ($cfg) died during the benchmark"
      log "  $line"
      R[$cfg/$round/rps]="$(field "$line" rps)"
      R[$cfg/$round/p50]="$(field "$line" p50_us)"
      R[$cfg/$round/p99]="$(field "$line" p99_us)"
      R[$cfg/$round/cpu]="$(calc "($t1 - $t0) * 1000000 / $clk / $(field "$line" requests)" 1)"
      errors=0
      for k in err_connect err_read err_write err_status err_timeout; do errors=$((errors + $(field "$line" "$k"))); done
      R[$cfg/$round/errors]=$errors
    done
  done
}

# Median over rounds 1..ROUNDS of R[CONFIG/round/KEY]; rounds_of lists them, errors_of sums errors.
median_of() { local r v=(); for ((r = 1; r <= $1; r++)); do v+=("${R[$2/$r/$3]}"); done; median "${v[@]}"; }
rounds_of() { local r s=""; for ((r = 1; r <= $1; r++)); do s+="$(fmt "${R[$2/$r/rps]}") "; done; echo "${s% }"; }
errors_of() { local r e=0; for ((r = 1; r <= $1; r++)); do e=$((e + R[$2/$r/errors])); done; echo "$e"; }

# MLServer from PyPI in its own venv (build/bench/mlserver-venv), for the benchmarks that
# compare with it. uvloop pinned below 0.22: with 0.22+ MLServer 1.7.1's workers die at start
# ("There is no current event loop in thread 'MainThread'").
MLSERVER_PKGS=(mlserver==1.7.1 mlserver-sklearn==1.7.1 mlserver-xgboost==1.7.1 uvloop==0.21.0)
ensure_mlserver_venv() {  # VENV LOGDIR: installs MLSERVER_PKGS once (again when the pins change)
  if [[ "$(cat "$1/.pkgs" 2>/dev/null || true)" != "${MLSERVER_PKGS[*]}" ]]; then
    log "installing ${MLSERVER_PKGS[*]} into $1 (a few minutes, once)"
    python3 -m venv "$1"
    "$1/bin/pip" install -q --disable-pip-version-check "${MLSERVER_PKGS[@]}" >"$2/pip.log" 2>&1 \
      || { tail -n 30 "$2/pip.log" >&2; die "pip install of MLServer failed"; }
    echo "${MLSERVER_PKGS[*]}" >"$1/.pkgs"
  fi
}

# build/bench/grpc_load (bench/grpc_load.cc): protobuf C++ classes generated from ferry's
# own protos (protoc, no gRPC stubs needed: it uses the generic ByteBuffer stub), compiled
# with plain g++ -O2 against the system libgrpc++ / libprotobuf. Objects are rebuilt only
# when stale. Needs g++, protoc, pkg-config and libgrpc++-dev.
build_grpc_load() {  # OUT_DIR
  local out="$1" gen="$1/gen" proto="protocol/grpc/grpc_service.proto" p stale=0 obj1
  mkdir -p "$gen"
  local flags=($(pkg-config --cflags --libs grpc++ protobuf))
  _grpc_obj() {  # SOURCE OBJECT
    if [[ ! -f "$2" || "$1" -nt "$2" ]]; then
      g++ -O2 -std=c++17 -I "$gen" -c "$1" -o "$2" $(pkg-config --cflags grpc++ protobuf)
    fi
  }
  for p in "$ROOT/src/$proto" "$ROOT/src/repository/model_config.proto"; do
    [[ -f "$gen/protocol/grpc/grpc_service.pb.cc" && ! "$p" -nt "$gen/protocol/grpc/grpc_service.pb.cc" ]] || stale=1
  done
  if [[ $stale == 1 ]]; then
    log "generating protobuf classes into ${gen#$ROOT/}"
    protoc -I "$ROOT/src" --cpp_out="$gen" "$proto" repository/model_config.proto
  fi
  log "compiling ${out#$ROOT/}/grpc_load"
  _grpc_obj "$gen/protocol/grpc/grpc_service.pb.cc" "$gen/grpc_service.pb.o" &
  obj1=$!
  _grpc_obj "$gen/repository/model_config.pb.cc" "$gen/model_config.pb.o" || die "compiling model_config.pb.cc failed"
  wait "$obj1" || die "compiling grpc_service.pb.cc failed"
  g++ -O2 -std=c++17 -Wall -Wextra -I "$gen" "$ROOT/bench/grpc_load.cc" \
    "$gen/grpc_service.pb.o" "$gen/model_config.pb.o" -o "$out/grpc_load" "${flags[@]}"
}

# The start of an nginx.conf for one worker in the foreground, its pid and error log in
# WORK; the caller appends its http block.
nginx_conf_head() {  # WORK
  cat <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $1/nginx.pid;
error_log $1/nginx-error.log warn;
events { worker_connections 1024; }
CONF
}

# One closed-loop build/bench/grpc_load run of unary add_sub ModelInfer calls (one
# connection per call in flight) with grpc_check.py's WORK/grpc_inputs.bin and
# grpc_expect.bin; prints its GRPCRESULT line (stderr appended to WORK/grpc_load.err).
run_grpc_unary() {  # HOST:PORT CONCURRENCY SECONDS LABEL CPU
  local out
  out="$(timeout $(($3 + 60)) taskset -c "$5" "$OUT_DIR/grpc_load" --target "$1" --mode unary \
    --concurrency "$2" --connections "$2" --seconds "$3" --inputs "$WORK/grpc_inputs.bin" \
    --expect "$WORK/grpc_expect.bin" --label "$4" 2>>"$WORK/grpc_load.err")" || die "grpc_load failed ($4)"
  grep '^GRPCRESULT' <<<"$out" || die "no result line from grpc_load ($4)"
}

# The monitoring benchmarks' model repositories, from examples/generate_models.py: WORK/repo
# (mlp_classifier and the other examples), WORK/repo_drift (the same, with a reference
# profile of mlp_classifier built by `ferry profile build` from 5,000 rows and drift on, windows
# of 1,000 rows), and WORK/json.req (one row, JSON). Needs PYTHON.
make_monitoring_repos() {  # WORK FERRY_BIN
  local work="$1" bin="$2" kv
  log "generating the model repository and request bodies in $work"
  "$PYTHON" "$ROOT/examples/generate_models.py" "$work/repo" >"$work/generate.log" 2>&1 \
    || { cat "$work/generate.log" >&2; die "generate_models.py failed"; }
  "$PYTHON" - "$work" <<'PYEOF'
import json, sys
import numpy as np
work = sys.argv[1]
rng = np.random.default_rng(3)
np.save(f"{work}/train.npy", rng.standard_normal((5000, 4)).astype(np.float32))
row = rng.standard_normal(4).astype(np.float32)
with open(f"{work}/json.req", "w") as f:
    json.dump({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": row.tolist()}]}, f,
              separators=(",", ":"))
PYEOF
  cp -r "$work/repo" "$work/repo_drift"
  "$bin" profile build --model-repository "$work/repo_drift" --model mlp_classifier --data "$work/train.npy" \
    --intra-op-threads 1 >"$work/profile.log" 2>&1 || { cat "$work/profile.log" >&2; die "ferry profile build failed"; }
  for kv in monitoring.drift.enabled=true monitoring.drift.window=1000; do
    printf 'parameters { key: "%s" value: { string_value: "%s" } }\n' "${kv%%=*}" "${kv#*=}" \
      >>"$work/repo_drift/mlp_classifier/config.pbtxt"
  done
}
