#!/usr/bin/env bash
# ferry's Python worker processes against Triton's Python backend, on the same model
# code, the same interpreter and packages, the same config.pbtxt, one instance each:
#   add_sub     OUTPUT0/OUTPUT1 = INPUT0 +/- INPUT1 (FP32 [4]): the protocol's cost alone
#   sklearn_lr  a scikit-learn LogisticRegression's predict_proba (FP64 [20] -> [2]),
#               trained at bench time with a fixed seed
# (bench/python_bench_models.py writes both repositories). Both servers are pinned to
# one core (their model processes inherit it); perf_analyzer, Triton's own load
# generator, drives both from the other core, closed loop at each concurrency, over
# REST and gRPC, the two servers back to back at every point so both see the same
# machine weather. By default both configs enable dynamic batching (max_batch_size 64,
# dynamic_batching {}): ferry hands the joined batch to predict(), Triton's model.py
# joins the requests it is given. BENCH_BATCHING=0 measures both without it.
#
# Triton 2.51 comes from the PyPI wheel nvidia-pytriton 0.7.0 (its tritonserver binary
# and Python backend), installed with numpy < 2 and scikit-learn into its own venv under
# /var/cache/ferry/pytriton-0.7.0 (once; later runs reuse it). That venv's python runs
# ferry's workers too (--python-executable) and Triton's stub imports its packages.
#
# Environment:
#   BENCH_WINDOW_MS     perf_analyzer measurement window (default 2000; 3 windows a point)
#   BENCH_CONCURRENCY   concurrencies (default "1 16 64")
#   BENCH_PROTOCOLS     default "http grpc"
#   BENCH_MODELS        default "add_sub sklearn_lr"
#   BENCH_BATCHING      1 (default): dynamic_batching in both configs; 0: none
#   BENCH_SERVER_CPU    core both servers are pinned to (default 0)
#   BENCH_CLIENT_CPU    core for perf_analyzer (default 1)
#   BENCH_HTTP_THREADS  HTTP threads of both servers (default 4)
#   BENCH_WRK           1 (default, when wrk is installed): also drive both servers' REST
#                       with wrk, one pre-formatted V2 JSON request replayed per connection
#                       (a second client that does not spin at 64 connections); 0: off
#   BENCH_TRITON_HOME   where the Triton venv lives (default /var/cache/ferry/pytriton-0.7.0)
#   FERRY_BIN           server binary (default build/dev/ferry, built if unset)
#   BENCH_KEEP_WORKDIR=1  keep the temp folder (logs, perf_analyzer CSVs)
# Output: Markdown on stdout and in build/bench/python_results.md; progress on stderr.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BENCH_TAG=python-bench
source "$ROOT/bench/lib.sh"

WINDOW_MS="${BENCH_WINDOW_MS:-2000}"
CONCURRENCY="${BENCH_CONCURRENCY:-1 16 64}"
PROTOCOLS="${BENCH_PROTOCOLS:-http grpc}"
MODELS="${BENCH_MODELS:-add_sub sklearn_lr}"
BATCHING="${BENCH_BATCHING:-1}"
SERVER_CPU="${BENCH_SERVER_CPU:-0}"
CLIENT_CPU="${BENCH_CLIENT_CPU:-1}"
# HTTP event loops / threads, both servers (ferry's default under taskset would be one:
# with one loop, 64 perf_analyzer connections collapse ferry's REST rate; see
# docs/benchmarks.md). Triton's gRPC and ferry's gRPC use their own defaults.
HTTP_THREADS="${BENCH_HTTP_THREADS:-4}"
WRK="${BENCH_WRK:-1}"
[[ $WRK == 1 ]] && ! command -v wrk >/dev/null && { log "wrk not installed: no wrk rows (apt-get install -y wrk)"; WRK=0; }
TRITON_HOME="${BENCH_TRITON_HOME:-/var/cache/ferry/pytriton-0.7.0}"
TRITON_VENV="$TRITON_HOME/venv"
TRITON_PKGS=(nvidia-pytriton==0.7.0 "numpy<2" scikit-learn==1.5.2)
# The wheel's Python-backend stub embeds the system's libpython3.11 (Debian's python3.11),
# so the venv is made from that very interpreter: one CPython build runs both servers' models.
BASE_PYTHON="${BENCH_PYTHON:-/usr/bin/python3.11}"
PERF_ANALYZER="$ROOT/third_party/perf_analyzer/bin/perf_analyzer"
OUT_DIR="$ROOT/build/bench"

