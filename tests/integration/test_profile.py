"""`ferry profile build`: reference profiles from training data (docs/monitoring.md).

Builds profiles of the example mlp_classifier's training-like data from a CSV and an
.npy file with the real binary, running the model in-process for the prediction
distribution, and checks them against numpy on the same rows and onnxruntime's own
predictions: row and missing counts, the sketch's quantiles within its rank error,
histogram totals, category counts. Malformed files and options get exit 2 and a message
naming the file, line, column or flag.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

import ferry_helpers as fh

ROWS = 3000
RUN_TIMEOUT_S = 120


def run_profile(*args: str) -> subprocess.CompletedProcess:
    cmd = [str(fh.ferry_bin()), "profile", "build", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=fh.child_env())


def ok(*args: str) -> subprocess.CompletedProcess:
    proc = run_profile(*args)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def repo(model_repo, tmp_path_factory):
    """A private copy of the example repository (the profile is written into it)."""
    return fh.copy_repo(model_repo, tmp_path_factory.mktemp("profile") / "repo")


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(11).standard_normal((ROWS, 4)).astype(np.float32)


def write_csv(path: Path, x: np.ndarray, extra: dict[str, list[str]] | None = None) -> None:
    names = ["f0", "f1", "f2", "f3"] + list(extra or {})
    with open(path, "w") as f:
        f.write(",".join(names) + "\n")
        body = np.char.mod("%.9g", x)
        for i, row in enumerate(body):
            f.write(",".join(list(row) + [extra[k][i] for k in (extra or {})]) + "\n")


def feature(profile: dict, name: str, key: str = "features") -> dict:
    for f in profile[key]:
        if f["name"] == name:
            return f
    raise AssertionError(f"no {key} entry {name!r} in {[f['name'] for f in profile[key]]}")


def sketch_quantile(f: dict, q: float) -> float:
    """The sketch's q-quantile, computed from the stored levels as ferry does."""
    items = sorted((v, 1 << h) for h, level in enumerate(f["sketch"]["levels"]) for v in level)
    target, cum = q * f["sketch"]["n"], 0
    for v, w in items:
        cum += w
        if cum >= target:
            return v
    return items[-1][0]


def assert_numeric_matches(f: dict, values: np.ndarray) -> None:
    values = values[~np.isnan(values)]
    assert f["type"] == "numeric"
    assert f["sketch"]["n"] == len(values)
    assert sum(f["histogram"]["counts"]) == len(values)
    assert f["sketch"]["min"] == pytest.approx(float(values.min()))
    assert f["sketch"]["max"] == pytest.approx(float(values.max()))
    for q in (0.1, 0.25, 0.5, 0.75, 0.9):
        est = sketch_quantile(f, q)
        below, upto = float(np.mean(values < est)), float(np.mean(values <= est))
        # KLL k = 200: the rank error's standard deviation is about 0.3 % at this size; a
        # tied value (the label) covers the ranks [below, upto].
        assert below - 0.02 < q < upto + 0.02, f"{f['name']} q={q}: estimate {est} has ranks {below}..{upto}"


def test_csv_with_model_records_inputs_and_predictions(repo, x, tmp_path):
    data = tmp_path / "train.csv"
    write_csv(data, x)
    proc = ok("--model-repository", str(repo), "--model", "mlp_classifier", "--data", str(data))
    out = repo / "mlp_classifier" / "profile.json"
    assert str(out) in proc.stderr
    profile = json.loads(out.read_text())
    assert profile["format"] == "ferry-profile" and profile["version"] == 1
    assert profile["rows"] == ROWS and profile["source"] == "train.csv"
    assert [f["name"] for f in profile["features"]] == ["f0", "f1", "f2", "f3"]
    for j in range(4):
        f = feature(profile, f"f{j}")
        assert (f["tensor"], f["index"], f["rows"], f["missing"]) == ("", j, ROWS, 0)
        assert_numeric_matches(f, x[:, j].astype(np.float64))
    expected = fh.reference(repo, "mlp_classifier", 1, {"input": x})
    names = {f["name"] for f in profile["predictions"]}
    assert names == {"probabilities[0]", "probabilities[1]", "probabilities[2]", "label[0]"}
    for j in range(3):
        p = feature(profile, f"probabilities[{j}]", "predictions")
        assert (p["tensor"], p["index"]) == ("probabilities", j)
        assert_numeric_matches(p, expected["probabilities"][:, j].astype(np.float64))
    label = feature(profile, "label[0]", "predictions")
    assert label["tensor"] == "label"
    assert_numeric_matches(label, expected["label"][:, 0].astype(np.float64))


