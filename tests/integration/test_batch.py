"""`ferry batch`: offline inference over CSV, JSONL and .npy files (docs/batch.md).

Each test runs the real binary in-process mode on the example repository and checks
its output row by row against onnxruntime's own predictions on the same rows; the
resume tests SIGKILL a job once its checkpoint shows progress, run the same command
again and compare the output's sha256 with an uninterrupted run's.
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

import ferry_helpers as fh

ROWS = 100_000
RUN_TIMEOUT_S = 120


def run_batch(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [str(fh.ferry_bin()), "batch", "--model-repository", str(repo), "--log-level", "warning", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=fh.child_env())
    if check:
        assert proc.returncode == 0, f"{cmd}\nexit {proc.returncode}\n{proc.stderr[-3000:]}"
    return proc


def features(rows: int, seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, 4)).astype(np.float32)


def write_csv(path: Path, x: np.ndarray, ids: bool = True) -> None:
    # %.9g round-trips float32 exactly, so ferry reads the very values onnxruntime gets.
    with open(path, "w") as f:
        f.write(("id," if ids else "") + "f0,f1,f2,f3\n")
        body = np.char.mod("%.9g", x)
        for i, row in enumerate(body):
            f.write((f"r{i}," if ids else "") + ",".join(row) + "\n")


def write_jsonl(path: Path, x: np.ndarray) -> None:
    with open(path, "w") as f:
        for i, row in enumerate(x):
            f.write(json.dumps({"id": f"r{i}", "input": [float(v) for v in row]}) + "\n")


def mlp_reference(repo: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    return fh.reference(repo, "mlp_classifier", 1, {"input": x})


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    lines = path.read_text().splitlines()
    return lines[0].split(","), [line.split(",") for line in lines[1:]]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("batch-data")
    x = features(ROWS)
    write_csv(d / "in.csv", x)
    write_jsonl(d / "in.jsonl", x)
    np.save(d / "in.npy", x)
    return d, x


def test_csv_matches_onnxruntime_row_by_row(model_repo, data, tmp_path):
    d, x = data
    out = tmp_path / "out.csv"
    proc = run_batch(model_repo, "--model", "mlp_classifier", "--input", str(d / "in.csv"), "--output", str(out),
                     "--carry", "id")
    assert f"{ROWS} rows ok, 0 failed" in proc.stderr
    header, rows = read_csv(out)
    assert header == ["id", "probabilities_0", "probabilities_1", "probabilities_2", "label"]
    assert len(rows) == ROWS
    assert [r[0] for r in rows] == [f"r{i}" for i in range(ROWS)]
    ref = mlp_reference(model_repo, x)
    probs = np.array([[np.float32(v) for v in r[1:4]] for r in rows], dtype=np.float32)
    labels = np.array([int(r[4]) for r in rows], dtype=np.int64)
    fh.assert_tensor_equal(probs, ref["probabilities"], "probabilities")
    np.testing.assert_array_equal(labels, ref["label"][:, 0])
    assert (tmp_path / "out.csv.errors.jsonl").read_text() == ""
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob("*.checkpoint"))


def test_jsonl_matches_onnxruntime_row_by_row(model_repo, data, tmp_path):
    d, x = data
    out = tmp_path / "out.jsonl"
    run_batch(model_repo, "--model", "mlp_classifier", "--input", str(d / "in.jsonl"), "--output", str(out),
              "--carry", "id")
    objs = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(objs) == ROWS
    assert list(objs[0]) == ["id", "probabilities", "label"]
    assert [o["id"] for o in objs] == [f"r{i}" for i in range(ROWS)]
    ref = mlp_reference(model_repo, x)
    fh.assert_tensor_equal(np.array([o["probabilities"] for o in objs], dtype=np.float32), ref["probabilities"],
                           "probabilities")
    np.testing.assert_array_equal(np.array([o["label"] for o in objs]), ref["label"][:, 0])


def test_npy_matches_onnxruntime_row_by_row(model_repo, data, tmp_path):
    d, x = data
    out = tmp_path / "out.npy"
    run_batch(model_repo, "--model", "mlp_classifier", "--input", str(d / "in.npy"), "--output", str(out),
              "--outputs", "probabilities")
    got = np.load(out)
    assert got.dtype == np.float32 and got.shape == (ROWS, 3)
    fh.assert_tensor_equal(got, mlp_reference(model_repo, x)["probabilities"], "probabilities")
    # One output only: the model's two need --outputs.
    proc = run_batch(model_repo, "--model", "mlp_classifier", "--input", str(d / "in.npy"),
                     "--output", str(tmp_path / "two.npy"), check=False)
    assert proc.returncode == 2
    assert "a .npy output holds one output and the model has 2 (probabilities, label)" in proc.stderr


def test_named_wide_columns_for_a_two_input_model(model_repo, tmp_path):
    rng = np.random.default_rng(3)
    a = rng.standard_normal((500, 16)).astype(np.float32)
    b = rng.standard_normal((500, 16)).astype(np.float32)
    names = [f"INPUT0_{i}" for i in range(16)] + [f"INPUT1_{i}" for i in range(16)]
    with open(tmp_path / "in.csv", "w") as f:
        f.write(",".join(names) + "\n")
        for ra, rb in zip(a, b):
            f.write(",".join("%.9g" % v for v in np.concatenate([ra, rb])) + "\n")
    out = tmp_path / "out.jsonl"
    run_batch(model_repo, "--model", "add_sub", "--model-version", "1", "--input", str(tmp_path / "in.csv"),
              "--output", str(out))
    objs = [json.loads(line) for line in out.read_text().splitlines()]
    ref = fh.reference(model_repo, "add_sub", 1, {"INPUT0": a, "INPUT1": b})
    fh.assert_tensor_equal(np.array([o["OUTPUT0"] for o in objs], dtype=np.float32), ref["OUTPUT0"], "OUTPUT0")
    fh.assert_tensor_equal(np.array([o["OUTPUT1"] for o in objs], dtype=np.float32), ref["OUTPUT1"], "OUTPUT1")


def test_bad_rows_go_to_the_error_file_and_the_rest_complete(model_repo, tmp_path):
    x = features(200, seed=11)
    write_csv(tmp_path / "in.csv", x)
    lines = (tmp_path / "in.csv").read_text().splitlines(keepends=True)
    # Data rows 5, 17, 40 and 41 (file lines 7, 19, 42, 43) break in different ways.
    lines[6] = "r5,1.0,abc,2,3\n"
    lines[18] = "r17,1,2,3\n"
    lines[41] = 'r40,1,"2"x,3,4\n'
    lines[42] = "r41,1,2,,4\n"
    (tmp_path / "in.csv").write_text("".join(lines))
    out = tmp_path / "out.csv"
    proc = run_batch(model_repo, "--model", "mlp_classifier", "--input", str(tmp_path / "in.csv"),
                     "--output", str(out), "--carry", "id", "--batch-size", "16")
    assert "196 rows ok, 4 failed" in proc.stderr
    errors = [json.loads(line) for line in (tmp_path / "out.csv.errors.jsonl").read_text().splitlines()]
    assert [e["row"] for e in errors] == [5, 17, 40, 41]
    assert errors[0]["error"] == "row 5 (line 7), column 'f1': 'abc' is not a number"
    assert errors[1]["error"] == "row 17 (line 19): 4 cells, the header has 5"
    assert errors[2]["error"] == "row 40 (line 42): column 3: text after the closing quote"
    assert errors[3]["error"] == "row 41 (line 43), column 'f2': empty is not a number"
    _, rows = read_csv(out)
    good = [i for i in range(200) if i not in (5, 17, 40, 41)]
    assert [r[0] for r in rows] == [f"r{i}" for i in good]
    ref = mlp_reference(model_repo, x[good])
    fh.assert_tensor_equal(np.array([[float(v) for v in r[1:4]] for r in rows], dtype=np.float32),
                           ref["probabilities"], "probabilities")


def test_max_errors_aborts(model_repo, tmp_path):
    with open(tmp_path / "in.csv", "w") as f:
        f.write("f0,f1,f2,f3\n")
        for i in range(100):
            f.write("1,2,3,4\n" if i % 10 else "x,2,3,4\n")
    proc = run_batch(model_repo, "--model", "mlp_classifier", "--input", str(tmp_path / "in.csv"),
                     "--output", str(tmp_path / "out.csv"), "--batch-size", "8", "--max-errors", "3", check=False)
    assert proc.returncode == 1, proc.stderr
    assert "4 rows failed, more than --max-errors 3" in proc.stderr
    assert not (tmp_path / "out.csv").exists()


def test_schema_mismatch_is_refused_before_the_first_row(model_repo, tmp_path):
    (tmp_path / "three.csv").write_text("a,b,c\n1,2,3\n")
    proc = run_batch(model_repo, "--model", "mlp_classifier", "--input", str(tmp_path / "three.csv"),
                     "--output", str(tmp_path / "o.csv"), check=False)
    assert proc.returncode == 2
    assert ("input 'input' needs 4 values per row (shape [4]); the input's columns other than --carry ones "
            "(a, b, c) hold 3") in proc.stderr
    (tmp_path / "half.csv").write_text(",".join(f"INPUT0_{i}" for i in range(16)) + "\n" + ",".join("1" * 16) + "\n")
    proc = run_batch(model_repo, "--model", "add_sub", "--input", str(tmp_path / "half.csv"),
                     "--output", str(tmp_path / "o.csv"), check=False)
    assert proc.returncode == 2
    assert "input 'INPUT1': no column feeds it; expected a column 'INPUT1', columns 'INPUT1_0'..'INPUT1_15'" in proc.stderr
    assert not list(tmp_path.glob("o.csv*"))


def test_shards_cover_every_row_once(model_repo, data, tmp_path):
    d, _ = data
    seen = []
    for i in range(3):
        out = tmp_path / f"part-{i}.csv"
        run_batch(model_repo, "--model", "mlp_classifier", "--input", str(d / "in.csv"), "--output", str(out),
                  "--carry", "id", "--shard", f"{i}/3", "--outputs", "label")
        ids = [r[0] for r in read_csv(out)[1]]
        assert all(int(v[1:]) % 3 == i for v in ids)
        seen += ids
    assert sorted(seen) == sorted(f"r{i}" for i in range(ROWS))


def wait_for_progress(checkpoint: Path, proc: subprocess.Popen, at_least: int = 1) -> int:
    def progressed():
        if proc.poll() is not None:
            return -1
        try:
            c = json.loads(checkpoint.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return 0
        return c["rows_ok"] if c["rows_ok"] >= at_least and not c["complete"] else 0
    return fh.wait_until(progressed, 60, "the checkpoint to show progress", interval=0.005)


def kill_9_mid_job(repo: Path, args: list[str], out: Path, at_least: int = 1, may_finish: bool = False) -> int:
    """Starts `ferry batch ARGS`, SIGKILLs it once its checkpoint counts at least `at_least` rows
    and returns that count; -1 when the job finished first (an error unless `may_finish`)."""
    cmd = [str(fh.ferry_bin()), "batch", "--model-repository", str(repo), "--log-level", "warning", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=fh.child_env())
    try:
        done = wait_for_progress(Path(str(out) + ".checkpoint"), proc, at_least)
        if done < 0:
            assert may_finish, f"the job ended (exit {proc.returncode}) before it could be killed"
            assert proc.returncode == 0, f"the job failed with exit {proc.returncode}"
            return done
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return done


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "npy"])
def test_kill_9_then_the_same_command_gives_identical_output(model_repo, data, tmp_path, fmt):
    d, _ = data
    src = d / f"in.{fmt}"
    if fmt == "csv":
        # A bad row every 10,000, so the error file is resumed too.
        lines = src.read_text().splitlines(keepends=True)
        for i in range(1000, len(lines), 10_000):
            lines[i] = lines[i].replace(",", ",oops", 1)
        src = tmp_path / "in.csv"
        src.write_text("".join(lines))
    extra = ["--carry", "id"] if fmt != "npy" else ["--outputs", "probabilities"]
    # Small batches and one request in flight make the job long enough to kill mid-way.
    args = ["--model", "mlp_classifier", "--input", str(src), "--batch-size", "64", "--concurrency", "1",
            "--checkpoint-ms", "20", *extra]
    ref_out = tmp_path / f"ref.{fmt}"
    run_batch(model_repo, *args, "--output", str(ref_out))

    out = tmp_path / f"out.{fmt}"
    done_at_kill = kill_9_mid_job(model_repo, [*args, "--output", str(out)], out)
    assert 0 < done_at_kill < ROWS
    assert not out.exists() and Path(str(out) + ".partial").exists()
    # The resumed job is killed again further on when it is slow enough to catch, so a
    # checkpoint written by a resumed run is resumed too.
    kill_9_mid_job(model_repo, [*args, "--output", str(out)], out, at_least=done_at_kill + 1, may_finish=True)
    if not out.exists():
        again = run_batch(model_repo, *args, "--output", str(out))
        assert "resumed at row" in again.stderr, again.stderr
    assert sha256(out) == sha256(ref_out)
    assert sha256(Path(str(out) + ".errors.jsonl")) == sha256(Path(str(ref_out) + ".errors.jsonl"))
    if fmt == "csv":
        assert len((Path(str(out) + ".errors.jsonl")).read_text().splitlines()) == 10


def test_another_command_does_not_resume_a_checkpoint(model_repo, data, tmp_path):
    d, _ = data
    out = tmp_path / "out.csv"
    args = ["--model", "mlp_classifier", "--input", str(d / "in.csv"), "--output", str(out), "--batch-size", "32",
            "--concurrency", "1", "--checkpoint-ms", "20", "--carry", "id"]
    kill_9_mid_job(model_repo, args, out)
    changed = [a if a != "32" else "64" for a in args]
    proc2 = run_batch(model_repo, *changed, check=False)
    assert proc2.returncode == 2
    assert "belongs to another job (batch_size was '32', now '64')" in proc2.stderr
    run_batch(model_repo, *changed, "--restart")
    assert len(read_csv(out)[1]) == ROWS
    # A finished output is not overwritten by accident.
    proc3 = run_batch(model_repo, *changed, check=False)
    assert proc3.returncode == 2 and "exists and no checkpoint says it is unfinished" in proc3.stderr


PICKY = '''
import numpy as np
from ferry_sdk import InvalidInput, Model

class Picky(Model):
    def predict(self, inputs):
        x = inputs["X"]
        if (x < 0).any():
            raise InvalidInput("X must not be negative, got %d" % x.min())
        return {"Y": x * 10}
'''


def write_picky_repo(tmp_path):
    """A repository with one Python model, `picky`, that refuses negative X (PICKY)."""
    repo = tmp_path / "repo"
    (repo / "picky" / "1").mkdir(parents=True)
    (repo / "picky" / "1" / "model.py").write_text(PICKY)
    (repo / "picky" / "config.pbtxt").write_text("""
