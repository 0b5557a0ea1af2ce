#!/usr/bin/env bash
# gRPC benchmark for ferry: add_sub v1 at batch 1 over GRPCInferenceService, unary
# (ModelInfer) and streaming (ModelStreamInfer, bidirectional), closed-loop concurrency
# (default 1 8 64), side by side with ferry's REST binary-body rate measured in the same
# run, against the same server process, back to back at each concurrency.
#
# ferry (one HTTP thread, one intra-op thread, gRPC on its own thread pool) is pinned to
# core 0; every load generator runs on core 1:
#   - REST binary: wrk -t1 -cN with bench/wrk_post.lua, as bench/run_rest_bench.sh does;
#   - gRPC unary and stream: build/bench/grpc_load (bench/grpc_load.cc), a single-thread
#     closed-loop client on gRPC's async API that replays one pre-serialized request and
#     checks every response against onnxruntime's outputs; N slots on N connections, and
#     (for N > 1) N slots multiplexed on one connection;
#   - gRPC unary, light client: h2load (nghttp2-client, C, as light as wrk is for REST),
#     -cN -m1 replaying the same request as a gRPC frame; h2load does not read gRPC's
#     status trailer, so each run is checked against the server's own statistics: its
#     success count must rise by at least h2load's answers and its failure count not at all;
#   - gRPC unary cross-check: ghz (github.com/bojand/ghz, built with `go install`).
#     ghz cannot time single messages on a bidirectional stream (it times whole stream
#     calls and does not wait for a response before the next send), so streams are
#     measured with grpc_load only.
# See docs/benchmarks.md, section "gRPC".
#
# Environment:
#   BENCH_SECONDS         seconds per timed run (default 10)
#   BENCH_CONCURRENCY     closed-loop concurrencies (default "1 8 64")
#   BENCH_WARMUP_SECONDS  warm-up per client at concurrency 8 (default 2)
#   BENCH_SERVER_CPU      core for ferry (default 0)
#   BENCH_CLIENT_CPU      core for the load generators (default 1)
#   BENCH_SHARED_CONN     1 (default): also run gRPC with all slots on one connection (N > 1)
#   BENCH_GHZ             1 (default): also run ghz for unary; 0 skips it
#   BENCH_H2LOAD          1 (default): also run h2load for unary; 0 skips it
#   BENCH_NATIVE          1 (default): also run the gRPC rows against a second ferry
#                         process with --grpc-transport native (same flags, same core,
#                         idle while the other one is measured); 0 skips it
#   GHZ_VERSION           ghz module version to build (default v0.120.0)
#   FERRY_BIN             server binary (default build/dev/ferry, built if missing/stale)
#   PYTHON                python with numpy, onnx, onnxruntime, requests, tritonclient[grpc]
#                         (default .venv/bin/python)
#   BENCH_KEEP_WORKDIR=1  keep the temp folder (logs, bodies, raw results) after a clean run
#
# Output: a Markdown report on stdout and in build/bench/grpc_results.md; progress on stderr.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SECONDS_PER_RUN="${BENCH_SECONDS:-10}"
CONCURRENCY="${BENCH_CONCURRENCY:-1 8 64}"
WARMUP_SECONDS="${BENCH_WARMUP_SECONDS:-2}"
SERVER_CPU="${BENCH_SERVER_CPU:-0}"
CLIENT_CPU="${BENCH_CLIENT_CPU:-1}"
SHARED_CONN="${BENCH_SHARED_CONN:-1}"
USE_GHZ="${BENCH_GHZ:-1}"
USE_H2LOAD="${BENCH_H2LOAD:-1}"
USE_NATIVE="${BENCH_NATIVE:-1}"
GHZ_VERSION="${GHZ_VERSION:-v0.120.0}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
OUT_DIR="$ROOT/build/bench"
GEN_DIR="$OUT_DIR/gen"
GHZ_BIN="$OUT_DIR/bin/ghz"
INFER_PATH="/v2/models/add_sub/versions/1/infer"
PROTO="protocol/grpc/grpc_service.proto"

BENCH_TAG=grpc-bench
source "$ROOT/bench/lib.sh"

