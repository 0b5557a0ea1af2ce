#!/usr/bin/env bash
# Dynamic batching benchmark for ferry: a compute-bound MLP (FP32 [-1,256] -> 1024 -> 1024
# -> 16) served with batch-1 REST binary-tensor requests at closed-loop concurrency 1..64,
# in two configurations of the same model in one ferry process:
#   off    no dynamic_batching section: one request per execution;
#   delay  dynamic_batching { max_queue_delay_microseconds: BENCH_DELAY_US }, max_batch_size 64;
# plus a third, "target" (dynamic_batching { } with the config parameter
# latency_target_microseconds), only when docs/ (besides this benchmark's section) mention
# latency_target_microseconds, i.e. only where ferry implements it.
# The ceiling, measured in the same run: the model called in-process through ONNX Runtime's
# C API (build/bench/batching_inprocess, 1 intra-op thread, pinned to the server core) at
# batch 1, 2, 4, ..., 64; and the ceiling with the protocol: that plus the per-request cost
# of the protocol, measured as the server CPU per request of proto_off (the same request and
# answer through a Slice, batching off) at each concurrency >= 32, less its own in-process
# execution.  ferry (one HTTP thread, one intra-op thread) is pinned to core 0;
# wrk (one thread, N connections) to core 1.  See docs/benchmarks.md, "Dynamic batching".
#
# Environment:
#   BENCH_SECONDS          seconds per timed point (default 5)
#   BENCH_CONCURRENCY      concurrencies (default "1 2 4 8 16 32 64")
#   BENCH_DELAY_US         max_queue_delay_microseconds of the delay configuration (default 500)
#   BENCH_MAX_BATCH        max_batch_size of every configuration (default 64)
#   BENCH_LATENCY_TARGET_US  latency_target_microseconds of the target configuration (default 2000)
#   BENCH_WARMUP_SECONDS   wrk warm-up per configuration at 64 connections (default 2)
#   BENCH_INPROC_SECONDS   in-process loop length per batch size (default 1)
#   BENCH_SERVER_CPU / BENCH_CLIENT_CPU  cores for ferry + in-process loop / for wrk (0 / 1)
#   BENCH_PLOT_DIR         where the PNGs go (default docs/img)
#   FERRY_BIN              server binary (default: build/dev/ferry, built with the dev preset)
#   BENCH_FERRY_LABEL      free text saying what FERRY_BIN was built from (shown in the report)
#   PYTHON                 python with numpy, onnx, onnxruntime, requests, matplotlib (.venv/bin/python)
#   BENCH_KEEP_WORKDIR=1   keep the temp folder (repository, logs, stats snapshots)
#
# Output: a Markdown report on stdout and in build/bench/batching_results.md, the plots
# BENCH_PLOT_DIR/batching_throughput.png and batching_p99.png; progress on stderr.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SECONDS_PER_RUN="${BENCH_SECONDS:-5}"
CONCURRENCY="${BENCH_CONCURRENCY:-1 2 4 8 16 32 64}"
DELAY_US="${BENCH_DELAY_US:-500}"
MAX_BATCH="${BENCH_MAX_BATCH:-64}"
TARGET_US="${BENCH_LATENCY_TARGET_US:-2000}"
WARMUP_SECONDS="${BENCH_WARMUP_SECONDS:-2}"
INPROC_SECONDS="${BENCH_INPROC_SECONDS:-1}"
SERVER_CPU="${BENCH_SERVER_CPU:-0}"
CLIENT_CPU="${BENCH_CLIENT_CPU:-1}"
PLOT_DIR="${BENCH_PLOT_DIR:-$ROOT/docs/img}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
OUT_DIR="$ROOT/build/bench"
ORT_DIR="$ROOT/third_party/onnxruntime"

BENCH_TAG=batching
source "$ROOT/bench/lib.sh"

for tool in wrk taskset curl g++; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (wrk: apt-get install -y wrk)"
done
[[ -x "$PYTHON" ]] || die "python not found at $PYTHON (set PYTHON or create .venv with scripts/setup.sh)"
"$PYTHON" -c 'import matplotlib, numpy, onnx, onnxruntime, requests' 2>/dev/null \
  || die "$PYTHON lacks matplotlib/numpy/onnx/onnxruntime/requests (run scripts/setup.sh)"