backend: "python"
max_batch_size: 8
input [ { name: "X" data_type: TYPE_INT64 dims: [ 1 ] } ]
output [ { name: "Y" data_type: TYPE_INT64 dims: [ 1 ] } ]
""")
    return repo


def test_a_batch_the_model_fails_is_retried_row_by_row(tmp_path):
    import sys

    repo = write_picky_repo(tmp_path)
    xs = [i if i % 13 else -i for i in range(1, 41)]  # rows 12, 25 and 38 hold -13, -26, -39
    (tmp_path / "in.csv").write_text("key,X\n" + "".join(f"k{i},{x}\n" for i, x in enumerate(xs)))
    out = tmp_path / "out.csv"
    proc = run_batch(repo, "--model", "picky", "--input", str(tmp_path / "in.csv"), "--output", str(out),
                     "--carry", "key", "--python-executable", sys.executable)
    assert "37 rows ok, 3 failed" in proc.stderr
    errors = [json.loads(line) for line in (tmp_path / "out.csv.errors.jsonl").read_text().splitlines()]
    assert [e["row"] for e in errors] == [12, 25, 38]
    assert "X must not be negative, got -13" in errors[0]["error"] and "model 'picky'" in errors[0]["error"]
    header, rows = read_csv(out)
    assert header == ["key", "Y"]
    assert rows == [[f"k{i}", str(x * 10)] for i, x in enumerate(xs) if x > 0]


def test_progress_is_a_redrawn_line_on_a_terminal_and_log_lines_otherwise(tmp_path):
    import os
    import pty
    import re
    import sys

    # The Python model of the row-by-row test, one row per request: a job of a few seconds,
    # so both reporters fire more than once.
    repo = write_picky_repo(tmp_path)
    rows = 30_000
    (tmp_path / "in.csv").write_text("key,X\n" + "".join(f"k{i},{i}\n" for i in range(rows)))
    args = ["--model", "picky", "--input", str(tmp_path / "in.csv"), "--carry", "key", "--batch-size", "1",
            "--concurrency", "1", "--python-executable", sys.executable]
    # Not a terminal: a log line every --progress-secs, then the summary.
    cmd = [str(fh.ferry_bin()), "batch", "--model-repository", str(repo), *args, "--output",
           str(tmp_path / "log.csv"), "--progress-secs", "1", "--log-level", "info"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=fh.child_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = re.findall(r'msg="batch progress" progress="(\d+) rows \((\d+)%\), (\d+) rows/s(, ETA \d+:\d\d:\d\d)?"',
                       proc.stderr)
    assert len(lines) >= 1, proc.stderr[-3000:]
    done = [int(r) for r, *_ in lines]
    assert done == sorted(done) and 0 < done[0] < rows and all(int(rate) > 0 for _, _, rate, _ in lines)
    assert any(eta for *_, eta in lines), "an ETA while the job runs"
    assert f"ferry batch: {rows} rows ok, 0 failed" in proc.stderr
    assert "\r" not in proc.stderr, "no redrawn line when stderr is not a terminal"
    # A terminal: one line redrawn in place with rows/s and an ETA, cleared before the summary.
    master, slave = pty.openpty()
    cmd = [str(fh.ferry_bin()), "batch", "--model-repository", str(repo), *args, "--output",
           str(tmp_path / "tty.csv"), "--log-level", "warning"]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=slave, env=fh.child_env())
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the job closed its end
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert p.wait(timeout=RUN_TIMEOUT_S) == 0, seen[-3000:]
    text = seen.decode()
    drawn = re.findall(r"\r\x1b\[Kferry batch: (\d+) rows \((\d+)%\), (\d+) rows/s, ETA \d+:\d\d:\d\d", text)
    assert len(drawn) >= 2, text[-2000:]
    assert [int(r) for r, *_ in drawn] == sorted(int(r) for r, *_ in drawn)
    assert f"\r\x1b[Kferry batch: {rows} rows ok, 0 failed" in text, "the line is cleared before the summary"
    assert "batch progress" not in text


COUNTING = '''
import numpy as np
from ferry_sdk import Model

class Counting(Model):
    def predict(self, inputs):
        x = inputs["X"]
        return {"Y": x * 10, "ROWS": np.full(x.shape, x.shape[0], dtype=np.int64)}
'''


def test_in_process_jobs_go_through_the_models_dynamic_batching(tmp_path):
    """A job sending one row per request, 8 at once, runs on the same scheduler as `ferry
    serve`: with `dynamic_batching` the model's predict gets several requests' rows in
    one call (its ROWS output says how many); without, one each."""
    import sys

    repo = tmp_path / "repo"
    for name, extra in (("batched", "dynamic_batching { max_queue_delay_microseconds: 20000 }"), ("plain", "")):
        (repo / name / "1").mkdir(parents=True)
        (repo / name / "1" / "model.py").write_text(COUNTING)
        (repo / name / "config.pbtxt").write_text(f"""
