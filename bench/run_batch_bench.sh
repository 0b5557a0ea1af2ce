#!/usr/bin/env bash
# Offline batch benchmark: rows/s of `ferry batch` (in-process) over CSV, Parquet and .npy files,
# for two models: the example mlp_classifier (FP32 [-1,4] -> probabilities [3], label [1]),
# where reading and writing the files is nearly all the work, and the dynamic batching
# benchmark's compute-bound MLP (x [-1,256] -> 1024 -> 1024 -> y [16]); ferry's jobs are npy -> npy,
# csv -> csv, csv -> jsonl, parquet -> csv and parquet -> parquet (the same table as float32 columns), each next to
#   ceiling   the runtime alone on the same batches: build/dev/batch_inprocess (ONNX Runtime's
#             C API, one Run() at a time, no parsing or formatting), and onnxruntime Python alone;
#   peers     pandas.read_csv + onnxruntime + DataFrame.to_csv, and np.load + onnxruntime + np.save;
#   remote    the same csv -> csv job with `ferry batch --url http://...` and `--url grpc://...`
#             against a `ferry serve` that this script starts on loopback (same models, same
#             intra-op threads, same batch size, the default --concurrency 4).
# Every contender runs the model with BENCH_INTRA intra-op threads on batches of BENCH_BATCH rows;
# the contenders take turns, one run each per round, for BENCH_REPEAT rounds, and each one's best
# run counts (the machine is shared). Besides rows/s, each run's CPU time (user + sys of the
# process and its children, from bash's `time`; for the remote jobs plus the server's, from
# /proc) is kept, the least of the rounds: the ceiling runs on one core, ferry on two, so the
# CPU seconds for the same rows are the like-for-like comparison.
# The outputs are checked: ferry's CSV and .npy must match the pandas and numpy peers', and the
# remote jobs' CSV and the Parquet job's must be byte-identical to the in-process csv -> csv one, and the
# parquet -> parquet job's table must hold the same values as that CSV.
#
# Environment: BENCH_ROWS (1000000, tiny model), BENCH_HEAVY_ROWS (50000, compute-bound model), BENCH_BATCH (1024), BENCH_INTRA (1), BENCH_REPEAT (3),
#   FERRY_BIN (build/dev/ferry), PYTHON (.venv/bin/python), BENCH_KEEP_WORKDIR=1 keeps the files.
# Output: a Markdown table on stdout and in build/bench/batch_results.md; progress on stderr.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BENCH_TAG=batch-bench
source bench/lib.sh

ROWS="${BENCH_ROWS:-1000000}"
BATCH="${BENCH_BATCH:-1024}"
INTRA="${BENCH_INTRA:-1}"
REPEAT="${BENCH_REPEAT:-3}"
HEAVY_ROWS="${BENCH_HEAVY_ROWS:-50000}"
FERRY="${FERRY_BIN:-$ROOT/build/dev/ferry}"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
ORT_DIR="$ROOT/third_party/onnxruntime"
OUT_DIR="$ROOT/build/bench"
mkdir -p "$OUT_DIR"
[[ -x "$FERRY" ]] || die "no ferry binary at $FERRY (cmake --build --preset dev)"
# bench/lib.sh's exit trap stops the server and removes WORK (kept on failure or with BENCH_KEEP_WORKDIR=1).
WORK="$(mktemp -d /tmp/ferry-batch-bench.XXXXXX)"
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
log "load average before: $LOAD_BEFORE"

log "compiling build/bench/batch_inprocess"
g++ -O2 -std=c++17 -Wall -Wextra -I "$ORT_DIR/include" bench/batch_inprocess.cc -o "$OUT_DIR/batch_inprocess" \
  -L "$ORT_DIR/lib" -lonnxruntime -Wl,-rpath,"$ORT_DIR/lib"
log "generating the models in $WORK"
"$PY" examples/generate_models.py "$WORK/repo" >/dev/null
# The compute-bound MLP of the dynamic batching benchmark (x [-1,256] -> 1024 -> 1024 -> y [16]).
"$PY" bench/batching_tool.py prepare "$WORK/heavy" 500 "$BATCH" >/dev/null
mkdir -p "$WORK/repo/mlp_256"
cp -r "$WORK/heavy/repo/mlp_off/." "$WORK/repo/mlp_256/"
sed -i 's/name: "mlp_off"/name: "mlp_256"/' "$WORK/repo/mlp_256/config.pbtxt"