def test_npy_gives_input_columns(repo, x, tmp_path):
    data = tmp_path / "train.npy"
    np.save(data, x)
    out = tmp_path / "p.json"
    ok("--model-repository", str(repo), "--model", "mlp_classifier", "--data", str(data), "-o", str(out),
       "--bins", "5")
    profile = json.loads(out.read_text())
    assert [f["name"] for f in profile["features"]] == ["input[0]", "input[1]", "input[2]", "input[3]"]
    for j in range(4):
        f = profile["features"][j]
        assert len(f["histogram"]["edges"]) == 4  # 5 bins
        assert_numeric_matches(f, x[:, j].astype(np.float64))
    assert len(profile["predictions"]) == 4


def test_categorical_and_missing_values_without_a_model(tmp_path, x):
    rng = np.random.default_rng(3)
    seg = [str(s) for s in rng.choice(["gold", "silver", "bronze"], size=ROWS, p=[0.2, 0.3, 0.5])]
    xm = x.copy()
    xm[::10, 1] = np.nan
    data = tmp_path / "mixed.csv"
    write_csv(data, xm, {"segment": seg})
    text = data.read_text().replace("nan", "")  # empty cells are missing
    data.write_text(text)
    out = tmp_path / "p.json"
    ok("--data", str(data), "--columns", "f0,f1,segment", "-o", str(out), "--max-categories", "2")
    profile = json.loads(out.read_text())
    assert profile["predictions"] == []
    f1 = feature(profile, "f1")
    assert f1["missing"] == ROWS // 10 and f1["rows"] == ROWS
    assert_numeric_matches(f1, xm[:, 1].astype(np.float64))
    s = feature(profile, "segment")
    assert (s["type"], s["tensor"], s["index"]) == ("categorical", "segment", 0)
    counts = {v: seg.count(v) for v in set(seg)}
    assert s["categories"]["values"] == {"bronze": counts["bronze"], "silver": counts["silver"]}
    assert s["categories"]["other"] == counts["gold"]
    # Without --columns only the numeric columns are profiled.
    ok("--data", str(data), "-o", str(out))
    assert [f["name"] for f in json.loads(out.read_text())["features"]] == ["f0", "f1", "f2", "f3"]


@pytest.mark.parametrize("content, args, message", [
    ("f0,f1\n1,2\n3\n", [], "line 3: 1 cells, the header has 2"),
    ("f0,f1\n1,\"2\"x\n", [], "line 2: "),
    ("f0,f1\n1,2\n", ["--columns", "f0,nope"], "--columns: no column 'nope' in the header"),
    ("f0,f1\n1,2\n", ["--categorical", "f9"], "--categorical: no column 'f9'"),
    ("name\nabc\n", [], "no numeric columns to profile"),
    ("f0,f1\n", [], "no rows"),
    ("f0,f1\n1,2\n", ["--sketch-k", "2"], "--sketch-k: 2 is not in 8..65536"),
])
def test_bad_csv_and_options_are_refused_naming_the_problem(tmp_path, content, args, message):
    data = tmp_path / "bad.csv"
    data.write_text(content)
    proc = run_profile("--data", str(data), "-o", str(tmp_path / "p.json"), *args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr, proc.stderr
    assert not (tmp_path / "p.json").exists()


def test_bad_npy_files_and_usage(tmp_path, repo):
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"\x93NUMPY\x01\x00" + (10).to_bytes(2, "little") + b"{'descr': ")
    proc = run_profile("--data", str(bad), "-o", str(tmp_path / "p.json"))
    assert proc.returncode == 2 and "bad.npy" in proc.stderr, proc.stderr
    fortran = tmp_path / "f.npy"
    np.save(fortran, np.asfortranarray(np.ones((4, 3), dtype=np.float32)))
    proc = run_profile("--data", str(fortran), "-o", str(tmp_path / "p.json"))
    assert proc.returncode == 2 and "fortran_order" in proc.stderr, proc.stderr
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text('{"a": 1}\n')
    proc = run_profile("--data", str(jsonl), "-o", str(tmp_path / "p.json"))
    assert proc.returncode == 2 and "reads .csv, .parquet and .npy files" in proc.stderr, proc.stderr
    proc = run_profile("--data", str(fortran))
    assert proc.returncode == 2 and "--output, or --model-repository and --model, is required" in proc.stderr
    proc = run_profile("--model-repository", str(repo), "--model", "no_such_model", "--data", str(fortran))
    assert proc.returncode == 2 and "no folder" in proc.stderr, proc.stderr
    proc = subprocess.run([str(fh.ferry_bin()), "profile", "show"], capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S)
    assert proc.returncode == 2 and "the only subcommand is 'build'" in proc.stderr