for tool in wrk taskset curl g++ protoc pkg-config; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (wrk: apt-get install -y wrk; protoc: protobuf-compiler)"
done
pkg-config --exists grpc++ protobuf || die "grpc++/protobuf development files not found (apt-get install -y libgrpc++-dev libprotobuf-dev)"
[[ -x "$PYTHON" ]] || die "python not found at $PYTHON (set PYTHON or create .venv with scripts/setup.sh)"
if [[ $USE_H2LOAD == 1 ]] && ! command -v h2load >/dev/null 2>&1; then
  log "WARNING: h2load not found (apt-get install -y nghttp2-client); skipping the h2load rows"
  USE_H2LOAD=0
fi

LOAD_BEFORE="$(cut -d" " -f1-3 /proc/loadavg)"
START_TIME=$SECONDS
WORK="$(mktemp -d -t ferry-grpc-bench.XXXXXX)"

# ---------------------------------------------------------------------------- build
mkdir -p "$OUT_DIR" "$GEN_DIR" "$OUT_DIR/bin"
build_ferry

build_grpc_load "$OUT_DIR"
protoc --descriptor_set_out="$OUT_DIR/grpc_service.protoset" --include_imports -I "$ROOT/src" "$PROTO"

if [[ $USE_GHZ == 1 ]]; then
  if [[ ! -x "$GHZ_BIN" || "$(cat "$OUT_DIR/bin/ghz.version" 2>/dev/null)" != "$GHZ_VERSION" ]]; then
    if command -v go >/dev/null 2>&1; then
      log "building ghz $GHZ_VERSION into build/bench/bin (go install; about a minute the first time)"
      if GOBIN="$OUT_DIR/bin" go install "github.com/bojand/ghz/cmd/ghz@$GHZ_VERSION" >"$WORK/ghz-build.log" 2>&1; then
        echo "$GHZ_VERSION" >"$OUT_DIR/bin/ghz.version"
      else
        tail -n 20 "$WORK/ghz-build.log" >&2
        log "WARNING: ghz build failed; skipping the ghz rows"
        USE_GHZ=0
      fi
    else
      log "WARNING: go not found; skipping the ghz rows"
      USE_GHZ=0
    fi
  fi
fi

# ---------------------------------------------------------------------------- inputs
log "generating the model repository and request bodies in $WORK"
"$PYTHON" "$ROOT/examples/generate_models.py" "$WORK/repo" >"$WORK/generate.log" 2>&1 \
  || { cat "$WORK/generate.log" >&2; die "generate_models.py failed"; }
MODEL="$WORK/repo/add_sub/1/model.onnx"
"$PYTHON" "$ROOT/bench/make_bodies.py" bodies "$WORK" >&2

read -r HTTP_PORT GRPC_PORT NATIVE_HTTP_PORT NATIVE_GRPC_PORT < <(free_ports 4)


# ---------------------------------------------------------------------------- server
FERRY_ARGS=(serve --model-repository "$WORK/repo" --http-address 127.0.0.1 --http-port "$HTTP_PORT"
  --grpc-port "$GRPC_PORT" --metrics-port 0 --http-threads 1 --intra-op-threads 1 --grpc-transport grpc++)
log "starting ferry: HTTP 127.0.0.1:$HTTP_PORT, gRPC 127.0.0.1:$GRPC_PORT (core $SERVER_CPU)"
start_server "$WORK/ferry.log" taskset -c "$SERVER_CPU" "$FERRY_BIN" "${FERRY_ARGS[@]}"
FERRY_PID=$SERVER_PID
wait_http "http://127.0.0.1:$HTTP_PORT/v2/health/ready" "$FERRY_PID" ferry
wait_port "$GRPC_PORT" "$FERRY_PID" "ferry (gRPC)"
NATIVE_PID=""
if [[ $USE_NATIVE == 1 ]]; then
  NATIVE_ARGS=(serve --model-repository "$WORK/repo" --http-address 127.0.0.1 --http-port "$NATIVE_HTTP_PORT"
    --grpc-port "$NATIVE_GRPC_PORT" --metrics-port 0 --http-threads 1 --intra-op-threads 1 --grpc-transport native)
  log "starting ferry --grpc-transport native: gRPC 127.0.0.1:$NATIVE_GRPC_PORT (core $SERVER_CPU)"
  start_server "$WORK/ferry-native.log" taskset -c "$SERVER_CPU" "$FERRY_BIN" "${NATIVE_ARGS[@]}"
  NATIVE_PID=$SERVER_PID
  wait_http "http://127.0.0.1:$NATIVE_HTTP_PORT/v2/health/ready" "$NATIVE_PID" "ferry (native gRPC)"
  wait_port "$NATIVE_GRPC_PORT" "$NATIVE_PID" "ferry (native gRPC)"
