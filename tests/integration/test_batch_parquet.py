"""Parquet input and output for `ferry batch`, Parquet input for `ferry profile build`
(docs/batch.md, docs/monitoring.md).

The files are written by pyarrow itself (several row groups, float32 feature columns, a
string id column). ferry reads them with the Arrow C++ libraries of the same pyarrow
release; its outputs are compared byte for byte with the same job run on the same rows
as CSV, and row by row with onnxruntime's own predictions. The resume test SIGKILLs a
Parquet-input job mid-way and checks the restarted job's output is identical; bad files
(not Parquet, a missing column, a string where a number goes, nulls) get an exit code
and a message naming the file, row and column, and the good rows are all written.

Parquet output is read back with pyarrow and compared value by value with the CSV output of
the same job (schema, row groups, row order); a job SIGKILLed at several points and run
again each time ends with a file byte-identical to an uninterrupted run's.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import ferry_helpers as fh
from test_batch import features, kill_9_mid_job, mlp_reference, read_csv, run_batch, sha256, write_csv

ROWS = 30_000
GROUP_ROWS = 7_000  # 5 row groups, the last one short


def write_parquet(path: Path, x: np.ndarray, ids: bool = True, **columns) -> None:
    cols = {}
    if ids:
        cols["id"] = pa.array([f"r{i}" for i in range(len(x))], pa.string())
    for j in range(x.shape[1]):
        cols[f"f{j}"] = pa.array(x[:, j], pa.float32())
    cols.update(columns)
    pq.write_table(pa.table(cols), path, row_group_size=GROUP_ROWS)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("parquet-data")
    x = features(ROWS, seed=21)
    write_parquet(d / "in.parquet", x)
    write_csv(d / "in.csv", x)
    assert pq.ParquetFile(d / "in.parquet").num_row_groups == 5
    return d, x


def test_parquet_input_matches_the_csv_job_and_onnxruntime(model_repo, data, tmp_path):
    d, x = data
    out = tmp_path / "from-parquet.csv"
    proc = run_batch(model_repo, "--model", "mlp_classifier", "--input", str(d / "in.parquet"), "--output", str(out),
                     "--carry", "id")
    assert f"{ROWS} rows ok, 0 failed" in proc.stderr
    header, rows = read_csv(out)
    assert header == ["id", "probabilities_0", "probabilities_1", "probabilities_2", "label"]
    assert [r[0] for r in rows] == [f"r{i}" for i in range(ROWS)]
    ref = mlp_reference(model_repo, x)
    fh.assert_tensor_equal(np.array([[np.float32(v) for v in r[1:4]] for r in rows], dtype=np.float32),
                           ref["probabilities"], "probabilities")
    np.testing.assert_array_equal(np.array([int(r[4]) for r in rows]), ref["label"][:, 0])
    # The same rows as CSV give the same bytes: same values in, same order out.
    csv_out = tmp_path / "from-csv.csv"
    run_batch(model_repo, "--model", "mlp_classifier", "--input", str(d / "in.csv"), "--output", str(csv_out),
              "--carry", "id")
    assert sha256(out) == sha256(csv_out)
    # JSONL output, and the format named by flag for a file without the extension.
    plain = tmp_path / "features.bin"
    plain.write_bytes((d / "in.parquet").read_bytes())
    jl = tmp_path / "out.jsonl"
    run_batch(model_repo, "--model", "mlp_classifier", "--input", str(plain), "--input-format", "parquet",
              "--output", str(jl), "--carry", "id", "--outputs", "label")
    objs = [json.loads(line) for line in jl.read_text().splitlines()]
    assert [o["id"] for o in objs] == [f"r{i}" for i in range(ROWS)]
    np.testing.assert_array_equal(np.array([o["label"] for o in objs]), ref["label"][:, 0])


def test_parquet_shards_cover_every_row_once(model_repo, data, tmp_path):
    d, _ = data
    seen = []
    for i in range(2):
        out = tmp_path / f"part-{i}.csv"
        run_batch(model_repo, "--model", "mlp_classifier", "--input", str(d / "in.parquet"), "--output", str(out),
                  "--carry", "id", "--shard", f"{i}/2", "--outputs", "label")
        ids = [r[0] for r in read_csv(out)[1]]
        assert all(int(v[1:]) % 2 == i for v in ids)
        seen += ids
    assert sorted(seen) == sorted(f"r{i}" for i in range(ROWS))


def test_kill_9_mid_parquet_job_then_the_same_command_gives_identical_output(model_repo, data, tmp_path):
    d, _ = data
    args = ["--model", "mlp_classifier", "--input", str(d / "in.parquet"), "--batch-size", "16", "--concurrency", "1",
            "--checkpoint-ms", "20", "--carry", "id"]
    ref_out = tmp_path / "ref.csv"
    run_batch(model_repo, *args, "--output", str(ref_out))
    out = tmp_path / "out.csv"
    # Killed past the first row group, so the resume starts inside a later one.
    done_at_kill = kill_9_mid_job(model_repo, [*args, "--output", str(out)], out, at_least=GROUP_ROWS + 1)
    assert GROUP_ROWS < done_at_kill < ROWS
    assert not out.exists() and Path(str(out) + ".partial").exists()
    again = run_batch(model_repo, *args, "--output", str(out))
    assert "resumed at row" in again.stderr, again.stderr
    assert sha256(out) == sha256(ref_out)
    assert sha256(Path(str(out) + ".errors.jsonl")) == sha256(Path(str(ref_out) + ".errors.jsonl"))


def test_bad_parquet_input_is_named_and_the_good_rows_complete(model_repo, tmp_path):
    # Not Parquet at all.
    fake = tmp_path / "fake.parquet"
    fake.write_text("f0,f1,f2,f3\n1,2,3,4\n")
    proc = run_batch(model_repo, "--model", "mlp_classifier", "--input", str(fake), "--output",
                     str(tmp_path / "o.csv"), check=False)
    assert proc.returncode == 2, proc.stderr
    assert f"input '{fake}': not a readable Parquet file" in proc.stderr
    # A column the model needs is missing: refused before the first row.
    x = features(100, seed=5)
    three = tmp_path / "three.parquet"
    pq.write_table(pa.table({f"f{j}": pa.array(x[:, j]) for j in range(3)}), three)
    proc = run_batch(model_repo, "--model", "mlp_classifier", "--input", str(three), "--output",
                     str(tmp_path / "o.csv"), check=False)
    assert proc.returncode == 2, proc.stderr
    assert ("input 'input' needs 4 values per row (shape [4]); the input's columns other than --carry ones "
            "(f0, f1, f2) hold 3") in proc.stderr
    assert not list(tmp_path.glob("o.csv*"))
    # Strings where a number goes and nulls: those rows fail, naming row and column.
    f1 = [str(v) for v in x[:, 1]]
    f1[7] = "abc"
    f1[8] = None
    f3 = pa.array([None if i in (30, 99) else float(v) for i, v in enumerate(x[:, 3])], pa.float64())
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"id": [f"r{i}" for i in range(100)], "f0": x[:, 0], "f1": f1, "f2": x[:, 2], "f3": f3}),
                   bad, row_group_size=40)
    out = tmp_path / "out.csv"
    proc = run_batch(model_repo, "--model", "mlp_classifier", "--input", str(bad), "--output", str(out),
                     "--carry", "id", "--batch-size", "16")
    assert "96 rows ok, 4 failed" in proc.stderr
    errors = [json.loads(line) for line in (tmp_path / "out.csv.errors.jsonl").read_text().splitlines()]
    assert errors == [
        {"row": 7, "error": "row 7, column 'f1': 'abc' is not a number"},
        {"row": 8, "error": "row 8, column 'f1': null (a missing value; ferry batch does not fill them in)"},
        {"row": 30, "error": "row 30, column 'f3': null (a missing value; ferry batch does not fill them in)"},
        {"row": 99, "error": "row 99, column 'f3': null (a missing value; ferry batch does not fill them in)"},
    ]
    good = [i for i in range(100) if i not in (7, 8, 30, 99)]
    _, rows = read_csv(out)
    assert [r[0] for r in rows] == [f"r{i}" for i in good]
    ref = mlp_reference(model_repo, x[good])
    fh.assert_tensor_equal(np.array([[float(v) for v in r[1:4]] for r in rows], dtype=np.float32),
                           ref["probabilities"], "probabilities")


def test_pandas_style_columns_nan_doubles_categoricals_and_a_column_without_numbers(model_repo, tmp_path):
    # As pandas writes a frame: float64 and float32 features, NaNs, nulls, a categorical
    # (dictionary) column, several row groups. The rows that decode give the bytes the same
    # rows give as CSV; the nulls fail naming row and column.
    n = 20_000
    x = features(n, seed=13)
    x[::97, 0] = np.nan
    f2_nulls = set(range(5, n, 331))
    segment = [None if i % 7 == 0 else ("a" if i % 3 else "b") for i in range(n)]
    table = pa.table({
        "id": pa.array([f"r{i}" for i in range(n)], pa.string()),
        "f0": pa.array(x[:, 0], pa.float32()),
        "f1": pa.array(x[:, 1].astype(np.float64), pa.float64()),  # float32 values: exact as text too
        "f2": pa.array([None if i in f2_nulls else float(v) for i, v in enumerate(x[:, 2])], pa.float32()),
        "f3": pa.array(x[:, 3], pa.float32()),
        "segment": pa.array(segment, pa.string()).dictionary_encode(),
    })
    src = tmp_path / "pandas.parquet"
    pq.write_table(table, src, row_group_size=6_000)
    assert pq.read_table(src).schema.field("segment").type == pa.dictionary(pa.int32(), pa.string())
    good = [i for i in range(n) if i not in f2_nulls]
    twin = tmp_path / "twin.csv"
    with open(twin, "w") as f:
        f.write("id,f0,f1,f2,f3,segment\n")
        for i in good:
            f.write(f"r{i}," + ",".join("nan" if np.isnan(v) else "%.9g" % v for v in x[i]) + "," + (segment[i] or "") + "\n")
    out, csv_out = tmp_path / "out.csv", tmp_path / "twin-out.csv"
    proc = run_batch(model_repo, "--model", "mlp_classifier", "--input", str(src), "--output", str(out),
                     "--carry", "id,segment", "--batch-size", "100")
    assert f"{len(good)} rows ok, {len(f2_nulls)} failed" in proc.stderr
    run_batch(model_repo, "--model", "mlp_classifier", "--input", str(twin), "--output", str(csv_out),
              "--carry", "id,segment", "--batch-size", "100")
    assert sha256(out) == sha256(csv_out)
    _, rows = read_csv(out)
    assert [r[1] for r in rows[:4]] == ["", "a", "a", "b"]  # the categories themselves; a null is empty
    assert rows[0][2] == "nan"  # a NaN feature is a value: the model's answer is NaN
    errors = [json.loads(line) for line in (tmp_path / "out.csv.errors.jsonl").read_text().splitlines()]
    assert errors == [{"row": i, "error": f"row {i}, column 'f2': null (a missing value; ferry batch does not fill "
                                          "them in)"} for i in sorted(f2_nulls)]
    # A column whose type holds no number is refused before the first row, naming it.
    dated = tmp_path / "dated.parquet"
    pq.write_table(table.set_column(4, "f3", pa.array(np.arange(n, dtype=np.int32), pa.date32())), dated)
    proc = run_batch(model_repo, "--model", "mlp_classifier", "--input", str(dated), "--output",
                     str(tmp_path / "d.csv"), "--carry", "id,segment", check=False)
    assert proc.returncode == 2, proc.stderr
    assert ("column 'f3' is date32[day] in the Parquet file and cannot feed input 'input' (FP32): it needs an "
            "integer, floating-point, decimal or string column") in proc.stderr
    assert not list(tmp_path.glob("d.csv*"))


def profile(*args: str) -> dict:
    out = args[args.index("--output") + 1]
    proc = subprocess.run([str(fh.ferry_bin()), "profile", "build", *args], capture_output=True, text=True,
                          timeout=120, env=fh.child_env())
    assert proc.returncode == 0, proc.stderr
    return json.loads(Path(out).read_text())


def test_profile_build_from_parquet_equals_the_csv_profile(model_repo, tmp_path):
    repo = fh.copy_repo(model_repo, tmp_path / "repo")
    x = features(3000, seed=9)
    write_parquet(tmp_path / "train.parquet", x, ids=False)
    # The CSV twin holds each float32 in its shortest round-trip form, the text ferry makes of
    # a Parquet float: the profile parses it as a double, so "%.9g" text would differ in the
    # digits past float32's.
    with open(tmp_path / "train.csv", "w") as f:
        f.write("f0,f1,f2,f3\n")
        for row in x:
            f.write(",".join(str(v) for v in row) + "\n")
    # With the model: features and the model's predictions over the same rows.
    got = {ext: profile("--model-repository", str(repo), "--model", "mlp_classifier", "--data",
                        str(tmp_path / f"train.{ext}"), "--output", str(tmp_path / f"{ext}.json"))
           for ext in ("parquet", "csv")}
    assert [f["name"] for f in got["parquet"]["features"]] == ["f0", "f1", "f2", "f3"]
    assert got["parquet"]["features"] == got["csv"]["features"]
    assert len(got["parquet"]["predictions"]) == 4
    assert got["parquet"]["predictions"] == got["csv"]["predictions"]
    # A categorical string column with nulls: a null is a missing value, as an empty CSV cell is.
    seg = ["a" if i % 3 else None for i in range(3000)]
    write_parquet(tmp_path / "seg.parquet", x, ids=False, segment=pa.array(seg, pa.string()))
    lines = (tmp_path / "train.csv").read_text().splitlines()
    (tmp_path / "seg.csv").write_text("\n".join([lines[0] + ",segment"] +
                                                 [row + "," + (s or "") for row, s in zip(lines[1:], seg)]) + "\n")
    got = {ext: profile("--data", str(tmp_path / f"seg.{ext}"), "--columns", "f0,segment", "--categorical", "segment",
                        "--output", str(tmp_path / f"seg-{ext}.json"))
           for ext in ("parquet", "csv")}
    assert got["parquet"]["features"] == got["csv"]["features"]
    segment = [f for f in got["parquet"]["features"] if f["name"] == "segment"][0]
    assert segment["missing"] == 1000 and segment["rows"] == 3000, segment


OUT_GROUP_ROWS = 4_000  # --row-group-rows for the Parquet outputs below


def csv_columns(path: Path) -> dict[str, list[str]]:
    header, rows = read_csv(path)
    return {name: [r[i] for r in rows] for i, name in enumerate(header)}


def test_parquet_output_holds_the_csv_outputs_values_in_order(model_repo, data, tmp_path):
    d, x = data
    common = ["--model", "mlp_classifier", "--input", str(d / "in.parquet"), "--carry", "id",
              "--row-group-rows", str(OUT_GROUP_ROWS)]
    out = tmp_path / "out.parquet"
    proc = run_batch(model_repo, *common, "--output", str(out))
    assert f"{ROWS} rows ok, 0 failed" in proc.stderr
    run_batch(model_repo, *common, "--output", str(tmp_path / "out.csv"))
    f = pq.ParquetFile(out)
    assert f.schema_arrow == pa.schema([pa.field("id", pa.string(), nullable=False)] +
                                       [pa.field(f"probabilities_{j}", pa.float32(), nullable=False) for j in range(3)] +
                                       [pa.field("label", pa.int64(), nullable=False)])
    # Row groups of --row-group-rows input rows, the last one holding the rest.
    assert [f.metadata.row_group(g).num_rows for g in range(f.num_row_groups)] == \
        [OUT_GROUP_ROWS] * (ROWS // OUT_GROUP_ROWS) + [ROWS % OUT_GROUP_ROWS]
    t = f.read()
    want = csv_columns(tmp_path / "out.csv")
    assert t.column_names == list(want)
    assert t.column("id").to_pylist() == want["id"] == [f"r{i}" for i in range(ROWS)]
    for j in range(3):
        got = t.column(f"probabilities_{j}").to_numpy()
        np.testing.assert_array_equal(got, np.array(want[f"probabilities_{j}"], dtype=np.float32))
    np.testing.assert_array_equal(t.column("label").to_numpy(), np.array(want["label"], dtype=np.int64))
    # And onnxruntime's own predictions on the same rows.
    ref = mlp_reference(model_repo, x)
    fh.assert_tensor_equal(np.stack([t.column(f"probabilities_{j}").to_numpy() for j in range(3)], axis=1),
                           ref["probabilities"], "probabilities")
    np.testing.assert_array_equal(t.column("label").to_numpy(), ref["label"][:, 0])
    # A Parquet output feeds the next job: its probabilities_* columns are model input columns.
    assert not list(tmp_path.glob("out.parquet.*partial")) and not list(tmp_path.glob("*.checkpoint"))


def test_100000_parquet_rows_in_and_out_equal_onnxruntime_row_by_row(model_repo, tmp_path):
    # The size for every format: 100,000 rows, row groups of pyarrow's choosing on
    # the way in (4 of 25,000) and of ferry's on the way out (the default --row-group-rows).
    rows = 100_000
    x = features(rows, seed=23)
    src = tmp_path / "in.parquet"
    cols = {"id": pa.array([f"r{i}" for i in range(rows)], pa.string())}
    cols.update({f"f{j}": pa.array(x[:, j], pa.float32()) for j in range(4)})
    pq.write_table(pa.table(cols), src, row_group_size=25_000)
    out = tmp_path / "out.parquet"
    proc = run_batch(model_repo, "--model", "mlp_classifier", "--input", str(src), "--output", str(out), "--carry", "id")
    assert f"{rows} rows ok, 0 failed" in proc.stderr
    t = pq.read_table(out)
    assert t.num_rows == rows and t.column("id").to_pylist() == [f"r{i}" for i in range(rows)]
    ref = mlp_reference(model_repo, x)
    fh.assert_tensor_equal(np.stack([t.column(f"probabilities_{j}").to_numpy() for j in range(3)], axis=1),
                           ref["probabilities"], "probabilities")
    np.testing.assert_array_equal(t.column("label").to_numpy(), ref["label"][:, 0])


def test_parquet_output_killed_at_several_points_ends_byte_identical(model_repo, data, tmp_path):
    d, x = data
    # CSV input with a bad row every 2,500, so the error file is resumed too and row groups
    # hold fewer rows than --row-group-rows where rows failed.
    write_csv(tmp_path / "in.csv", x)
    lines = (tmp_path / "in.csv").read_text().splitlines(keepends=True)
    bad_rows = list(range(700, ROWS, 2_500))
    for i in bad_rows:
        lines[i + 1] = lines[i + 1].replace(",", ",oops", 1)
    (tmp_path / "in.csv").write_text("".join(lines))
    args = ["--model", "mlp_classifier", "--input", str(tmp_path / "in.csv"), "--carry", "id", "--batch-size", "16",
            "--concurrency", "1", "--checkpoint-ms", "0", "--row-group-rows", "1000"]
    ref = tmp_path / "ref.parquet"
    run_batch(model_repo, *args, "--output", str(ref))
    out = tmp_path / "out.parquet"
    counted = []
    for at_least in (1, 9_000, 17_500, 26_000):
        done = kill_9_mid_job(model_repo, [*args, "--output", str(out)], out, at_least=at_least)
        assert at_least <= done < ROWS
        counted.append(done)
        assert not out.exists() and Path(str(out) + ".partial").exists()
        assert Path(str(out) + ".rowgroups.partial").exists()
    assert counted == sorted(counted)
    again = run_batch(model_repo, *args, "--output", str(out))
    assert "resumed at row" in again.stderr, again.stderr
    assert f"{ROWS - len(bad_rows)} rows ok, {len(bad_rows)} failed" in again.stderr
    assert sha256(out) == sha256(ref)
    assert sha256(Path(str(out) + ".errors.jsonl")) == sha256(Path(str(ref) + ".errors.jsonl"))
    assert [json.loads(line)["row"] for line in Path(str(out) + ".errors.jsonl").read_text().splitlines()] == bad_rows
    assert not Path(str(out) + ".rowgroups.partial").exists()
    t = pq.read_table(out)
    assert t.column("id").to_pylist() == [f"r{i}" for i in range(ROWS) if i not in bad_rows]
    # 1,000 input rows per row group: a group with a bad row holds 999.
    f = pq.ParquetFile(out)
    sizes = [f.metadata.row_group(g).num_rows for g in range(f.num_row_groups)]
    assert sizes == [1000 - sum(1 for b in bad_rows if g * 1000 <= b < (g + 1) * 1000) for g in range(ROWS // 1000)]


def test_parquet_output_errors_are_named(model_repo, data, tmp_path):
    d, _ = data
    base = ["--model", "mlp_classifier", "--input", str(d / "in.parquet"), "--carry", "id"]
    proc = run_batch(model_repo, *base, "--output", str(tmp_path / "a.parquet"), "--row-group-rows", "0", check=False)
    assert proc.returncode == 2 and "--row-group-rows must be 1 or more" in proc.stderr, proc.stderr
    # A carried column named like an output column.
    t = pq.read_table(d / "in.parquet").append_column("label", pa.array(["x"] * ROWS))
    pq.write_table(t, tmp_path / "clash.parquet")
    proc = run_batch(model_repo, "--model", "mlp_classifier", "--input", str(tmp_path / "clash.parquet"),
                     "--carry", "id,label", "--output", str(tmp_path / "b.parquet"), check=False)
    assert proc.returncode == 2, proc.stderr
    assert "--carry: column 'label' has the name of an output column of 'label'" in proc.stderr
    assert not list(tmp_path.glob("[ab].parquet*"))
    # A resumed job with another row group size would write other bytes: refused, naming it.
    out = tmp_path / "c.parquet"
    args = [*base, "--batch-size", "16", "--concurrency", "1", "--checkpoint-ms", "0", "--row-group-rows", "1000"]
    kill_9_mid_job(model_repo, [*args, "--output", str(out)], out, at_least=1000)
    proc = run_batch(model_repo, *base, "--batch-size", "16", "--row-group-rows", "2000", "--output", str(out),
                     check=False)
    assert proc.returncode == 2, proc.stderr
    assert "belongs to another job (row_group_rows was '1000', now '2000')" in proc.stderr
    # A damaged metadata file is named instead of writing a broken footer.
    Path(str(out) + ".rowgroups.partial").write_bytes(b"\xff\xff\xff\x7f")
    proc = run_batch(model_repo, *args, "--output", str(out), check=False)
    assert proc.returncode != 0 and ".rowgroups.partial" in proc.stderr, proc.stderr


def test_parquet_output_types_follow_the_output_tensors_and_feed_the_next_job(model_repo, tmp_path):
    # int_ops: X, Y INT64 [4] in; SUM, PROD INT64 [4] and GREATER BOOL [4] out.
    rng = np.random.default_rng(3)
    x = rng.integers(-1000, 1000, (500, 4))
    y = rng.integers(-1000, 1000, (500, 4))
    with open(tmp_path / "in.csv", "w") as f:
        f.write(",".join([f"X_{j}" for j in range(4)] + [f"Y_{j}" for j in range(4)]) + "\n")
        for a, b in zip(x, y):
            f.write(",".join(str(v) for v in [*a, *b]) + "\n")
    out = tmp_path / "out.parquet"
    run_batch(model_repo, "--model", "int_ops", "--input", str(tmp_path / "in.csv"), "--output", str(out),
              "--row-group-rows", "128")
    f = pq.ParquetFile(out)
    assert f.schema_arrow == pa.schema([pa.field(f"{n}_{j}", t, nullable=False)
                                        for n, t in (("SUM", pa.int64()), ("PROD", pa.int64()), ("GREATER", pa.bool_()))
                                        for j in range(4)])
    assert [f.metadata.row_group(g).num_rows for g in range(f.num_row_groups)] == [128, 128, 128, 116]
    t = f.read()
    got = {n: np.stack([t.column(f"{n}_{j}").to_numpy() for j in range(4)], axis=1) for n in ("SUM", "PROD", "GREATER")}
    np.testing.assert_array_equal(got["SUM"], x + y)
    np.testing.assert_array_equal(got["PROD"], x * y)
    np.testing.assert_array_equal(got["GREATER"], x > y)
    # The Parquet output is the next job's input: SUM -> X, PROD -> Y.
    cols = [f"SUM_{j}:X" for j in range(4)] + [f"PROD_{j}:Y" for j in range(4)]
    again = tmp_path / "again.parquet"
    run_batch(model_repo, "--model", "int_ops", "--input", str(out), "--output", str(again), "--map", ",".join(cols),
              "--outputs", "SUM")
    t2 = pq.read_table(again)
    np.testing.assert_array_equal(np.stack([t2.column(f"SUM_{j}").to_numpy() for j in range(4)], axis=1),
                                  (x + y) + (x * y))
