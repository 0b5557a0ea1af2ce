#!/usr/bin/env bash
# Instructions per request, counted by valgrind's callgrind: a measure of the request
# path's CPU cost that other tenants of the machine cannot disturb (time-based numbers on
# a shared 2-core machine move by 2x between runs; instruction counts move by < 1%).
# It counts user-space instructions only: the kernel's share (recv/send/epoll) and cache
# or branch effects are not in it, so it ranks changes to ferry's own code, it does not
# replace the timed benchmarks.
#
# For each binary given (default: build/dev/ferry), it starts `ferry serve` under
# callgrind with instrumentation off, warms it up, switches instrumentation on, sends
# a fixed number of requests, dumps, and divides:
#   - REST: add_sub v1, batch 1, binary tensor extension both ways, one keep-alive
#     connection, requests one after another (bench/make_bodies.py's binary body);
#   - gRPC: ModelInfer (unary) with build/bench/grpc_load, 8 calls in flight on 8
#     connections for BENCH_GRPC_SECONDS; the request count is grpc_load's.
# Background threads (metrics, timers) are counted too; they add well under 1% here.
#
# Usage: bench/run_instructions_bench.sh [FERRY_BIN ...]
#   BENCH_REQUESTS       REST requests counted (default 2000)
#   BENCH_GRPC_SECONDS   seconds of gRPC load counted (default 10; about 1-2k calls)
#   BENCH_GRPC_TRANSPORTS  `ferry serve --grpc-transport` values, one server each per
#                        binary (default "grpc++ native"; "default" alone for binaries
#                        older than the option, which serve grpc++ without it)
#   BENCH_KEEP_WORKDIR=1 keep the temp folder (callgrind files for callgrind_annotate)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BENCH_TAG=instructions-bench
source "$ROOT/bench/lib.sh"