require_tools taskset curl python3
[[ -x "$PERF_ANALYZER" ]] || die "perf_analyzer not found at $PERF_ANALYZER (scripts/setup.sh installs it)"
LOAD_BEFORE="$(cut -d" " -f1-3 /proc/loadavg)"
WORK="$(mktemp -d -t ferry-python-bench.XXXXXX)"
mkdir -p "$OUT_DIR" "$TRITON_HOME"

[[ -x "$BASE_PYTHON" ]] || die "$BASE_PYTHON not found (apt-get install -y python3.11 python3.11-venv)"
if [[ "$(cat "$TRITON_VENV/.pkgs" 2>/dev/null || true)" != "$BASE_PYTHON ${TRITON_PKGS[*]}" ]]; then
  log "installing ${TRITON_PKGS[*]} into $TRITON_VENV (a few minutes, once)"
  rm -rf "$TRITON_VENV"
  "$BASE_PYTHON" -m venv "$TRITON_VENV"
  "$TRITON_VENV/bin/pip" install -q --disable-pip-version-check "${TRITON_PKGS[@]}" >"$WORK/pip.log" 2>&1 \
    || { tail -n 30 "$WORK/pip.log" >&2; die "pip install of ${TRITON_PKGS[*]} failed"; }
  echo "$BASE_PYTHON ${TRITON_PKGS[*]}" >"$TRITON_VENV/.pkgs"
fi
PY="$TRITON_VENV/bin/python"
PYTRITON="$("$PY" -c 'import pytriton, os; print(os.path.dirname(pytriton.__file__))')"
# As PyTriton itself does: the stub for this Python version goes into backends/python
# (inside the venv's copy of the wheel; its binaries find their libraries relative to it).
PY_MM="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
TRITON_DIST="$PYTRITON/tritonserver"
if [[ ! -x "$TRITON_DIST/backends/python/triton_python_backend_stub" ]]; then
  cp "$TRITON_DIST/python_backend_stubs/$PY_MM/triton_python_backend_stub" "$TRITON_DIST/backends/python/" \
    || die "the wheel has no Python-backend stub for Python $PY_MM"
fi
TRITONSERVER="$TRITON_DIST/bin/tritonserver"
[[ -x "$TRITONSERVER" ]] || die "no tritonserver binary in the nvidia-pytriton wheel ($TRITONSERVER)"
VERSIONS="$("$PY" -c 'import importlib.metadata as m, sys; print(f"Python {sys.version.split()[0]}, " + ", ".join(f"{p} {m.version(p)}" for p in ("nvidia-pytriton", "numpy", "scikit-learn")))')"
build_ferry

log "writing the model repositories ($WORK/repos, batching=$BATCHING)"
"$PY" "$ROOT/bench/python_bench_models.py" repos "$WORK/repos" "$TRITON_VENV" $([[ $BATCHING == 1 ]] || echo --no-batching)

read -r F_HTTP F_GRPC F_METRICS T_HTTP T_GRPC T_METRICS < <(free_ports 6)
log "starting Triton on :$T_HTTP/:$T_GRPC (core $SERVER_CPU)"
start_server "$WORK/triton.log" taskset -c "$SERVER_CPU" "$TRITONSERVER" --model-repository "$WORK/repos/triton" \
  --backend-directory "$TRITON_DIST/backends" --http-address 127.0.0.1 --http-port "$T_HTTP" \
  --grpc-address 127.0.0.1 --grpc-port "$T_GRPC" --metrics-port "$T_METRICS" --allow-metrics false \
  --http-thread-count "$HTTP_THREADS"
TRITON_PID=$SERVER_PID
log "starting ferry on :$F_HTTP/:$F_GRPC (core $SERVER_CPU)"
start_server "$WORK/ferry.log" taskset -c "$SERVER_CPU" "$FERRY_BIN" serve --model-repository "$WORK/repos/ferry" \
  --http-address 127.0.0.1 --http-port "$F_HTTP" --grpc-port "$F_GRPC" --metrics-port "$F_METRICS" \
  --http-threads "$HTTP_THREADS"