fi

threads_of() {  # PID -> "N (count name, ...)"
  local names
  names="$(for t in /proc/"$1"/task/*; do cat "$t/comm" 2>/dev/null; done | sort | uniq -c | sort -rn \
    | awk '{ c = $1; $1 = ""; sub(/^ /, ""); printf "%s%d %s", (NR > 1 ? ", " : ""), c, $0 }')"
  echo "$(ls /proc/"$1"/task | wc -l) ($names)"
}
THREADS_IDLE="$(threads_of "$FERRY_PID")"
log "ferry threads after startup: $THREADS_IDLE"

log "sanity check: ferry REST vs onnxruntime (Python)"
"$PYTHON" "$ROOT/bench/make_bodies.py" check "$WORK" "http://127.0.0.1:$HTTP_PORT$INFER_PATH" "$MODEL" >&2
log "sanity check: ferry gRPC (tritonclient.grpc, unary and stream) vs onnxruntime"
"$PYTHON" "$ROOT/bench/grpc_check.py" check "$WORK" "127.0.0.1:$GRPC_PORT" "$MODEL" >&2
if [[ -n $NATIVE_PID ]]; then
  log "sanity check: ferry gRPC on the native transport vs onnxruntime"
  "$PYTHON" "$ROOT/bench/grpc_check.py" check "$WORK" "127.0.0.1:$NATIVE_GRPC_PORT" "$MODEL" >&2
fi
"$OUT_DIR/grpc_load" --inputs "$WORK/grpc_inputs.bin" --write-request "$WORK/grpc_request.bin"
# The same request as one gRPC message on the wire (flag 0, 4-byte big-endian length), for h2load.
"$PYTHON" -c 'import struct, sys; b = open(sys.argv[1], "rb").read(); open(sys.argv[2], "wb").write(b"\0" + struct.pack(">I", len(b)) + b)' \
  "$WORK/grpc_request.bin" "$WORK/grpc_request.frame"

# ---------------------------------------------------------------------------- runs
to_s() { awk -v t="$1" 'BEGIN { split(t, a, "m"); sub(/s$/, "", a[2]); printf "%.3f", a[1] * 60 + a[2] }'; }
CLK_TCK="$(getconf CLK_TCK)"
ferry_alive() {
  kill -0 "$FERRY_PID" 2>/dev/null || die "ferry died during the benchmark (see the log tail below)"
  [[ -z $NATIVE_PID ]] || kill -0 "$NATIVE_PID" 2>/dev/null || die "ferry (native gRPC) died during the benchmark"
}