# The remote endpoint: one ferry serve holding the two models, on loopback.
mkdir -p "$WORK/serve-repo"
ln -s "$WORK/repo/mlp_classifier" "$WORK/repo/mlp_256" "$WORK/serve-repo/"
read -r HTTP_PORT GRPC_PORT METRICS_PORT < <(free_ports 3)
log "starting ferry serve on 127.0.0.1:$HTTP_PORT (REST) and :$GRPC_PORT (gRPC)"
start_server "$WORK/serve.log" "$FERRY" serve --model-repository "$WORK/serve-repo" --http-address 127.0.0.1 \
  --http-port "$HTTP_PORT" --grpc-port "$GRPC_PORT" --metrics-port "$METRICS_PORT" --intra-op-threads "$INTRA" \
  --log-level warning
wait_http "http://127.0.0.1:$HTTP_PORT/v2/health/ready" "$SERVER_PID" "ferry serve" 60

# Each contender runs once per round, in turn, so that all of them see the same machine
# weather; over BENCH_REPEAT rounds the best run of each counts.
declare -A BEST CPU
run_once() {  # KEY CMD...: one run; keeps its rows/s (from "rows_per_s=R" or ferry's summary) if best so far,
  # and its CPU seconds (the server's added for KEY r_*) if least so far
  local out r cpu ticks0 ticks1 times
  rm -f "$WORK"/out.*
  ticks0="$(tree_cpu_ticks "$SERVER_PID")"
  { TIMEFORMAT='%U %S'; time "${@:2}" >"$WORK/run.log" 2>&1; } 2>"$WORK/run.time" ||
    die "failed: ${*:2} -> $(cat "$WORK/run.log")"
  ticks1="$(tree_cpu_ticks "$SERVER_PID")"
  out="$(cat "$WORK/run.log")"
  times="$(tail -1 "$WORK/run.time")"
  r="$(grep -oE 'rows_per_s=[0-9]+|[0-9]+ rows/s' <<<"$out" | tail -1 | grep -oE '[0-9]+' | head -1)"
  (( r > ${BEST[$1]:-0} )) && BEST[$1]=$r
  [[ "$1" == r_* ]] || ticks1="$ticks0"
  cpu="$(awk -v t="$times" -v d=$((ticks1 - ticks0)) -v hz="$(getconf CLK_TCK)" \
    'BEGIN { split(t, a, " "); printf "%.2f", a[1] + a[2] + d / hz }')"
  [[ -z "${CPU[$1]:-}" ]] || awk -v a="$cpu" -v b="${CPU[$1]}" 'BEGIN { exit !(a < b) }' && CPU[$1]=$cpu
  return 0
}
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f%%", 100 * a / b }'; }
row() {  # LABEL KEY: a table row: rows/s, its share of the ceiling's, CPU s, the ceiling's CPU s as a share of it
  echo "| $1 | ${BEST[$2]} | $(pct "${BEST[$2]}" "${BEST[ceil]}") | ${CPU[$2]} | $(pct "${CPU[ceil]}" "${CPU[$2]}") |"
}