backend: "python"
max_batch_size: 8
input [ {{ name: "X" data_type: TYPE_INT64 dims: [ 1 ] }} ]
output [ {{ name: "Y" data_type: TYPE_INT64 dims: [ 1 ] }}, {{ name: "ROWS" data_type: TYPE_INT64 dims: [ 1 ] }} ]
{extra}
""")
    (tmp_path / "in.csv").write_text("X\n" + "".join(f"{i}\n" for i in range(64)))
    rows_per_call = {}
    for name in ("batched", "plain"):
        out = tmp_path / f"{name}.csv"
        proc = run_batch(repo, "--model", name, "--input", str(tmp_path / "in.csv"), "--output", str(out),
                         "--batch-size", "1", "--concurrency", "8", "--python-executable", sys.executable)
        assert "64 rows ok, 0 failed" in proc.stderr, proc.stderr[-2000:]
        header, rows = read_csv(out)
        assert header == ["Y", "ROWS"]
        assert [int(r[0]) for r in rows] == [i * 10 for i in range(64)], "rows out of order or wrong"
        rows_per_call[name] = [int(r[1]) for r in rows]
    assert max(rows_per_call["batched"]) > 1, "dynamic batching never joined two requests of the job"
    assert set(rows_per_call["plain"]) == {1}, rows_per_call["plain"]