# Each run prints one line "RESULT requests=.. rps=.. p50_us=.. p99_us=.. errors=.. client_cpu_pct=.. note=.."
run_wrk() {  # CONNECTIONS SECONDS
  local out ch cu cs
  out="$( { BENCH_BODY="$WORK/binary.req" BENCH_LABEL="rest-binary/c$1" \
      BENCH_HEADERS="Content-Type: application/octet-stream|Inference-Header-Content-Length: $(cat "$WORK/binary.ihcl")" \
      taskset -c "$CLIENT_CPU" wrk -t1 -c"$1" -d"$2"s --timeout 5s -s "$ROOT/bench/wrk_post.lua" \
      "http://127.0.0.1:$HTTP_PORT$INFER_PATH" 2>&1 && times; } )" \
    || { printf '%s\n' "$out" >&2; die "wrk failed at c=$1"; }
  local line; line="$(grep '^WRKRESULT' <<<"$out")" || { printf '%s\n' "$out" >&2; die "no result line from wrk"; }
  log "  $line"
  read -r cu cs < <(tail -n 1 <<<"$out")  # `times`: children's user and system time
  local e=0 k
  for k in err_connect err_read err_write err_status err_timeout; do e=$((e + $(field "$line" "$k"))); done
  echo "RESULT requests=$(field "$line" requests) rps=$(field "$line" rps) p50_us=$(field "$line" p50_us)" \
    "p99_us=$(field "$line" p99_us) errors=$e" \
    "client_cpu_pct=$(calc "100 * ($(to_s "$cu") + $(to_s "$cs")) * 1000000 / $(field "$line" duration_us)" 0) note=-"
}
run_load() {  # MODE CONCURRENCY CONNECTIONS SECONDS [PORT]
  local out line
  out="$(timeout $((${4%.*} + 60)) taskset -c "$CLIENT_CPU" "$OUT_DIR/grpc_load" --target "127.0.0.1:${5:-$GRPC_PORT}" --mode "$1" \
    --concurrency "$2" --connections "$3" --seconds "$4" --inputs "$WORK/grpc_inputs.bin" \
    --expect "$WORK/grpc_expect.bin" --label "$1/c$2/conn$3" 2>"$WORK/grpc_load.err")" \
    || { cat "$WORK/grpc_load.err" >&2; die "grpc_load failed ($1, c=$2, conns=$3)"; }
  cat "$WORK/grpc_load.err" >&2
  cat "$WORK/grpc_load.err" >>"$WORK/client-errors.log"
  line="$(grep '^GRPCRESULT' <<<"$out")" || die "no result line from grpc_load"
  log "  $line"
  local e=$(( $(field "$line" errors) + $(field "$line" wrong) + $(field "$line" timeouts) ))
  local note=-
  if (( $(field "$line" wrong) > 0 )); then note="$(field "$line" wrong)_wrong_outputs"; fi
  echo "RESULT requests=$(field "$line" requests) rps=$(field "$line" rps) p50_us=$(field "$line" p50_us)" \
    "p99_us=$(field "$line" p99_us) errors=$e client_cpu_pct=$(calc "$(field "$line" client_cpu_pct)" 0) note=$note"
}
run_ghz() {  # CONCURRENCY SECONDS
  local out cu cs
  out="$( { timeout $((${2%.*} + 60)) taskset -c "$CLIENT_CPU" "$GHZ_BIN" --insecure --protoset "$OUT_DIR/grpc_service.protoset" \
      --call inference.GRPCInferenceService.ModelInfer -B "$WORK/grpc_request.bin" \
      -c "$1" --connections "$1" -z "$2"s -t 5s -O json "127.0.0.1:$GRPC_PORT" >"$WORK/ghz.json" 2>"$WORK/ghz.err" && times; } )" \
    || { cat "$WORK/ghz.err" >&2; die "ghz failed at c=$1"; }
  read -r cu cs < <(tail -n 1 <<<"$out")
  "$PYTHON" - "$WORK/ghz.json" "$(to_s "$cu")" "$(to_s "$cs")" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
lat = {p["percentage"]: p["latency"] / 1000 for p in d.get("latencyDistribution") or []}
codes = d.get("statusCodeDistribution") or {}
ok = codes.get("OK", 0)
errs = d.get("errorDistribution") or {}
# ghz ends a -z run by closing its connections under the calls still in flight; those
# come back as Unavailable "use of closed network connection" (or Canceled): client-side.
end_of_run = sum(n for m, n in errs.items() if "use of closed network connection" in m or "Canceled" in m)
other = sum(codes.values()) - ok - end_of_run
secs = d["total"] / 1e9
cpu = (float(sys.argv[2]) + float(sys.argv[3])) / secs * 100
note = f"{end_of_run}_cut_at_end" if end_of_run else "-"
print(f"RESULT requests={ok} rps={ok / secs:.1f} p50_us={lat.get(50, 0):.0f} p99_us={lat.get(99, 0):.0f} "
      f"errors={other} client_cpu_pct={cpu:.0f} note={note}")
for m, n in errs.items():
    if not ("use of closed network connection" in m or "Canceled" in m):
        print(f"ghz error x{n}: {m}", file=sys.stderr)
EOF
}

