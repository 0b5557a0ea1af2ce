#!/usr/bin/env python3
"""Peers for bench/run_batch_bench.sh: the same job in Python.

  batch_python.py make N F DIR           writes DIR/in.csv (id + F float32 columns f0.., %.9g), DIR/in.parquet
                                         (the same table, float32 columns) and DIR/in.npy
  batch_python.py pandas MODEL IN OUT B T  pandas.read_csv -> onnxruntime in batches of B rows (T intra-op
                                           threads) -> DataFrame.to_csv, columns as ferry batch writes them
  batch_python.py numpy MODEL IN OUT B T   np.load -> onnxruntime in batches of B -> np.save (the first output)
  batch_python.py ort MODEL IN B T         onnxruntime Python alone on the same batches of the .npy rows

Each mode but `make` prints one line: PEER mode=... rows=N seconds=S rows_per_s=R
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np


def session(model: str, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def report(mode: str, rows: int, t0: float) -> None:
    s = time.perf_counter() - t0
    print(f"PEER mode={mode} rows={rows} seconds={s:.3f} rows_per_s={rows / s:.0f}")


def main(argv: list[str]) -> int:
    mode = argv[1]
    if mode == "make":
        n, features, out = int(argv[2]), int(argv[3]), Path(argv[4])
        out.mkdir(parents=True, exist_ok=True)
        x = np.random.default_rng(1).standard_normal((n, features)).astype(np.float32)
        np.save(out / "in.npy", x)
        with open(out / "in.csv", "w") as f:
            f.write("id," + ",".join(f"f{i}" for i in range(features)) + "\n")
            text = np.char.mod("%.9g", x)
            f.writelines(f"r{i},{','.join(row)}\n" for i, row in enumerate(text))
        # The same table as Parquet: id as a string column, the features as float32 columns.
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns = {"id": pa.array([f"r{i}" for i in range(n)])}
        columns.update({f"f{j}": pa.array(x[:, j]) for j in range(features)})
        pq.write_table(pa.table(columns), out / "in.parquet")
        return 0
    model, src = argv[2], argv[3]
    if mode == "ort":
        batch, threads = int(argv[4]), int(argv[5])
        sess = session(model, threads)
        x = np.load(src)
        t0 = time.perf_counter()
        for i in range(0, len(x), batch):
            sess.run(None, {sess.get_inputs()[0].name: x[i:i + batch]})
        report(mode, len(x), t0)
        return 0
    dst, batch, threads = argv[4], int(argv[5]), int(argv[6])
    sess = session(model, threads)
    in_name = sess.get_inputs()[0].name
    out_names = [o.name for o in sess.get_outputs()]
    t0 = time.perf_counter()
    if mode == "pandas":
        import pandas as pd

        df = pd.read_csv(src)
        x = df.drop(columns="id").to_numpy(dtype=np.float32)
        results = [sess.run(None, {in_name: x[i:i + batch]}) for i in range(0, len(x), batch)]
        # Columns as ferry batch names them: NAME for one value per row, NAME_0.. for more.
        columns = {"id": df["id"]}
        for k, name in enumerate(out_names):
            y = np.concatenate([r[k] for r in results]).reshape(len(x), -1)
            if y.shape[1] == 1:
                columns[name] = y[:, 0]
            else:
                columns.update({f"{name}_{j}": y[:, j] for j in range(y.shape[1])})
        pd.DataFrame(columns).to_csv(dst, index=False)
        report(mode, len(x), t0)
    elif mode == "numpy":
        x = np.load(src)
        probs = [sess.run(out_names[:1], {in_name: x[i:i + batch]})[0] for i in range(0, len(x), batch)]
        np.save(dst, np.concatenate(probs))
        report(mode, len(x), t0)
    else:
        print(f"unknown mode {mode}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