REPORT="$OUT_DIR/batch_results.md"
: >"$REPORT"
bench_model() {  # NAME ROWS FEATURES FIRST_OUTPUT TITLE
  local name="$1" rows="$2" features="$3" first="$4" title="$5" data="$WORK/data-$1"
  local model="$WORK/repo/$name/1/model.onnx"
  log "$name: $rows rows x $features features"
  "$PY" bench/batch_python.py make "$rows" "$features" "$data"
  ferry_batch() {  # INPUT OUTPUT [ARGS...]
    "$FERRY" batch --model-repository "$WORK/repo" --model "$name" --input "$1" --output "$2" \
      --batch-size "$BATCH" --intra-op-threads "$INTRA" --log-level warning "${@:3}"
  }
  remote_batch() {  # URL INPUT OUTPUT [ARGS...]: the same job against the server
    "$FERRY" batch --url "$1" --model "$name" --input "$2" --output "$3" --batch-size "$BATCH" \
      --log-level warning "${@:4}"
  }
  BEST=()
  CPU=()
  local round
  for ((round = 1; round <= REPEAT; round++)); do
    log "$name: round $round of $REPEAT"
    run_once ceil "$OUT_DIR/batch_inprocess" "$model" "$data/in.npy" "$BATCH" "$INTRA"
    run_once ortpy "$PY" bench/batch_python.py ort "$model" "$data/in.npy" "$BATCH" "$INTRA"
    run_once f_npy ferry_batch "$data/in.npy" "$WORK/out.npy" --outputs "$first"
    run_once f_csv ferry_batch "$data/in.csv" "$WORK/out.csv" --carry id
    run_once f_jsonl ferry_batch "$data/in.csv" "$WORK/out.jsonl" --carry id
    run_once f_pq ferry_batch "$data/in.parquet" "$WORK/out.csv" --carry id
    mv "$WORK/out.csv" "$WORK/parquet.csv"
    run_once f_pqpq ferry_batch "$data/in.parquet" "$WORK/out.parquet" --carry id
    mv "$WORK/out.parquet" "$WORK/parquet.parquet"
    run_once r_http remote_batch "http://127.0.0.1:$HTTP_PORT" "$data/in.csv" "$WORK/out.csv" --carry id
    mv "$WORK/out.csv" "$WORK/remote-http.csv"
    run_once r_grpc remote_batch "grpc://127.0.0.1:$GRPC_PORT" "$data/in.csv" "$WORK/out.csv" --carry id
    mv "$WORK/out.csv" "$WORK/remote-grpc.csv"
    run_once p_npy "$PY" bench/batch_python.py numpy "$model" "$data/in.npy" "$WORK/out.npy" "$BATCH" "$INTRA"
    run_once p_csv "$PY" bench/batch_python.py pandas "$model" "$data/in.csv" "$WORK/out.csv" "$BATCH" "$INTRA"
  done

  log "$name: checking that ferry and the peers agree"
  ferry_batch "$data/in.csv" "$WORK/ferry.csv" --carry id --restart >/dev/null 2>&1
  cmp "$WORK/ferry.csv" "$WORK/remote-http.csv" || die "$name: the REST job's CSV differs from the in-process one"
  cmp "$WORK/ferry.csv" "$WORK/remote-grpc.csv" || die "$name: the gRPC job's CSV differs from the in-process one"
  cmp "$WORK/ferry.csv" "$WORK/parquet.csv" || die "$name: the Parquet input's CSV differs from the CSV input's"
  "$PY" bench/batch_python.py pandas "$model" "$data/in.csv" "$WORK/pandas.csv" "$BATCH" "$INTRA" >/dev/null
  ferry_batch "$data/in.npy" "$WORK/ferry.npy" --outputs "$first" --restart >/dev/null 2>&1
  "$PY" bench/batch_python.py numpy "$model" "$data/in.npy" "$WORK/numpy.npy" "$BATCH" "$INTRA" >/dev/null
  "$PY" - "$WORK" <<'PY'
import sys, numpy as np, pandas as pd, pyarrow.parquet as pq
w = sys.argv[1]
a, b = pd.read_csv(f"{w}/ferry.csv"), pd.read_csv(f"{w}/pandas.csv")
t = pq.read_table(f"{w}/parquet.parquet").to_pandas()
assert list(t.columns) == list(a.columns), (t.columns, a.columns)
assert (t["id"] == a["id"]).all(), "the Parquet output's ids differ"
np.testing.assert_array_equal(t.iloc[:, 1:].to_numpy(np.float32), a.iloc[:, 1:].to_numpy(np.float32))
assert list(a.columns) == list(b.columns), (a.columns, b.columns)
assert (a["id"] == b["id"]).all(), "ids differ"
np.testing.assert_allclose(a.iloc[:, 1:].to_numpy(float), b.iloc[:, 1:].to_numpy(float), rtol=1e-5, atol=1e-6)
np.testing.assert_allclose(np.load(f"{w}/ferry.npy"), np.load(f"{w}/numpy.npy"), rtol=1e-5, atol=1e-6)
PY
  {
    echo "**$title** — $rows rows, batches of $BATCH, $INTRA intra-op thread(s), best of $REPEAT rounds (contenders in turn)"
    echo
    echo "| contender | rows/s | vs ceiling (C API) | CPU s | vs ceiling by CPU |"
    echo "| --- | ---: | ---: | ---: | ---: |"
    row "ceiling: ONNX Runtime C API alone, same batches" ceil
    row "onnxruntime Python alone, same batches" ortpy
    row "**ferry batch** npy -> npy" f_npy
    row "**ferry batch** csv -> csv (carry id)" f_csv
    row "**ferry batch** csv -> jsonl (carry id)" f_jsonl
    row "**ferry batch** parquet -> csv (carry id; float32 columns)" f_pq
    row "**ferry batch** parquet -> parquet (carry id)" f_pqpq
    row "**ferry batch --url http://** csv -> csv (carry id), ferry serve on loopback" r_http
    row "**ferry batch --url grpc://** csv -> csv (carry id), ferry serve on loopback" r_grpc
    row "numpy + onnxruntime: np.load, run, np.save" p_npy
    row "pandas + onnxruntime: read_csv, run, to_csv" p_csv
    echo
  } | tee -a "$REPORT"
}

bench_model mlp_classifier "$ROWS" 4 probabilities "mlp_classifier (4 -> 3 classes, tiny: the files are the work)"
bench_model mlp_256 "$HEAVY_ROWS" 256 y "mlp_256 (256 -> 1024 -> 1024 -> 16, compute-bound)"
echo "Machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), shared with other work." | tee -a "$REPORT"
echo "Load average before: $LOAD_BEFORE; after: $(cut -d' ' -f1-3 /proc/loadavg)." | tee -a "$REPORT"