FERRY_PID=$SERVER_PID
for m in $MODELS; do
  wait_http "http://127.0.0.1:$T_HTTP/v2/models/$m/ready" "$TRITON_PID" "Triton ($m)" 120
  wait_http "http://127.0.0.1:$F_HTTP/v2/models/$m/ready" "$FERRY_PID" "ferry ($m)" 120
  "$PY" "$ROOT/bench/python_bench_models.py" check "http://127.0.0.1:$T_HTTP" "$m" "$WORK/repos/triton" "$WORK/triton-$m.answer"
  "$PY" "$ROOT/bench/python_bench_models.py" check "http://127.0.0.1:$F_HTTP" "$m" "$WORK/repos/ferry" "$WORK/ferry-$m.answer"
done

url_of() {  # SERVER PROTOCOL
  case "$1/$2" in
    ferry/http) echo "127.0.0.1:$F_HTTP" ;; ferry/grpc) echo "127.0.0.1:$F_GRPC" ;;
    triton/http) echo "127.0.0.1:$T_HTTP" ;; triton/grpc) echo "127.0.0.1:$T_GRPC" ;;
  esac
}
# One perf_analyzer point: 3 windows of WINDOW_MS (a stability bound no window misses,
# so the run is bounded; tried once more if perf_analyzer still gives up); prints
# "rps p50_us p99_us" from its CSV.
measure() {  # SERVER PROTOCOL MODEL CONCURRENCY
  local csv="$WORK/$1-$2-$3-c$4.csv" out try
  for try in 1 2; do
    out="$(taskset -c "$CLIENT_CPU" timeout 120 "$PERF_ANALYZER" -m "$3" -u "$(url_of "$1" "$2")" -i "$2" \
      --concurrency-range "$4" --measurement-interval "$WINDOW_MS" --max-trials 3 --stability-percentage 99999 \
      -f "$csv" 2>&1)" && break
    # Twice without a result (perf_analyzer can stall its windows against a fast server
    # on one client core): the point is reported as missing, the run goes on.
    if ((try == 2)); then
      printf '%s\n' "$out" | tail -3 >&2
      log "perf_analyzer gave no result for $1 $2 $3 c=$4 twice; reported as missing"
      echo "— — —"
      return 0
    fi
    log "perf_analyzer gave up on $1 $2 $3 c=$4; once more"
  done
  python3 - "$csv" <<'PY'
import csv, sys
row = next(csv.DictReader(open(sys.argv[1])))
print(row["Inferences/Second"], row["p50 latency"], row["p99 latency"])
PY
}

log "warm-up: one short point per server, protocol and model"
for m in $MODELS; do
  for p in $PROTOCOLS; do
    for s in ferry triton; do WINDOW_MS=500 measure "$s" "$p" "$m" 8 >/dev/null; done
  done
done

declare -A R
for m in $MODELS; do
  for p in $PROTOCOLS; do
    for c in $CONCURRENCY; do
      for s in ferry triton; do
        pid="$FERRY_PID"; [[ $s == triton ]] && pid="$TRITON_PID"
        read -r rps p50 p99 < <(measure "$s" "$p" "$m" "$c")
        kill -0 "$pid" 2>/dev/null || die "$s died during the run"
        R[$s/$m/$p/$c]="$rps $p50 $p99"
        log "$s $m $p c=$c: $rps req/s, p50 $p50 µs, p99 $p99 µs"
      done
    done
  done
done

