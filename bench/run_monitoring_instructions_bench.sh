#!/usr/bin/env bash
# Monitoring's cost in instructions per request, counted by valgrind's callgrind (all
# threads of the server, the monitoring thread included): the steady companion of
# bench/run_monitoring_bench.sh, whose timed figures move with the machine's load.
# User-space instructions only (no kernel, no cache effects): it ranks changes to the
# monitoring path, it does not replace the timed benchmark.
#
# The same model and configurations as run_monitoring_bench.sh: mlp_classifier v1 (ONNX,
# FP32 [1, 4], one row per request, JSON, no request id), and
#   off          no monitoring
#   log10        payload logging of 10% of requests to a JSONL file
#   drift_log10  drift on every feature and prediction (profile from 5,000 rows, windows
#                of 1,000 rows) plus payload logging of 10%: the issue's configuration
#   log100       payload logging of every request
# For each binary given (default build/dev/ferry) and configuration: `ferry serve` under
# callgrind with instrumentation off, 300 warm-up requests, then instrumentation on and
# BENCH_REQUESTS requests one after another on one keep-alive connection, then a wait of
# 0.3 s (the monitoring thread takes what is queued at least every 10 ms) and a dump.
#
# Usage: bench/run_monitoring_instructions_bench.sh [FERRY_BIN ...]
#   BENCH_REQUESTS       requests counted per configuration (default 2000)
#   BENCH_CONFIGS        configurations (default "off log10 drift_log10 log100")
#   BENCH_KEEP_WORKDIR=1 keep the temp folder (callgrind files for callgrind_annotate)
# Output: a Markdown table on stdout and in build/bench/monitoring_instructions.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BENCH_TAG=monitoring-instructions
source "$ROOT/bench/lib.sh"

REQUESTS="${BENCH_REQUESTS:-2000}"
read -r -a CONFIGS <<<"${BENCH_CONFIGS:-off log10 drift_log10 log100}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
OUT_DIR="$ROOT/build/bench"
require_tools valgrind callgrind_control curl
[[ -x "$PYTHON" ]] || die "python not found at $PYTHON (scripts/setup.sh creates .venv)"
LOAD_BEFORE="$(cut -d" " -f1-3 /proc/loadavg)"
WORK="$(mktemp -d -t ferry-monitoring-instructions.XXXXXX)"
BINS=("$@")
if [[ ${#BINS[@]} == 0 ]]; then
  build_ferry
  BINS=("$FERRY_BIN")
fi
mkdir -p "$OUT_DIR"

make_monitoring_repos "$WORK" "${BINS[0]}"

repo_for() { if [[ "$1" == drift_* ]]; then echo "$WORK/repo_drift"; else echo "$WORK/repo"; fi; }
flags_for() {  # CONFIG LABEL
  case "$1" in
    off) ;;
    log10 | drift_log10) echo "--payload-log file:$WORK/$2/payloads.jsonl --payload-log-sample-rate 0.1" ;;
    log100) echo "--payload-log file:$WORK/$2/payloads.jsonl" ;;
    *) die "unknown configuration $1" ;;
  esac
}

summary_of() { grep -h '^summary:' "$1" | awk '{ print $2 }'; }

count() {  # BIN CONFIG LABEL; sets COUNTED (instructions)
  local bin="$1" cfg="$2" label="$3" http pid
  read -r http < <(free_ports 1)
  mkdir -p "$WORK/$label"
  # shellcheck disable=SC2046
  start_server "$WORK/$label.log" valgrind --tool=callgrind --callgrind-out-file="$WORK/$label.cg" --instr-atstart=no \
    "$bin" serve --model-repository "$(repo_for "$cfg")" --http-address 127.0.0.1 --http-port "$http" --grpc-port 0 \
    --metrics-port 0 --http-threads 1 --intra-op-threads 1 $(flags_for "$cfg" "$label")
  pid=$SERVER_PID
  wait_http "http://127.0.0.1:$http/v2/models/mlp_classifier/versions/1/ready" "$pid" "ferry under callgrind ($label)" 600
  # --settle: the monitoring thread's share of the counted requests is counted too.
  "$PYTHON" "$ROOT/bench/callgrind_requests.py" "$http" "$pid" "$REQUESTS" counted \
    /v2/models/mlp_classifier/versions/1/infer "$WORK/json.req" --header "Content-Type: application/json" --settle 0.3
  local file; file="$(ls -t "$WORK/$label.cg".* | head -n 1)"
  stop_servers
  COUNTED="$(summary_of "$file")"
}

declare -A IR
i=0
for bin in "${BINS[@]}"; do
  i=$((i + 1))
  for cfg in "${CONFIGS[@]}"; do
    log "counting $bin ($cfg)"
    count "$bin" "$cfg" "b$i-$cfg"
    IR[$i/$cfg]="$(calc "$COUNTED / $REQUESTS" 0)"
    log "  $(fmt "${IR[$i/$cfg]}") instructions/request"
  done
done

report() {
  echo "# Monitoring cost in instructions per request (callgrind)"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), ferry $(git rev-parse --short HEAD), $(valgrind --version), load average before: $LOAD_BEFORE."
  echo "mlp_classifier v1, one row per request, JSON, no request id; $REQUESTS sequential requests on one connection per configuration, warm-up excluded; user-space instructions of every server thread (the monitoring thread included)."
  echo
  local head="| binary |" sep="|---|" cfg row
  for cfg in "${CONFIGS[@]}"; do head+=" $cfg |"; sep+="---:|"; done
  [[ "${CONFIGS[0]}" == off ]] && for cfg in "${CONFIGS[@]:1}"; do head+=" $cfg − off |"; sep+="---:|"; done
  echo "$head"
  echo "$sep"
  for ((i = 1; i <= ${#BINS[@]}; i++)); do
    row="| ${BINS[$((i - 1))]} |"
    for cfg in "${CONFIGS[@]}"; do row+=" $(fmt "${IR[$i/$cfg]}") |"; done
    [[ "${CONFIGS[0]}" == off ]] && for cfg in "${CONFIGS[@]:1}"; do row+=" +$(fmt "$(calc "${IR[$i/$cfg]} - ${IR[$i/off]}" 0)") |"; done
    echo "$row"
  done
}
REPORT="$(report)"
printf '%s\n' "$REPORT" >"$OUT_DIR/monitoring_instructions.md"
printf '%s\n' "$REPORT"