model_counts() {  # HTTP_PORT -> "success fail" of add_sub v1
  curl -s "http://127.0.0.1:$1/v2/models/add_sub/versions/1/stats" | "$PYTHON" -c '
import json, sys
s = json.load(sys.stdin)["model_stats"][0]["inference_stats"]
print(s["success"]["count"], s["fail"]["count"])'
}
run_h2load() {  # CONCURRENCY SECONDS GRPC_PORT HTTP_PORT
  local out cu cs ok0 fail0 ok1 fail1
  read -r ok0 fail0 < <(model_counts "$4")
  out="$( { timeout $((${2%.*} + 60)) taskset -c "$CLIENT_CPU" h2load -c"$1" -m1 -D "$2" --log-file="$WORK/h2load.log" \
      -d "$WORK/grpc_request.frame" -H 'content-type: application/grpc' -H 'te: trailers' \
      "http://127.0.0.1:$3/inference.GRPCInferenceService/ModelInfer" 2>&1 && times; } )" \
    || { printf '%s\n' "$out" >&2; die "h2load failed at c=$1"; }
  read -r ok1 fail1 < <(model_counts "$4")
  read -r cu cs < <(tail -n 1 <<<"$out")
  "$PYTHON" - "$WORK/h2load.log" "$out" "$((ok1 - ok0))" "$((fail1 - fail0))" "$(to_s "$cu")" "$(to_s "$cs")" <<'EOF'
import re, sys
import numpy as np
log, out = sys.argv[1], sys.argv[2]
served, failed, cu, cs = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
secs = float(re.search(r"finished in ([0-9.]+)s", out).group(1))
m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
              r"(\d+) errored, (\d+) timeout", out)
ok, bad = int(m.group(4)), int(m.group(5)) + int(m.group(6)) + int(m.group(7))
lat = np.array([float(line.split()[2]) for line in open(log) if line.strip()])
# A gRPC error travels in an HTTP 200's trailers, which h2load does not read: the server's
# counts say whether every answer was a success.
bad += failed + max(0, ok - served)
print(f"RESULT requests={ok} rps={ok / secs:.1f} p50_us={np.percentile(lat, 50):.0f} "
      f"p99_us={np.percentile(lat, 99):.0f} errors={bad} client_cpu_pct={(cu + cs) / secs * 100:.0f} note=-")
EOF
}

# Rows: KEY|label|client|connections(for concurrency c: "c" or "1")
ROWS=("rest|REST binary|wrk|c" "unary|gRPC unary|grpc_load|c" "stream|gRPC stream|grpc_load|c")
if [[ $SHARED_CONN == 1 ]]; then
  ROWS+=("unary1|gRPC unary|grpc_load|1" "stream1|gRPC stream|grpc_load|1")
fi
if [[ $USE_NATIVE == 1 ]]; then
  ROWS+=("nunary|gRPC unary, native|grpc_load|c" "nstream|gRPC stream, native|grpc_load|c")
  if [[ $SHARED_CONN == 1 ]]; then
    ROWS+=("nunary1|gRPC unary, native|grpc_load|1" "nstream1|gRPC stream, native|grpc_load|1")
  fi
fi
if [[ $USE_GHZ == 1 ]]; then ROWS+=("ghz|gRPC unary|ghz|c"); fi
if [[ $USE_H2LOAD == 1 ]]; then
  ROWS+=("h2|gRPC unary|h2load|c")
  if [[ $USE_NATIVE == 1 ]]; then ROWS+=("nh2|gRPC unary, native|h2load|c"); fi
fi

run_row() {  # KEY CONCURRENCY SECONDS
  case "$1" in
    rest) run_wrk "$2" "$3" ;;
    unary) run_load unary "$2" "$2" "$3" ;;
    stream) run_load stream "$2" "$2" "$3" ;;
    unary1) run_load unary "$2" 1 "$3" ;;
    stream1) run_load stream "$2" 1 "$3" ;;
    nunary) run_load unary "$2" "$2" "$3" "$NATIVE_GRPC_PORT" ;;
    nstream) run_load stream "$2" "$2" "$3" "$NATIVE_GRPC_PORT" ;;
    nunary1) run_load unary "$2" 1 "$3" "$NATIVE_GRPC_PORT" ;;
    nstream1) run_load stream "$2" 1 "$3" "$NATIVE_GRPC_PORT" ;;
    ghz) run_ghz "$2" "$3" ;;
    h2) run_h2load "$2" "$3" "$GRPC_PORT" "$HTTP_PORT" ;;
    nh2) run_h2load "$2" "$3" "$NATIVE_GRPC_PORT" "$NATIVE_HTTP_PORT" ;;
  esac
}

log "warm-up: ${WARMUP_SECONDS}s per client at concurrency 8"
for key in rest unary stream $([[ $USE_NATIVE == 1 ]] && echo nunary nstream) $([[ $USE_GHZ == 1 ]] && echo ghz) $([[ $USE_H2LOAD == 1 ]] && echo h2); do
  run_row "$key" 8 "$WARMUP_SECONDS" >/dev/null
  ferry_alive
