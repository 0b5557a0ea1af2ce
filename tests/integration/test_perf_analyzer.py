"""Triton's perf_analyzer (from the perf-analyzer wheel, installed by scripts/setup.sh through
tools/perf_analyzer/install.sh) against ferry, unchanged: gRPC unary and streaming, HTTP, and a
batched model. Each run is bounded (count windows of 500 requests, at most 10 trials).

perf_analyzer reads the model's metadata and config, sends synthetic inputs, and fetches the
server-side statistics before and after each window; the checks below compare what it reports
with ferry's own statistics extension, so a run that measured nothing, or measured requests ferry
did not count, fails.
"""

from __future__ import annotations

import re
import subprocess

import pytest
import requests

import ferry_helpers as fh

PERF_ANALYZER = fh.REPO_ROOT / "third_party" / "perf_analyzer" / "bin" / "perf_analyzer"


def _success_count(server, model: str) -> int:
    r = requests.get(f"{server.base}/v2/models/{model}/stats", timeout=fh.HTTP_TIMEOUT_S)
    r.raise_for_status()
    return sum(int(m["inference_stats"]["success"]["count"]) for m in r.json()["model_stats"])


def _run(server, model: str, *args: str) -> str:
    if not PERF_ANALYZER.is_file():
        pytest.skip(f"perf_analyzer not installed ({PERF_ANALYZER}); run scripts/setup.sh")
    protocol = "http" if "http" in args else "grpc"
    url = server.url if protocol == "http" else fh.grpc_url(server)
    cmd = [str(PERF_ANALYZER), "-m", model, "-u", url, *args,
           # Windows of 500 requests (100 made a window a few ms long, so one stall of a shared
           # machine's core failed the stability test) and up to 10 trials: what is checked is
           # what perf_analyzer counts, not how steady the machine is.
           "--measurement-mode", "count_windows", "--measurement-request-count", "500",
           "--max-trials", "10", "--stability-percentage", "100", "--concurrency-range", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"perf_analyzer failed ({proc.returncode}):\n{out}"
    return out


def _field(out: str, label: str) -> float:
    m = re.search(rf"{label}: ([0-9.]+)", out)
    assert m, f"no '{label}' in perf_analyzer output:\n{out}"
    return float(m.group(1))


@pytest.mark.parametrize("args", [("-i", "grpc"), ("-i", "grpc", "--streaming"), ("-i", "http")],
                         ids=["grpc", "grpc-streaming", "http"])
def test_perf_analyzer_measures_ferry(ferry_server, args):
    before = _success_count(ferry_server, "add_sub")
    out = _run(ferry_server, "add_sub", *args)
    after = _success_count(ferry_server, "add_sub")
    client_requests = _field(out, "Request count")
    assert client_requests >= 500
    assert _field(out, "Throughput") > 0
    # perf_analyzer's server section comes from ferry's statistics extension.
    # perf_analyzer reads ferry's statistics at the window's edges while requests are in
    # flight: ferry counts a success before it answers, so a request answered just after the
    # opening read may be the client's but not the window's. At most the concurrency (2).
    assert _field(out, "Successful request count") >= client_requests - 2
    # Every request it counted really reached ferry and succeeded (it also sends warm-up
    # requests it does not count, hence >=).
    assert after - before >= client_requests


def test_perf_analyzer_batched_model(ferry_server):
    # mlp_classifier: no config file, auto-completed as a batching model.
    out = _run(ferry_server, "mlp_classifier", "-i", "grpc", "-b", "4")
    assert "Batch size: 4" in out
    # No dynamic batching on this model: each execution is one request of 4 rows.
    assert _field(out, "Inference count") == 4 * _field(out, "Execution count")
