#!/usr/bin/env bash
# ferry against MLServer on the same models, cores and load: a scikit-learn
# LogisticRegression and an XGBoost classifier (20 features, batch 1, JSON V2 bodies),
# served from ONE MLServer model repository (model-settings.json files) that both
# servers load unchanged. Closed-loop wrk at concurrency 1 16 64, the two servers'
# runs back to back at each point so both see the same machine weather.
#
# MLServer (from PyPI, pinned below) lives in its own venv, build/bench/mlserver-venv;
# its python also trains the models and runs ferry's Python workers (--python-executable), so both
# servers use the same scikit-learn and xgboost packages to read the same files. ferry's
# XGBoost runtime is the C library (Debian's libxgboost), not the Python package.
#
# Environment:
#   BENCH_SECONDS      seconds per wrk run (default 10)
#   BENCH_CONCURRENCY  connection counts (default "1 16 64")
#   BENCH_SERVER_CPU   core(s) both servers are pinned to (default 0)
#   BENCH_CLIENT_CPU   core(s) for wrk (default 1)
#   BENCH_WORKERS      model worker processes / instances per model, both servers (default 1)
#   FERRY_BIN          server binary (default build/dev/ferry, built if unset)
# Output: Markdown on stdout and in build/bench/mlserver_results.md; progress on stderr.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BENCH_TAG=mlserver-bench
source "$ROOT/bench/lib.sh"

SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
CONCURRENCY="${BENCH_CONCURRENCY:-1 16 64}"
SERVER_CPU="${BENCH_SERVER_CPU:-0}"
CLIENT_CPU="${BENCH_CLIENT_CPU:-1}"
WORKERS="${BENCH_WORKERS:-1}"
OUT_DIR="$ROOT/build/bench"
MLSERVER_VENV="$OUT_DIR/mlserver-venv"
MODELS=(sklearn_lr xgboost_clf)

require_tools wrk taskset curl python3
LOAD_BEFORE="$(cut -d" " -f1-3 /proc/loadavg)"
WORK="$(mktemp -d -t ferry-mlserver-bench.XXXXXX)"
mkdir -p "$OUT_DIR"

ensure_mlserver_venv "$MLSERVER_VENV" "$WORK"
PY="$MLSERVER_VENV/bin/python"
VERSIONS="$("$PY" -c 'import importlib.metadata as m; print(", ".join(f"{p} {m.version(p)}" for p in ("mlserver", "scikit-learn", "xgboost", "numpy")))')"
build_ferry

log "training the models into an MLServer repository ($WORK/repo)"
"$PY" "$ROOT/bench/mlserver_models.py" repo "$WORK/repo"

read -r F_HTTP F_GRPC F_METRICS M_HTTP M_GRPC M_METRICS < <(free_ports 6)
log "starting MLServer on :$M_HTTP (core $SERVER_CPU, $WORKERS worker(s))"
start_server "$WORK/mlserver.log" env MLSERVER_HTTP_PORT="$M_HTTP" MLSERVER_GRPC_PORT="$M_GRPC" \
  MLSERVER_METRICS_PORT="$M_METRICS" MLSERVER_PARALLEL_WORKERS="$WORKERS" MLSERVER_HOST=127.0.0.1 \
  taskset -c "$SERVER_CPU" "$MLSERVER_VENV/bin/mlserver" start "$WORK/repo"
MLSERVER_PID=$SERVER_PID
log "starting ferry on :$F_HTTP (core $SERVER_CPU, $WORKERS instance(s) per model)"
start_server "$WORK/ferry.log" taskset -c "$SERVER_CPU" "$FERRY_BIN" serve --model-repository "$WORK/repo" \
  --http-address 127.0.0.1 --http-port "$F_HTTP" --grpc-port "$F_GRPC" --metrics-port "$F_METRICS" \
  --http-threads 1 --python-executable "$PY"
FERRY_PID=$SERVER_PID
for m in "${MODELS[@]}"; do
  wait_http "http://127.0.0.1:$M_HTTP/v2/models/$m/ready" "$MLSERVER_PID" "MLServer ($m)" 120
  wait_http "http://127.0.0.1:$F_HTTP/v2/models/$m/ready" "$FERRY_PID" "ferry ($m)" 60