[[ -f "$ORT_DIR/include/onnxruntime_c_api.h" ]] || die "ONNX Runtime not found under $ORT_DIR"

# The latency-target mode runs only once ferry documents the parameter.
MODES="off delay"
TARGET_SKIP=""
if grep -rqs latency_target_microseconds "$ROOT/docs" --include='*.md' --exclude=benchmarks.md; then
  MODES="off delay target"
else
  TARGET_SKIP="docs/model-config.md does not mention latency_target_microseconds (not implemented in this ferry)"
  log "latency-target mode skipped: $TARGET_SKIP"
fi

START_TS="$(date +%s)"
LOAD_BEFORE="$(cut -d" " -f1-3 /proc/loadavg)"
WORK="$(mktemp -d -t ferry-batching.XXXXXX)"

# ---------------------------------------------------------------------------- build
mkdir -p "$OUT_DIR"
if [[ -z "${FERRY_BIN:-}" ]]; then
  build_ferry
  FERRY_DESC="$(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src 2>/dev/null || echo ' (src/ modified)')"
else
  FERRY_DESC="binary $FERRY_BIN, built $(date -u -r "$FERRY_BIN" '+%Y-%m-%d %H:%M UTC')${BENCH_FERRY_LABEL:+ ($BENCH_FERRY_LABEL)}; work tree at $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
fi
[[ -x "$FERRY_BIN" ]] || die "ferry binary not executable: $FERRY_BIN"

log "compiling build/bench/batching_inprocess"
g++ -O2 -std=c++17 -Wall -Wextra -I "$ORT_DIR/include" "$ROOT/bench/batching_inprocess.cc" \
  -o "$OUT_DIR/batching_inprocess" -L "$ORT_DIR/lib" -lonnxruntime -Wl,-rpath,"$ORT_DIR/lib"

# ---------------------------------------------------------------------------- inputs
log "generating the MLP, the repository and the request body in $WORK"
if [[ " $MODES " == *" target "* ]]; then
  "$PYTHON" "$ROOT/bench/batching_tool.py" prepare "$WORK" "$DELAY_US" "$MAX_BATCH" "$TARGET_US" >&2
else
  "$PYTHON" "$ROOT/bench/batching_tool.py" prepare "$WORK" "$DELAY_US" "$MAX_BATCH" >&2
fi
MODEL="$WORK/repo/mlp_off/1/model.onnx"

read -r HTTP_PORT GRPC_PORT < <(free_ports 2)
BASE="http://127.0.0.1:$HTTP_PORT"

# ---------------------------------------------------------------------------- ferry
# --intra-op-threads 1 explicitly, to match the in-process program whatever the default
# (the default divides the process's CPU affinity among instances: also 1 under taskset -c 0).
FERRY_ARGS=(serve --model-repository "$WORK/repo" --http-address 127.0.0.1 --http-port "$HTTP_PORT"
  --grpc-port "$GRPC_PORT" --metrics-port 0 --http-threads 1 --intra-op-threads 1)
log "starting ferry on 127.0.0.1:$HTTP_PORT (core $SERVER_CPU)"
start_server "$WORK/ferry.log" taskset -c "$SERVER_CPU" "$FERRY_BIN" "${FERRY_ARGS[@]}"
FERRY_PID=$SERVER_PID
model_name() { if [[ $1 == proto ]]; then echo proto_off; else echo "mlp_$1"; fi; }
model_url() { echo "$BASE/v2/models/$(model_name "$1")/versions/1"; }
wait_http "$BASE/v2/health/ready" "$FERRY_PID" ferry
for m in $MODES; do
  if [[ "$(curl -s -o /dev/null -w '%{http_code}' "$(model_url "$m")/ready" || true)" != 200 ]]; then
    index="$(curl -s -X POST "$BASE/v2/repository/index" -d '{}' || true)"
    if [[ $m == target ]]; then  # a ferry binary older than the docs: report, don't fail
      TARGET_SKIP="this ferry binary refused the configuration: $("$PYTHON" -c '