done

declare -A R
declare -a DONE_ROWS=()
for c in $CONCURRENCY; do
  for row in "${ROWS[@]}"; do  # back to back, so all see the same machine weather
    IFS='|' read -r key label client conns <<<"$row"
    [[ $conns == c ]] && conns=$c
    if [[ $key == *1 && $c == 1 ]]; then continue; fi  # one connection already
    log "$label ($client) c=$c conns=$conns (${SECONDS_PER_RUN}s)"
    pid=$FERRY_PID
    [[ $key == n* ]] && pid=$NATIVE_PID
    t0="$(tree_cpu_ticks "$pid")"
    line="$(run_row "$key" "$c" "$SECONDS_PER_RUN")"
    t1="$(tree_cpu_ticks "$pid")"
    ferry_alive
    log "  -> $line"
    id="$key/$c"
    DONE_ROWS+=("$id|$label|$client|$conns|$c")
    for k in requests rps p50_us p99_us errors client_cpu_pct note; do R[$id/$k]="$(field "$line" "$k")"; done
    R[$id/cpu_us]="$(calc "($t1 - $t0) * 1000000 / $CLK_TCK / (${R[$id/requests]} > 0 ? ${R[$id/requests]} : 1)" 1)"
  done
done
THREADS_AFTER="$(threads_of "$FERRY_PID")"
[[ -z $NATIVE_PID ]] || NATIVE_THREADS_AFTER="$(threads_of "$NATIVE_PID")"

# ferry's own view after the run: did every request succeed?
read -r STAT_OK STAT_FAIL < <(model_counts "$HTTP_PORT" 2>/dev/null || echo "? ?")
LOG_ERRORS="$(cat "$WORK"/ferry*.log | grep -c 'level=error\|level=warn' || true)"
ELAPSED=$((SECONDS - START_TIME))

# ---------------------------------------------------------------------------- report

