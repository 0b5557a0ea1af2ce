"""`ferry batch --url`: the same job against a remote V2 endpoint, REST or gRPC (docs/batch.md).

The endpoint is a real `ferry serve` started by the test on loopback. The remote job's output
and error file are compared byte for byte with the in-process job's on the same rows; the
server is SIGKILLed mid-job and restarted on the same port, and the job, retrying with
back-off, still finishes with every row once; a remote job SIGKILLed mid-way resumes to the
same bytes; rows the model refuses (HTTP 400) go to the error file with the server's message.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

import ferry_helpers as fh
from test_batch import (RUN_TIMEOUT_S, features, kill_9_mid_job, read_csv, run_batch, sha256,
                        wait_for_progress, write_csv, write_picky_repo)

ROWS = 20_000
PROTOCOLS = ["http", "grpc"]


def url(server: fh.FerryServer, protocol: str) -> str:
    return server.base if protocol == "http" else f"grpc://127.0.0.1:{server.grpc_port}"


@pytest.fixture(scope="module")
def server(model_repo, tmp_path_factory):
    s = fh.FerryServer(fh.ferry_bin(), [model_repo], [], tmp_path_factory.mktemp("remote") / "serve.log").start()
    yield s
    s.kill()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("remote-data")
    write_csv(d / "in.csv", features(ROWS, seed=33))
    return d


def remote_batch(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    # No --model-repository: the model is the server's.
    cmd = [str(fh.ferry_bin()), "batch", "--log-level", "warning", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=fh.child_env())
    if check:
        assert proc.returncode == 0, f"{cmd}\nexit {proc.returncode}\n{proc.stderr[-3000:]}"
    return proc


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_remote_output_is_byte_identical_to_the_in_process_one(model_repo, server, data, tmp_path, ext, protocol):
    args = ["--model", "mlp_classifier", "--input", str(data / "in.csv"), "--carry", "id", "--batch-size", "32"]
    local = tmp_path / f"local.{ext}"
    run_batch(model_repo, *args, "--output", str(local))
    out = tmp_path / f"remote.{ext}"
    proc = remote_batch("--url", url(server, protocol), *args, "--concurrency", "4", "--output", str(out))
    assert f"{ROWS} rows ok, 0 failed" in proc.stderr
    assert sha256(out) == sha256(local)
    assert (tmp_path / f"remote.{ext}.errors.jsonl").read_text() == ""


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_server_killed_and_restarted_mid_job_loses_and_repeats_no_row(model_repo, data, tmp_path, protocol):
    s = fh.FerryServer(fh.ferry_bin(), [model_repo], [], tmp_path / "serve.log").start()
    try:
        args = ["--model", "mlp_classifier", "--input", str(data / "in.csv"), "--carry", "id", "--batch-size", "8",
                "--checkpoint-ms", "20"]
        ref = tmp_path / "ref.csv"
        run_batch(model_repo, *args, "--output", str(ref))
        out = tmp_path / "out.csv"
        cmd = [str(fh.ferry_bin()), "batch", "--log-level", "warning", "--url", url(s, protocol), *args, "--concurrency", "3",
               "--retries", "40", "--retry-max-ms", "400", "--output", str(out)]
        job = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=fh.child_env())
        try:
            assert wait_for_progress(Path(str(out) + ".checkpoint"), job, 2_000) > 0
            s.kill()
            time.sleep(1.0)  # requests fail meanwhile: connection refused
            assert job.poll() is None, "the job ended while the server was down"
            s.restart_on_same_ports()
            _, err = job.communicate(timeout=RUN_TIMEOUT_S)
        finally:
            if job.poll() is None:
                job.kill()
                job.wait()
        assert job.returncode == 0, err[-3000:]
        assert "remote request failed; retrying" in err, err[-3000:]
        assert f"{ROWS} rows ok, 0 failed" in err
        ids = [r[0] for r in read_csv(out)[1]]
        assert ids == [f"r{i}" for i in range(ROWS)]
        assert sha256(out) == sha256(ref)
    finally:
        s.kill()


def test_a_remote_job_killed_mid_way_resumes_to_the_same_bytes(model_repo, server, data, tmp_path):
    args = ["--model", "mlp_classifier", "--input", str(data / "in.csv"), "--carry", "id", "--batch-size", "8",
            "--concurrency", "1", "--checkpoint-ms", "20", "--row-group-rows", "1000"]
    ref = tmp_path / "ref.parquet"
    run_batch(model_repo, *args, "--output", str(ref))
    out = tmp_path / "out.parquet"
    cmd = ["--url", server.base, *args, "--output", str(out)]
    # kill_9_mid_job passes --model-repository, which a remote job ignores.
    done = kill_9_mid_job(model_repo, cmd, out, at_least=3_000)
    assert 3_000 <= done < ROWS
    again = remote_batch(*cmd)
    assert "resumed at row" in again.stderr
    assert sha256(out) == sha256(ref)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_rows_the_server_refuses_go_to_the_error_file_with_its_message(tmp_path, protocol):
    repo = write_picky_repo(tmp_path)
    xs = [i if i % 13 else -i for i in range(1, 41)]  # rows 12, 25 and 38 are refused
    (tmp_path / "in.csv").write_text("key,X\n" + "".join(f"k{i},{x}\n" for i, x in enumerate(xs)))
    s = fh.FerryServer(fh.ferry_bin(), [repo], ["--python-executable", sys.executable], tmp_path / "serve.log").start()
    try:
        out = tmp_path / "out.csv"
        proc = remote_batch("--url", url(s, protocol), "--model", "picky", "--input", str(tmp_path / "in.csv"),
                            "--output", str(out), "--carry", "key")
    finally:
        s.kill()
    assert "37 rows ok, 3 failed" in proc.stderr
    errors = [json.loads(line) for line in (tmp_path / "out.csv.errors.jsonl").read_text().splitlines()]
    assert [e["row"] for e in errors] == [12, 25, 38]
    assert errors[0]["error"].startswith("row 12: model 'picky': ") and "X must not be negative, got -13" in \
        errors[0]["error"], errors
    assert read_csv(out)[1] == [[f"k{i}", str(x * 10)] for i, x in enumerate(xs) if x > 0]
    # A 4xx is not retried (the rows of its batch are, one by one: the job's own retry).
    assert "remote request failed; retrying" not in proc.stderr
    # The same files as the in-process job's, error messages included.
    local = tmp_path / "local.csv"
    run_batch(repo, "--model", "picky", "--input", str(tmp_path / "in.csv"), "--output", str(local), "--carry", "key",
              "--python-executable", sys.executable)
    assert sha256(out) == sha256(local)
    assert sha256(tmp_path / "out.csv.errors.jsonl") == sha256(tmp_path / "local.csv.errors.jsonl")


def test_bad_urls_and_an_unreachable_server_are_named(data, tmp_path):
    base = ["--model", "mlp_classifier", "--input", str(data / "in.csv"), "--carry", "id"]
    proc = remote_batch("--url", "https://127.0.0.1:1", *base, "--output", str(tmp_path / "a.csv"), check=False)
    assert proc.returncode == 2 and "must be http://HOST:PORT (REST) or grpc://HOST:PORT (no TLS)" in proc.stderr
    proc = remote_batch("--url", "http://127.0.0.1/v2", *base, "--output", str(tmp_path / "a.csv"), check=False)
    assert proc.returncode == 2 and "must be http://HOST:PORT" in proc.stderr, proc.stderr
    port = fh.free_ports(1)[0]
    proc = remote_batch("--url", f"http://127.0.0.1:{port}", *base, "--retries", "2", "--retry-max-ms", "50",
                        "--output", str(tmp_path / "b.csv"), check=False)
    assert proc.returncode == 1, proc.stderr
    assert f"GET http://127.0.0.1:{port}/v2/models/mlp_classifier: cannot connect" in proc.stderr, proc.stderr
    assert "(after 3 tries)" in proc.stderr
    proc = remote_batch("--url", f"grpc://127.0.0.1:{port}", *base, "--retries", "1", "--retry-max-ms", "50",
                        "--request-timeout-ms", "2000", "--output", str(tmp_path / "c.csv"), check=False)
    assert proc.returncode == 1, proc.stderr
    assert f"ModelMetadata grpc://127.0.0.1:{port}: " in proc.stderr and "(after 2 tries)" in proc.stderr, proc.stderr