import json, sys
print(next((e.get("reason", e.get("state")) for e in json.loads(sys.argv[1]) if e["name"] == "mlp_target"), "?"))' "$index" | tr -d '`')"
      log "latency-target mode skipped: $TARGET_SKIP"
      MODES="off delay"
    else
      printf '%s\n' "$index" >&2
      die "model mlp_$m is not ready"
    fi
  fi
done

log "sanity check: one request per configuration vs onnxruntime (Python), then 64 distinct rows at once"
# shellcheck disable=SC2046
"$PYTHON" "$ROOT/bench/batching_tool.py" check "$WORK" "$BASE" $(for m in $MODES; do echo "mlp_$m"; done) proto_off >&2

# ---------------------------------------------------------------------------- in-process ceiling
POW2=""
for ((b = 1; b <= MAX_BATCH; b *= 2)); do POW2="$POW2 $b"; done
log "in-process: ${INPROC_SECONDS}s per batch size ($POW2 ) on core $SERVER_CPU"
# shellcheck disable=SC2086
taskset -c "$SERVER_CPU" "$OUT_DIR/batching_inprocess" "$MODEL" "$WORK/rows.f32" "$WORK/ref.f32" \
  "$INPROC_SECONDS" $POW2 | tee "$WORK/inproc.txt" | sed 's/^/[batching]   /' >&2

log "in-process: the protocol model (proto_off) at batch 1"
taskset -c "$SERVER_CPU" "$OUT_DIR/batching_inprocess" "$WORK/repo/proto_off/1/model.onnx" "$WORK/rows.f32" \
  "$WORK/proto_ref.f32" "$INPROC_SECONDS" 1 | tee "$WORK/inproc_proto.txt" | sed 's/^/[batching]   /' >&2

# ---------------------------------------------------------------------------- wrk runs
IHCL="$(cat "$WORK/body.ihcl")"
run_wrk() {  # MODE CONNECTIONS SECONDS -> prints the WRKRESULT line
  local out
  out="$(BENCH_BODY="$WORK/body.req" \
    BENCH_HEADERS="Content-Type: application/octet-stream|Inference-Header-Content-Length: $IHCL" \
    BENCH_EXPECT="$WORK/expect_$(model_name "$1").resp" BENCH_EXPECT_IHCL="$(cat "$WORK/expect_$(model_name "$1").ihcl")" \
    BENCH_LABEL="$1/c$2" \
    taskset -c "$CLIENT_CPU" wrk -t1 -c"$2" -d"$3"s --timeout 5s -s "$ROOT/bench/batching_wrk.lua" \
    "$(model_url "$1")/infer" 2>&1)" \
    || { printf '%s\n' "$out" >&2; die "wrk failed for $1/c$2"; }
  grep '^WRKRESULT' <<<"$out" || { printf '%s\n' "$out" >&2; die "no result line from wrk for $1/c$2"; }
}
ferry_alive() {
  kill -0 "$FERRY_PID" 2>/dev/null || die "ferry died during the benchmark (see the log tail below)"
}
CLK_TCK="$(getconf CLK_TCK)"

log "warm-up: ${WARMUP_SECONDS}s per configuration at 64 connections"
for m in $MODES; do
  line="$(run_wrk "$m" 64 "$WARMUP_SECONDS")"
  log "  $line"
  [[ "$(field "$line" wrong)" == 0 ]] || die "wrong answers from ferry during the warm-up of $m: $line"
done
ferry_alive

mkdir -p "$WORK/stats"
: >"$WORK/runs.txt"
: >"$WORK/proto.txt"
for c in $CONCURRENCY; do
  POINT_MODES="$MODES"
  ((c >= 32)) && POINT_MODES="$MODES proto"  # the protocol's cost, where the goal applies
  for m in $POINT_MODES; do  # back to back, so the configurations see the same machine weather
    log "$m c=$c (${SECONDS_PER_RUN}s)"
    curl -sf "$(model_url "$m")/stats" >"$WORK/stats/$m-$c-before.json" || die "stats of mlp_$m unavailable"
    t0="$(tree_cpu_ticks "$FERRY_PID")"
    line="$(run_wrk "$m" "$c" "$SECONDS_PER_RUN")"
    t1="$(tree_cpu_ticks "$FERRY_PID")"
    ferry_alive
    curl -sf "$(model_url "$m")/stats" >"$WORK/stats/$m-$c-after.json" || die "stats of mlp_$m unavailable"
    cpu="$(awk -v a="$t0" -v b="$t1" -v hz="$CLK_TCK" -v n="$(field "$line" requests)" \
      'BEGIN { printf "%.2f", (b - a) * 1e6 / hz / (n > 0 ? n : 1) }')"
    log "  $line cpu_us_per_req=$cpu"
    if [[ $m == proto ]]; then
      echo "RUN mode=$m conc=$c cpu_us_per_req=$cpu ${line#WRKRESULT }" >>"$WORK/proto.txt"
    else
      echo "RUN mode=$m conc=$c cpu_us_per_req=$cpu ${line#WRKRESULT }" >>"$WORK/runs.txt"
    fi
  done
done

# In-process execution time at the (rounded-up) mean batch size of every run, for the p99 bound.
EXTRA="$("$PYTHON" - "$WORK" "$MAX_BATCH" <<'EOF'
import json, math, sys
from pathlib import Path
work, max_batch = Path(sys.argv[1]), int(sys.argv[2])
have = {int(l.split("batch=")[1].split()[0]) for l in (work / "inproc.txt").read_text().splitlines() if l.startswith("INPROC")}
need = set()
for line in (work / "runs.txt").read_text().splitlines():
    kv = dict(t.split("=", 1) for t in line.split()[1:] if "=" in t)
    s = [json.loads((work / "stats" / f"{kv['mode']}-{kv['conc']}-{w}.json").read_text())["model_stats"][0] for w in ("before", "after")]
    ex = s[1]["execution_count"] - s[0]["execution_count"]
    inf = s[1]["inference_count"] - s[0]["inference_count"]
    if ex > 0:
        need.add(min(max_batch, max(1, math.ceil(inf / ex - 1e-9))))
print(*sorted(need - have))
EOF
)"
if [[ -n "$EXTRA" ]]; then
  log "in-process: ${INPROC_SECONDS}s per batch size formed by ferry ($EXTRA )"
  # shellcheck disable=SC2086
  taskset -c "$SERVER_CPU" "$OUT_DIR/batching_inprocess" "$MODEL" "$WORK/rows.f32" "$WORK/ref.f32" \
    "$INPROC_SECONDS" $EXTRA | tee -a "$WORK/inproc.txt" | sed 's/^/[batching]   /' >&2
fi

ALIVE_END="no"
if kill -0 "$FERRY_PID" 2>/dev/null && [[ "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/v2/health/ready" || true)" == 200 ]]; then
  ALIVE_END="yes"
fi
LOG_WARNINGS="$(grep -ciE 'warn|error' "$WORK/ferry.log" || true)"

# ---------------------------------------------------------------------------- report
{
  echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "ferry=$FERRY_DESC"
  echo "cores=$(nproc)"
  echo "cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
  echo "kernel=$(uname -r)"
  echo "load_before=$LOAD_BEFORE"
  echo "load_after=$(cut -d" " -f1-3 /proc/loadavg)"
  echo "elapsed_s=$(($(date +%s) - START_TS))"
  echo "model_bytes=$(stat -c %s "$MODEL")"
  echo "max_batch=$MAX_BATCH"
  echo "server_cpu=$SERVER_CPU"
  echo "client_cpu=$CLIENT_CPU"
  echo "ferry_cmd=taskset -c $SERVER_CPU ferry ${FERRY_ARGS[*]}" | sed "s|$WORK|\$WORK|g"
  echo "body_bytes=$(stat -c %s "$WORK/body.req")"
  echo "seconds=$SECONDS_PER_RUN"
  echo "delay_us=$DELAY_US"
  if [[ " $MODES " == *" target "* ]]; then echo "target_us=$TARGET_US"; fi
  echo "target_skip=$TARGET_SKIP"
  echo "inproc_seconds=$INPROC_SECONDS"
  echo "log_warnings=$LOG_WARNINGS"
  echo "alive_end=$ALIVE_END"
} >"$WORK/meta.txt"

"$PYTHON" "$ROOT/bench/batching_tool.py" report "$WORK" "$OUT_DIR/batching_results.md" "$PLOT_DIR"
log "report written to build/bench/batching_results.md; plots in $PLOT_DIR"