report() {
  echo "# ferry gRPC benchmark"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), ferry $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- src 2>/dev/null || echo ' (src/ modified)') (binary ${FERRY_BIN#$ROOT/}, built $(date -u -r "$FERRY_BIN" '+%Y-%m-%d %H:%M UTC')), $(nproc) cores, kernel $(uname -r), load average before the run: $LOAD_BEFORE; $ELAPSED s in all"
  echo
  echo "add_sub v1, batch 1 (two FP32 [1,16] inputs, both outputs requested; REST uses the binary tensor extension both ways, gRPC raw_input_contents / raw_output_contents)."
  echo "ferry on core $SERVER_CPU: \`taskset -c $SERVER_CPU ferry $(sed "s#$WORK/#\$WORK/#g" <<<"${FERRY_ARGS[*]}")\`."
  echo "ferry threads: $THREADS_IDLE after startup; $THREADS_AFTER after the runs."
  if [[ -n $NATIVE_PID ]]; then
    echo "Rows marked \"native\": a second ferry process with the same flags plus \`--grpc-transport native\`, on the same core, idle while the first is measured (and the reverse); its threads after the runs: $NATIVE_THREADS_AFTER."
  fi
  echo "Clients on core $CLIENT_CPU, ${SECONDS_PER_RUN}s per run, closed loop: REST = wrk -t1 -cN (N keep-alive connections); gRPC = build/bench/grpc_load (one thread, N calls or N streams in flight; \"conns\" TCP connections)$([[ $USE_GHZ == 1 ]] && echo "; ghz $GHZ_VERSION -cN --connections N (unary only)")$([[ $USE_H2LOAD == 1 ]] && echo "; h2load -cN -m1 (unary only: N connections, one call in flight on each; answers checked by the server's success and failure counts, not by content)")."
  echo "Latencies in µs, request sent to response received. × REST = req/s over the REST binary req/s at the same concurrency, same run. Server CPU = ferry's user + system time (all threads) during the run / requests answered. Client CPU = the load generator's CPU time / run time (100% = its core is saturated)."
  echo
  echo "| protocol / mode | client | conc | conns | req/s | p50 µs | p99 µs | × REST binary | p99/p50 | server CPU µs/req | client CPU % | errors |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  local row id label client conns c
  for row in "${DONE_ROWS[@]}"; do
    IFS='|' read -r id label client conns c <<<"$row"
    local rest="rest/$c" ratio="—" p99p50="—" err="${R[$id/errors]}"
    if [[ -n "${R[$rest/rps]:-}" && $id != rest/* ]]; then ratio="$(calc "${R[$id/rps]} / ${R[$rest/rps]}" 2)×"; fi
    if [[ "${R[$id/p50_us]}" != 0 ]]; then p99p50="$(calc "${R[$id/p99_us]} / ${R[$id/p50_us]}" 1)"; fi
    [[ "${R[$id/note]}" != - ]] && err="$err (${R[$id/note]//_/ })"
    local mark=""
    if awk -v p="${R[$id/client_cpu_pct]}" 'BEGIN { exit !(p >= 90) }'; then mark=" ‡"; fi
    echo "| $label | $client | $c | $conns | $(fmt "${R[$id/rps]}")$mark | ${R[$id/p50_us]} | ${R[$id/p99_us]} | $ratio | $p99p50 | ${R[$id/cpu_us]} | ${R[$id/client_cpu_pct]} | $err |"
  done
  echo
  echo "‡ the load generator's core was ≥ 90% busy: that row measures the client as much as ferry."
  echo
  echo "Goals, for grpc_load with one connection per call/stream (conns = conc) and with all calls/streams on one connection (conns = 1; the same run as the former at conc 1), and for h2load (conns = conc):"
  echo
  local mode
  mode_name() {  # unary, nstream1, ... -> "gRPC unary, native, conns = 1"
    local m="${1%1}" t=""
    [[ $m == n* ]] && { m="${m#n}"; t=", native"; }
    if [[ $m == h2 ]]; then echo "gRPC unary$t, h2load, conns = ${3:-conc}"; return; fi
    echo "gRPC $m$t, $([[ $1 == *1 ]] && echo "conns = ${2:-1}" || echo "conns = ${3:-conc}")"
  }
  for mode in unary stream unary1 stream1 nunary nstream nunary1 nstream1 h2 nh2; do
    local parts=() met=0 total=0 name; name="$(mode_name "$mode")"
    for c in $CONCURRENCY; do
      local id="$mode/$c"
      [[ $mode == *1 && $c == 1 ]] && id="${mode%1}/1"
      [[ -n "${R[$id/rps]:-}" && -n "${R[rest/$c/rps]:-}" ]] || continue
      total=$((total + 1))
      local r; r="$(calc "${R[$id/rps]} / ${R[rest/$c/rps]}" 2)"
      if awk -v r="$r" 'BEGIN { exit !(r >= 1.2) }'; then met=$((met + 1)); fi
      parts+=("c=$c ${r}×")
    done
    (( total > 0 )) || continue
    echo "- $name: req/s ≥ 1.2× REST binary met at $met of $total concurrencies ($(IFS=,; echo "${parts[*]}" | sed 's/,/, /g'))."
  done
  if [[ " $CONCURRENCY " == *" 8 "* ]]; then
    for mode in unary stream unary1 stream1 nunary nstream nunary1 nstream1 h2 nh2; do
      local id="$mode/8" name; name="$(mode_name "$mode" 1 8)"
      [[ -n "${R[$id/p50_us]:-}" ]] || continue
      local q; q="$(calc "${R[$id/p99_us]} / ${R[$id/p50_us]}" 1)"
      echo "- $name: p99 ≤ 2× p50 at concurrency 8 $(awk -v q="$q" 'BEGIN { print (q <= 2 ? "met" : "missed") }') (p50 ${R[$id/p50_us]} µs, p99 ${R[$id/p99_us]} µs, ${q}×; REST binary in the same run: $(calc "${R[rest/8/p99_us]} / ${R[rest/8/p50_us]}" 1)×)."
    done
  else
    echo "- p99 ≤ 2× p50 at concurrency 8: not measured (8 not in BENCH_CONCURRENCY)."
  fi
  echo
  echo "ferry's own statistics after the run (the grpc++ process; add_sub v1, REST and gRPC together, warm-up and sanity checks included): $STAT_OK successful, $STAT_FAIL failed inferences. Warning/error lines in ferry's log: $LOG_ERRORS."
}

REPORT="$(report)"
printf '%s\n' "$REPORT" >"$OUT_DIR/grpc_results.md"
printf '%s\n' "$REPORT"
log "report written to build/bench/grpc_results.md"