REQUESTS="${BENCH_REQUESTS:-2000}"
GRPC_SECONDS="${BENCH_GRPC_SECONDS:-10}"
TRANSPORTS="${BENCH_GRPC_TRANSPORTS:-grpc++ native}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
OUT_DIR="$ROOT/build/bench"
require_tools valgrind callgrind_control curl g++ protoc pkg-config
[[ -x "$PYTHON" ]] || die "python not found at $PYTHON (scripts/setup.sh creates .venv)"
LOAD_BEFORE="$(cut -d" " -f1-3 /proc/loadavg)"
WORK="$(mktemp -d -t ferry-instructions-bench.XXXXXX)"
BINS=("$@")
if [[ ${#BINS[@]} == 0 ]]; then
  build_ferry
  BINS=("$FERRY_BIN")
fi
mkdir -p "$OUT_DIR"
build_grpc_load "$OUT_DIR"

log "generating the model repository and request bodies in $WORK"
"$PYTHON" "$ROOT/examples/generate_models.py" "$WORK/repo" >"$WORK/generate.log" 2>&1 \
  || { cat "$WORK/generate.log" >&2; die "generate_models.py failed"; }
"$PYTHON" "$ROOT/bench/make_bodies.py" bodies "$WORK" >&2

summary_of() { grep -h '^summary:' "$1" | awk '{ print $2 }'; }

count() {  # BIN LABEL TRANSPORT; sets COUNTED="rest_instructions grpc_instructions grpc_calls"
  local bin="$1" label="$2" http grpc pid transport_args=()
  [[ $3 == default ]] || transport_args=(--grpc-transport "$3")
  read -r http grpc < <(free_ports 2)
  start_server "$WORK/$label.log" valgrind --tool=callgrind --callgrind-out-file="$WORK/$label.cg" --instr-atstart=no \
    "$bin" serve --model-repository "$WORK/repo" --http-address 127.0.0.1 --http-port "$http" --grpc-port "$grpc" \
    --metrics-port 0 --http-threads 1 --intra-op-threads 1 "${transport_args[@]}"
  pid=$SERVER_PID
  wait_http "http://127.0.0.1:$http/v2/models/add_sub/versions/1/ready" "$pid" "ferry under callgrind ($label)" 600
  # Each binary's answers are checked against onnxruntime (REST and gRPC); the check also
  # writes the gRPC inputs and expected outputs grpc_load sends and compares.
  "$PYTHON" "$ROOT/bench/make_bodies.py" check "$WORK" "http://127.0.0.1:$http/v2/models/add_sub/versions/1/infer" \
    "$WORK/repo/add_sub/1/model.onnx" >&2
  "$PYTHON" "$ROOT/bench/grpc_check.py" check "$WORK" "127.0.0.1:$grpc" "$WORK/repo/add_sub/1/model.onnx" >&2
  # REST: warm-up (the inline-execution gate measures the first executions), then counted.
  "$PYTHON" "$ROOT/bench/callgrind_requests.py" "$http" "$pid" "$REQUESTS" rest /v2/models/add_sub/versions/1/infer \
    "$WORK/binary.req" --header "Content-Type: application/octet-stream" \
    --header "Inference-Header-Content-Length: $(tr -d '[:space:]' <"$WORK/binary.ihcl")"
  local rest_file; rest_file="$(ls -t "$WORK/$label.cg".* | head -n 1)"
  local rest_ir; rest_ir="$(summary_of "$rest_file")"
  # gRPC: warm-up with instrumentation off, then a counted run.
  "$OUT_DIR/grpc_load" --target "127.0.0.1:$grpc" --mode unary --concurrency 8 --connections 8 --seconds 3 \
    --inputs "$WORK/grpc_inputs.bin" --expect "$WORK/grpc_expect.bin" --label warm >/dev/null 2>"$WORK/$label.grpc.err" \
    || { cat "$WORK/$label.grpc.err" >&2; die "grpc_load warm-up failed ($label)"; }
  callgrind_control -i on "$pid" >/dev/null
  callgrind_control -z "$pid" >/dev/null
  local line
  line="$("$OUT_DIR/grpc_load" --target "127.0.0.1:$grpc" --mode unary --concurrency 8 --connections 8 \
    --seconds "$GRPC_SECONDS" --inputs "$WORK/grpc_inputs.bin" --expect "$WORK/grpc_expect.bin" --label counted \
    2>>"$WORK/$label.grpc.err" | grep '^GRPCRESULT')" || { cat "$WORK/$label.grpc.err" >&2; die "grpc_load failed ($label)"; }
  callgrind_control --dump=grpc "$pid" >/dev/null
  local grpc_file; grpc_file="$(ls -t "$WORK/$label.cg".* | head -n 1)"
  stop_servers
  local calls errors
  calls="$(field "$line" requests)"
  errors=$(( $(field "$line" errors) + $(field "$line" wrong) + $(field "$line" timeouts) ))
  (( errors == 0 )) || die "grpc_load saw $errors errors or wrong outputs ($label)"
  COUNTED="$rest_ir $(summary_of "$grpc_file") $calls"
}

declare -a ROWS
i=0
for bin in "${BINS[@]}"; do
  i=$((i + 1))
  for transport in $TRANSPORTS; do
    log "counting $bin (binary $i of ${#BINS[@]}), gRPC transport $transport"
    count "$bin" "b$i-${transport//+/p}" "$transport"
    read -r rest_ir grpc_ir calls <<<"$COUNTED"
    ROWS+=("| $bin | $("$bin" version 2>/dev/null | head -n 1) | $transport | $(fmt "$(calc "$rest_ir / $REQUESTS" 0)") | $(fmt "$(calc "$grpc_ir / $calls" 0)") | $calls |")
  done
done

report() {
  echo "# Instructions per request (callgrind)"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), ferry $(git rev-parse --short HEAD), $(valgrind --version), load average before: $LOAD_BEFORE."
  echo "add_sub v1, batch 1; REST: $REQUESTS sequential binary-extension requests on one connection; gRPC: ModelInfer, 8 in flight, ${GRPC_SECONDS} s. User-space instructions of every ferry thread, warm-up excluded."
  echo
  echo "| binary | version | gRPC transport | REST binary, instructions/request | gRPC unary, instructions/request | gRPC calls counted |"
  echo "|---|---|---|---:|---:|---:|"
  printf '%s\n' "${ROWS[@]}"
}
REPORT="$(report)"
printf '%s\n' "$REPORT" >"$OUT_DIR/instructions_results.md"
printf '%s\n' "$REPORT"
