#!/usr/bin/env bash
# Label-free performance estimate (issue 11, benchmark 3): the error of the estimated ROC
# AUC and accuracy against the realised ones, ferry's CBPE beside NannyML's CBPE, on the
# same rows: NannyML's bundled synthetic car-loan set (50k reference rows, 50k analysis
# rows with targets, a real change at analysis row 25,000), chunks of 5000 rows.
#   NannyML: CBPE fitted (and calibrated, as it decides) on the reference, estimate per chunk.
#   ferry:   `ferry serve` with an ONNX identity model that answers the set's predicted
#            probability; its feedback monitor's CBPE window of 5000 predictions is read
#            after each chunk, then the chunk's targets are posted as feedback and the
#            realised values read back (checked against scikit-learn's).
# NannyML (PyPI, pinned below) gets its own venv outside the clone, made once:
# /var/cache/ferry/nannyml-<v>/venv. Its usage telemetry is switched off.
#
# Environment:
#   FERRY_BIN     server binary (default build/dev/ferry, built if missing)
#   PYTHON        python with numpy, onnx, requests (default .venv/bin/python)
#   BENCH_CACHE   cache root (default /var/cache/ferry)
#
# Output: a Markdown report on stdout and in build/bench/cbpe.md; progress on stderr.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
NANNYML_VERSION=0.13.1
VENV="${BENCH_CACHE:-/var/cache/ferry}/nannyml-$NANNYML_VERSION/venv"
# NannyML imports statsmodels (its plots) without declaring it.
PKGS=(nannyml==$NANNYML_VERSION statsmodels==0.15.0)
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
OUT_DIR="$ROOT/build/bench"
export NML_DISABLE_USAGE_LOGGING=1

BENCH_TAG=cbpe-bench
source "$ROOT/bench/lib.sh"
require_tools python3 curl
WORK="$(mktemp -d -t ferry-cbpe-bench.XXXXXX)"
mkdir -p "$OUT_DIR"

if [[ "$(cat "$VENV/.pkgs" 2>/dev/null || true)" != "${PKGS[*]}" ]]; then
  log "installing ${PKGS[*]} into $VENV (a few minutes, once)"
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PKGS[@]}" >"$WORK/pip.log" 2>&1 \
    || { tail -n 30 "$WORK/pip.log" >&2; die "pip install of nannyml failed"; }
  echo "${PKGS[*]}" >"$VENV/.pkgs"
fi
build_ferry

log "NannyML: CBPE on the car-loan set"
"$VENV/bin/python" "$ROOT/bench/cbpe_bench.py" nannyml "$WORK" >&2
"$PYTHON" "$ROOT/bench/cbpe_bench.py" model "$WORK/repo"
read -r HTTP GRPC METRICS < <(free_ports 3)
start_server "$WORK/ferry.log" "$FERRY_BIN" serve --model-repository "$WORK/repo" --http-port "$HTTP" \
  --grpc-port "$GRPC" --metrics-port "$METRICS"
wait_http "http://127.0.0.1:$HTTP/v2/models/car_loan/ready" "$SERVER_PID" "ferry serve"
log "ferry: the same analysis rows through the server"
{
  echo "### Label-free estimate (CBPE) — $(date -u +%Y-%m-%d), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
  echo
  echo "Command: \`bench/run_cbpe_bench.sh\`; load before: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo
  "$PYTHON" "$ROOT/bench/cbpe_bench.py" ferry "$WORK" "127.0.0.1:$HTTP"
} | tee "$OUT_DIR/cbpe.md"
