#!/usr/bin/env bash
# ferry batch --url against `mlserver infer` (MLServer 1.7.1's deprecated batch client), both
# sending the same rows to the same `ferry serve` on loopback: what a user gets from each
# batch client. The issue (12) asks for the comparison "where it runs": mlserver infer is a
# V2 client, so it runs against any V2 server; ferry serve is used for both so that the
# server is not what differs.
#
#   ferry batch   reads the CSV itself (`--url http://...`, `--carry id`, batches of
#                 BENCH_BATCH rows, its default concurrency 4) and writes a CSV in input order;
#   mlserver infer gets what it needs, a file of V2 requests (JSON, one per line, BENCH_BATCH
#                 rows each, made beforehand and not timed: a user has to write that step),
#                 `--workers 4`, REST, and writes one response per line.
# Both outputs are compared with onnxruntime, row by row, and checked for input order.
#
# Environment: BENCH_ROWS (20000), BENCH_FEATURES (256: the compute-bound MLP; 4 runs the
#   tiny example classifier), BENCH_BATCH (1024), BENCH_REPEAT (3), FERRY_BIN, PYTHON.
# MLServer goes into build/bench/mlserver-venv (as bench/run_mlserver_bench.sh installs it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BENCH_TAG=batch-mlserver-infer
source bench/lib.sh

ROWS="${BENCH_ROWS:-20000}"
FEATURES="${BENCH_FEATURES:-256}"
BATCH="${BENCH_BATCH:-1024}"
REPEAT="${BENCH_REPEAT:-3}"
FERRY="${FERRY_BIN:-$ROOT/build/dev/ferry}"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
OUT_DIR="$ROOT/build/bench"
VENV="$OUT_DIR/mlserver-venv"
[[ -x "$FERRY" ]] || die "no ferry binary at $FERRY (cmake --build --preset dev)"
mkdir -p "$OUT_DIR"
WORK="$(mktemp -d /tmp/ferry-batch-mlserver.XXXXXX)"
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
ensure_mlserver_venv "$VENV" "$WORK"

log "generating the model and $ROWS rows of $FEATURES features in $WORK"
if [[ $FEATURES == 4 ]]; then
  MODEL=mlp_classifier
  "$PY" examples/generate_models.py "$WORK/gen" >/dev/null
  mkdir -p "$WORK/repo" && cp -r "$WORK/gen/mlp_classifier" "$WORK/repo/"
  INPUT=input
else
  MODEL=mlp_256
  "$PY" bench/batching_tool.py prepare "$WORK/heavy" 500 "$BATCH" >/dev/null
  mkdir -p "$WORK/repo/mlp_256" && cp -r "$WORK/heavy/repo/mlp_off/." "$WORK/repo/mlp_256/"
  sed -i 's/name: "mlp_off"/name: "mlp_256"/' "$WORK/repo/mlp_256/config.pbtxt"
  INPUT=x
fi
"$PY" bench/batch_python.py make "$ROWS" "$FEATURES" "$WORK/data"
# mlserver infer's input: V2 requests of BATCH rows, one JSON per line, ids = first row index.
"$PY" - "$WORK/data/in.npy" "$WORK/requests.jsonl" "$BATCH" "$INPUT" <<'PY'
import json, sys, numpy as np
x = np.load(sys.argv[1]); batch = int(sys.argv[3])
with open(sys.argv[2], "w") as f:
    for i in range(0, len(x), batch):
        part = x[i:i + batch]
        f.write(json.dumps({"id": str(i), "inputs": [{"name": sys.argv[4], "datatype": "FP32",
                            "shape": list(part.shape), "data": part.ravel().tolist()}]}) + "\n")
PY

read -r HTTP_PORT GRPC_PORT < <(free_ports 2)
start_server "$WORK/serve.log" "$FERRY" serve --model-repository "$WORK/repo" --http-address 127.0.0.1 \
  --http-port "$HTTP_PORT" --grpc-port "$GRPC_PORT" --metrics-port 0 --intra-op-threads 1 --log-level warning
wait_http "http://127.0.0.1:$HTTP_PORT/v2/health/ready" "$SERVER_PID" "ferry serve" 60