# The same points over REST with wrk: 3 windows' worth of time per point, the two servers
# back to back; wrk counts its errors and non-200 answers, and compares every answer with
# the server's answer to the same request that the check above verified against compute().
if [[ $WRK == 1 && " $PROTOCOLS " == *" http "* ]]; then
  for m in $MODELS; do
    "$PY" "$ROOT/bench/python_bench_models.py" body "$m" "$WORK/$m.json"
    for c in $CONCURRENCY; do
      for s in ferry triton; do
        line="$(BENCH_EXPECT="$WORK/$s-$m.answer" run_wrk_post "http://$(url_of "$s" http)/v2/models/$m/infer" "$WORK/$m.json" \
          "Content-Type: application/json" "$s-$m-c$c" "$c" "$(( (3 * WINDOW_MS + 999) / 1000 ))" "$CLIENT_CPU")"
        errs=0
        for k in err_connect err_read err_write err_status err_timeout wrong; do errs=$((errs + $(field "$line" "$k"))); done
        R[wrk/$s/$m/$c]="$(field "$line" rps) $(field "$line" p50_us) $(field "$line" p99_us) $errs"
        log "wrk $s $m c=$c: $line"
      done
    done
  done
fi

report() {
  echo "# ferry Python models vs Triton's Python backend"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), ferry $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src python 2>/dev/null || echo ' (modified)'), $(nproc) cores, load average before: $LOAD_BEFORE; $VERSIONS; Triton 2.51 from the wheel."
  echo
  echo "Same model.py logic and config.pbtxt (one CPU instance, max_batch_size 64, dynamic batching $([[ $BATCHING == 1 ]] && echo on || echo off)) in both, $HTTP_THREADS HTTP threads each; both servers on core(s) $SERVER_CPU, perf_analyzer on core(s) $CLIENT_CPU, 3 × ${WINDOW_MS} ms windows per point, batch 1 requests. Latencies are perf_analyzer's (µs)."
  echo
  echo "| model | protocol | conc. | ferry req/s | ferry p50 / p99 µs | Triton req/s | Triton p50 / p99 µs | ferry / Triton |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|"
  local m p c f t missing=()
  for m in $MODELS; do
    for p in $PROTOCOLS; do
      for c in $CONCURRENCY; do
        read -r -a f <<<"${R[ferry/$m/$p/$c]}"
        read -r -a t <<<"${R[triton/$m/$p/$c]}"
        if [[ ${f[0]} == — || ${t[0]} == — ]]; then
          missing+=("$m $p c=$c")
          echo "| $m | $p | $c | ${f[0]/#—/— (no result)} | ${f[1]} / ${f[2]} | ${t[0]/#—/— (no result)} | ${t[1]} / ${t[2]} | — |"
          continue
        fi
        echo "| $m | $p | $c | $(fmt "${f[0]}") | ${f[1]} / ${f[2]} | $(fmt "${t[0]}") | ${t[1]} / ${t[2]} | $(calc "${f[0]} / ${t[0]}" 2)× |"
      done
    done
  done
  echo
  ((${#missing[@]})) && echo "No result (perf_analyzer finished no window within 120 s, twice): ${missing[*]}." && echo
  if [[ $WRK == 1 && " $PROTOCOLS " == *" http "* ]]; then
    echo "REST again with wrk ($(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2), \`-t1 -cN\` (\`-t2\` from 32 connections), bench/wrk_post.lua: one pre-formatted V2 JSON batch-1 request, the one checked above, replayed on every connection), $(( (3 * WINDOW_MS + 999) / 1000 )) s per point on core(s) $CLIENT_CPU. Errors = wrk's socket errors + non-200 answers + answers that differ from the checked one (beyond 1e-6 relative)."
    echo
    echo "| model | conc. | ferry req/s | ferry p50 / p99 µs | Triton req/s | Triton p50 / p99 µs | ferry / Triton | errors ferry / Triton |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    for m in $MODELS; do
      for c in $CONCURRENCY; do
        read -r -a f <<<"${R[wrk/ferry/$m/$c]}"
        read -r -a t <<<"${R[wrk/triton/$m/$c]}"
        echo "| $m | $c | $(fmt "${f[0]}") | ${f[1]} / ${f[2]} | $(fmt "${t[0]}") | ${t[1]} / ${t[2]} | $(calc "${f[0]} / ${t[0]}" 2)× | ${f[3]} / ${t[3]} |"
      done
    done
    echo
  fi
  echo "Goal (issue 13): ferry ≥ 2× Triton's rate at every point."
}
REPORT="$(report)"
printf '%s\n' "$REPORT" >"$OUT_DIR/python_results.md"
printf '%s\n' "$REPORT"
log "report written to build/bench/python_results.md"