done

url_of() { [[ $1 == ferry ]] && echo "http://127.0.0.1:$F_HTTP/v2/models/$2/infer" \
                             || echo "http://127.0.0.1:$M_HTTP/v2/models/$2/infer"; }
for m in "${MODELS[@]}"; do
  for s in ferry mlserver; do "$PY" "$ROOT/bench/mlserver_models.py" check "$WORK/repo" "$m" "$(url_of "$s" "$m")" >&2; done
done

log "warm-up: 2 s per server and model at 16 connections"
for m in "${MODELS[@]}"; do
  for s in ferry mlserver; do
    run_wrk_post "$(url_of "$s" "$m")" "$WORK/$m.json" "Content-Type: application/json" "warmup" 16 2 "$CLIENT_CPU" >/dev/null
  done
done

CLK_TCK="$(getconf CLK_TCK)"
declare -A R
for c in $CONCURRENCY; do
  for m in "${MODELS[@]}"; do
    for s in ferry mlserver; do
      pid="$FERRY_PID"; [[ $s == mlserver ]] && pid="$MLSERVER_PID"
      log "$s $m c=$c (${SECONDS_PER_RUN}s)"
      t0="$(tree_cpu_ticks "$pid")"
      line="$(run_wrk_post "$(url_of "$s" "$m")" "$WORK/$m.json" "Content-Type: application/json" "$s/$m/c$c" \
        "$c" "$SECONDS_PER_RUN" "$CLIENT_CPU")"
      t1="$(tree_cpu_ticks "$pid")"
      log "  $line"
      kill -0 "$pid" 2>/dev/null || die "$s died during the run"
      for k in rps p50_us p99_us requests err_connect err_read err_write err_status err_timeout; do
        R[$s/$m/$c/$k]="$(field "$line" "$k")"
      done
      R[$s/$m/$c/cpu_us]="$(calc "($t1 - $t0) * 1000000 / $CLK_TCK / (${R[$s/$m/$c/requests]} + 1)" 0)"
    done
  done
done

errors_of() { local e=0 k; for k in err_connect err_read err_write err_status err_timeout; do e=$((e + ${R[$1/$k]:-0})); done; echo "$e"; }
report() {
  echo "# ferry vs MLServer"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), ferry $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src python 2>/dev/null || echo ' (modified)'), $(nproc) cores, load average before: $LOAD_BEFORE; $VERSIONS."
  echo
  echo "Both servers load the same MLServer repository (model-settings.json), pinned to core(s) $SERVER_CPU with $WORKERS model worker(s)/instance(s) each; wrk on core(s) $CLIENT_CPU, ${SECONDS_PER_RUN}s per run, JSON V2 body with one FP64 row of 20 features, keep-alive. Latencies are wrk's (µs). CPU = user+system time of the server process and all its children per request."
  echo
  echo "| model | conns | ferry req/s | ferry p50 / p99 µs | MLServer req/s | MLServer p50 / p99 µs | rate ratio | p99 lower? | CPU µs/req ferry / MLServer | errors ferry / MLServer |"
  echo "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|"
  local m c f s
  for m in "${MODELS[@]}"; do
    for c in $CONCURRENCY; do
      f="ferry/$m/$c"; s="mlserver/$m/$c"
      echo "| $m | $c | $(fmt "${R[$f/rps]}") | ${R[$f/p50_us]} / ${R[$f/p99_us]} | $(fmt "${R[$s/rps]}") | ${R[$s/p50_us]} / ${R[$s/p99_us]} | $(calc "${R[$f/rps]} / ${R[$s/rps]}" 2)× | $( ((R[$f/p99_us] < R[$s/p99_us])) && echo yes || echo no) | ${R[$f/cpu_us]} / ${R[$s/cpu_us]} | $(errors_of "$f") / $(errors_of "$s") |"
    done
  done
  echo
  echo "Goals: ≥ 3× MLServer's request rate on sklearn_lr and ≥ 5× on xgboost_clf, with lower p99."
}
REPORT="$(report)"
printf '%s\n' "$REPORT" >"$OUT_DIR/mlserver_results.md"
printf '%s\n' "$REPORT"
log "report written to build/bench/mlserver_results.md"