best_ferry=0 best_mls=0
for ((round = 1; round <= REPEAT; round++)); do
  log "round $round of $REPEAT"
  rm -f "$WORK/ferry.csv" "$WORK/mls.jsonl"
  t0=$(date +%s.%N)
  "$FERRY" batch --url "http://127.0.0.1:$HTTP_PORT" --model "$MODEL" --input "$WORK/data/in.csv" \
    --output "$WORK/ferry.csv" --batch-size "$BATCH" --carry id --log-level warning >/dev/null 2>&1
  t1=$(date +%s.%N)
  "$VENV/bin/mlserver" infer -u "127.0.0.1:$HTTP_PORT" -m "$MODEL" -i "$WORK/requests.jsonl" \
    -o "$WORK/mls.jsonl" --workers 4 -t rest >"$WORK/mls.log" 2>&1 || { tail -20 "$WORK/mls.log" >&2; die "mlserver infer failed"; }
  t2=$(date +%s.%N)
  r_f=$(awk -v n="$ROWS" -v a="$t0" -v b="$t1" 'BEGIN { printf "%d", n / (b - a) }')
  r_m=$(awk -v n="$ROWS" -v a="$t1" -v b="$t2" 'BEGIN { printf "%d", n / (b - a) }')
  log "  ferry batch --url: $r_f rows/s; mlserver infer: $r_m rows/s"
  (( r_f > best_ferry )) && best_ferry=$r_f
  (( r_m > best_mls )) && best_mls=$r_m
done

log "checking both outputs against onnxruntime"
CHECK="$("$PY" - "$WORK" "$WORK/repo/$MODEL/1/model.onnx" <<'PY'
import json, sys, numpy as np, onnxruntime as ort, pandas as pd
w, model = sys.argv[1], sys.argv[2]
x = np.load(f"{w}/data/in.npy")
s = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
ref = s.run(None, {s.get_inputs()[0].name: x})
first = s.get_outputs()[0].name
f = pd.read_csv(f"{w}/ferry.csv")
cols = [c for c in f.columns if c == first or c.startswith(first + "_")]
np.testing.assert_allclose(f[cols].to_numpy(float), ref[0].reshape(len(x), -1), rtol=1e-5, atol=1e-6)
assert list(f["id"]) == [f"r{i}" for i in range(len(x))], "ferry's rows are not in input order"
lines = [json.loads(l) for l in open(f"{w}/mls.jsonl")]
starts = [int(l["id"]) for l in lines]
out_of_order = sum(1 for a, b in zip(starts, starts[1:]) if b < a)
got = {}
for l in lines:
    o = next(o for o in l["outputs"] if o["name"] == first)
    got[int(l["id"])] = np.asarray(o["data"], dtype=np.float64).reshape(o["shape"])
mls = np.concatenate([got[k] for k in sorted(got)])
np.testing.assert_allclose(mls.reshape(len(x), -1), ref[0].reshape(len(x), -1), rtol=1e-5, atol=1e-6)
print(f"ferry: {len(f)} rows in input order, equal to onnxruntime; mlserver infer: {len(lines)} responses "
      f"({len(x)} rows) equal to onnxruntime once sorted by id, {out_of_order} of {len(lines) - 1} "
      f"consecutive pairs out of input order in its output file")
PY
)"
log "$CHECK"
VERSION="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("mlserver"))')"
{
  echo "**$MODEL** ($FEATURES features): $ROWS rows, batches of $BATCH rows, ferry serve on loopback for both clients, best of $REPEAT rounds"
  echo
  echo "| client | rows/s | vs mlserver infer |"
  echo "| --- | ---: | ---: |"
  echo "| **ferry batch --url http://** csv -> csv (carry id), concurrency 4 | $best_ferry | $(awk -v a="$best_ferry" -v b="$best_mls" 'BEGIN { printf "%.1fx", a / b }') |"
  echo "| mlserver infer $VERSION, --workers 4, REST, from V2 requests prepared beforehand (not timed) | $best_mls | 1.0x |"
  echo
  echo "$CHECK."
  echo "Load average before: $LOAD_BEFORE; after: $(cut -d' ' -f1-3 /proc/loadavg). Machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p')."
} | tee "$OUT_DIR/batch_mlserver_infer.md"
