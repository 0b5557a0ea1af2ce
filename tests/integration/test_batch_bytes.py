"""`ferry batch` with BYTES (string) inputs and outputs (docs/batch.md, "Strings").

The model is a real ONNX graph that takes and returns strings: `text` (STRING [batch, 1])
goes through Identity to `echo` (STRING), through an ai.onnx.ml LabelEncoder to `word`
(STRING, a vocabulary lookup) and through another to `code` (INT64). The rows hold the
text a CSV or JSON writer must take care with (commas, quotes, line breaks, spaces at the
ends, empty strings, non-ASCII). Each format's output is read back with Python's own
readers (csv, json, pyarrow) and compared row by row with onnxruntime's outputs on the
same strings; bad rows go to the error file naming the column, and the job goes on. A job
against `ferry serve` (`--url`, REST and gRPC) writes the same bytes as in-process.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import numpy as np
import onnx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from onnx import TensorProto, helper

import ferry_helpers as fh
from test_batch import run_batch, sha256

ROWS = 20_000
VOCAB = ["apple", "banana", "cherry", "date, dried", 'say "hi"', "naïve", "日本"]
ODD = ["", " lead", "trail ", "a,b", 'q"uote', "two\nlines", "crlf\r\nin", "tab\tin", "ü€😀", "plain"]


def build_repo(repo: Path) -> Path:
    text = helper.make_tensor_value_info("text", TensorProto.STRING, ["batch", 1])
    outputs = [
        helper.make_tensor_value_info("echo", TensorProto.STRING, ["batch", 1]),
        helper.make_tensor_value_info("word", TensorProto.STRING, ["batch", 1]),
        helper.make_tensor_value_info("code", TensorProto.INT64, ["batch", 1]),
    ]
    nodes = [
        helper.make_node("Identity", ["text"], ["echo"]),
        helper.make_node("LabelEncoder", ["text"], ["word"], domain="ai.onnx.ml", keys_strings=VOCAB,
                         values_strings=[w.upper() for w in VOCAB], default_string="<unknown>"),
        helper.make_node("LabelEncoder", ["text"], ["code"], domain="ai.onnx.ml", keys_strings=VOCAB,
                         values_int64s=list(range(len(VOCAB))), default_int64=-1),
    ]
    graph = helper.make_graph(nodes, "strings", [text], outputs)
    model = helper.make_model(graph, producer_name="ferry-tests",
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 2)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    (repo / "strings" / "1").mkdir(parents=True)
    onnx.save(model, str(repo / "strings" / "1" / "model.onnx"))
    return repo


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("bytes-data")
    repo = build_repo(d / "repo")
    rng = random.Random(5)
    texts = [rng.choice(VOCAB + ODD) + (str(rng.randrange(100)) if rng.random() < 0.2 else "") for _ in range(ROWS)]
    ids = [f"r{i}" for i in range(ROWS)]
    with open(d / "in.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["id", "text"])
        w.writerows(zip(ids, texts))
    with open(d / "in.jsonl", "w") as f:
        for i, t in zip(ids, texts):
            f.write(json.dumps({"id": i, "text": t}) + "\n")
    pq.write_table(pa.table({"id": pa.array(ids, pa.string()), "text": pa.array(texts, pa.string())}),
                   d / "in.parquet", row_group_size=6000)
    ref = fh.reference(repo, "strings", 1, {"text": np.array(texts, dtype=object).reshape(-1, 1)})
    return d, repo, ids, texts, {k: [v[0] for v in ref[k].tolist()] for k in ("echo", "word", "code")}


def read_csv_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def test_csv_strings_in_and_out_match_onnxruntime(data, tmp_path):
    d, repo, ids, texts, ref = data
    out = tmp_path / "out.csv"
    proc = run_batch(repo, "--model", "strings", "--input", str(d / "in.csv"), "--output", str(out), "--carry", "id",
                     "--batch-size", "512")
    assert f"{ROWS} rows ok, 0 failed" in proc.stderr
    header, rows = read_csv_rows(out)
    assert header == ["id", "echo", "word", "code"]
    assert [r[0] for r in rows] == ids
    assert [r[1] for r in rows] == texts == ref["echo"]
    assert [r[2] for r in rows] == ref["word"]
    assert [int(r[3]) for r in rows] == ref["code"]
    assert {"<unknown>", "NAÏVE", 'SAY "HI"', "DATE, DRIED"} <= set(ref["word"])  # the lookup did work


def test_jsonl_and_parquet_strings_match_the_csv_job(data, tmp_path):
    d, repo, ids, texts, ref = data
    out = tmp_path / "out.jsonl"
    run_batch(repo, "--model", "strings", "--input", str(d / "in.jsonl"), "--output", str(out), "--carry", "id")
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [o["id"] for o in lines] == ids
    assert [o["echo"] for o in lines] == ref["echo"]
    assert [o["word"] for o in lines] == ref["word"]
    assert [o["code"] for o in lines] == ref["code"]

    pout = tmp_path / "out.parquet"
    run_batch(repo, "--model", "strings", "--input", str(d / "in.parquet"), "--output", str(pout), "--carry", "id")
    t = pq.read_table(pout)
    assert t.schema.field("echo").type == pa.string() and t.schema.field("code").type == pa.int64()
    assert t.column("id").to_pylist() == ids
    assert t.column("echo").to_pylist() == ref["echo"]
    assert t.column("word").to_pylist() == ref["word"]
    assert t.column("code").to_pylist() == ref["code"]

    # Parquet in, CSV out: the same bytes as the CSV job.
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    run_batch(repo, "--model", "strings", "--input", str(d / "in.parquet"), "--output", str(a), "--carry", "id")
    run_batch(repo, "--model", "strings", "--input", str(d / "in.csv"), "--output", str(b), "--carry", "id")
    assert sha256(a) == sha256(b)


def test_bad_string_rows_go_to_the_error_file(data, tmp_path):
    d, repo, *_ = data
    src = tmp_path / "bad.jsonl"
    src.write_text('{"text": "apple"}\n{"text": 42}\n{"other": "x"}\n{"text": "日本"}\n', encoding="utf-8")
    out = tmp_path / "bad.csv"
    proc = run_batch(repo, "--model", "strings", "--input", str(src), "--output", str(out))
    assert "2 rows ok, 2 failed" in proc.stderr
    errors = [json.loads(line) for line in (tmp_path / "bad.csv.errors.jsonl").read_text().splitlines()]
    assert errors == [
        {"row": 1, "error": "row 1 (line 2), column 'text': not a string (input 'text' is BYTES)"},
        {"row": 2, "error": "row 2 (line 3): column 'text' is missing"},
    ]
    assert read_csv_rows(out)[1] == [["apple", "APPLE", "0"], ["日本", "日本", "6"]]

    # Bytes that are not UTF-8 reach the model from a CSV cell; a JSONL output cannot hold its
    # echo, so that row fails (after its batch is retried row by row) and the others are written.
    raw = tmp_path / "raw.csv"
    raw.write_bytes(b"text\napple\n\xff\xfe\nbanana\n")
    proc = run_batch(repo, "--model", "strings", "--input", str(raw), "--output", str(tmp_path / "raw.jsonl"))
    assert "2 rows ok, 1 failed" in proc.stderr
    assert [json.loads(line)["word"] for line in (tmp_path / "raw.jsonl").read_text().splitlines()] == ["APPLE", "BANANA"]
    assert json.loads((tmp_path / "raw.jsonl.errors.jsonl").read_text()) == {
        "row": 1, "error": "row 1: model 'strings': output 'echo': element 0 is not UTF-8 text, which jsonl needs "
                          "(a .csv output takes any bytes)"}

    nulls = tmp_path / "nulls.parquet"
    pq.write_table(pa.table({"text": pa.array(["banana", None, "x"], pa.string())}), nulls)
    proc = run_batch(repo, "--model", "strings", "--input", str(nulls), "--output", str(tmp_path / "n.jsonl"))
    assert "2 rows ok, 1 failed" in proc.stderr
    assert "row 1, column 'text': null" in (tmp_path / "n.jsonl.errors.jsonl").read_text()

    npy = run_batch(repo, "--model", "strings", "--input", str(d / "in.csv"), "--output", str(tmp_path / "o.npy"),
                    "--outputs", "echo", check=False)
    assert npy.returncode == 2
    assert "output 'echo': datatype BYTES (strings) cannot go into a .npy output" in npy.stderr


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_remote_string_jobs_write_the_in_process_bytes(data, tmp_path, protocol):
    from test_batch_remote import remote_batch, url

    d, repo, *_ = data
    local = tmp_path / "local.csv"
    run_batch(repo, "--model", "strings", "--input", str(d / "in.csv"), "--output", str(local), "--carry", "id")
    server = fh.FerryServer(fh.ferry_bin(), [repo], [], tmp_path / "serve.log").start()
    try:
        out = tmp_path / "remote.csv"
        remote_batch("--url", url(server, protocol), "--model", "strings", "--input", str(d / "in.csv"),
                     "--output", str(out), "--carry", "id")
    finally:
        server.kill()
    assert sha256(out) == sha256(local)
