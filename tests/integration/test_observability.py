"""The observability stack end to end, against the real systems: a `ferry serve` under a
bounded load (successes over REST and gRPC, bad requests, a full queue, a failed model
load, an unload) is scraped every second by a real Prometheus (which also evaluates the
shipped rules, deploy/prometheus/ferry-rules.yml, and sends its alerts to a real
Alertmanager) and by a real VictoriaMetrics single node; vmalert evaluates the same
rules against VictoriaMetrics.

The tests check that
  (a) every metric of docs/metrics.md's `ferry serve` table arrives in both TSDBs with the
      documented labels (the model-monitoring and drift tables are not checked here yet),
      and with the documented type where the TSDB keeps types (Prometheus metadata;
      VictoriaMetrics 1.79 keeps none, so there the shape of a histogram is checked);
  (b) every PromQL expression of the shipped rules and of the Grafana dashboard
      (deploy/grafana/*.json) parses and returns series, in Prometheus and in
      VictoriaMetrics. An alert's expression is empty while all is well, so it is split
      at its top-level comparisons and set operators (`>`, `and`, `or`, `unless`, ...)
      and each operand must return series (`absent(x)` is checked as `x`, and a trailing
      `x offset 30m` as `x`: the TSDBs hold a minute of history); the whole expression
      must still parse, and the operands that shape the result must carry every label
      a panel's legend or an alert's annotations show. The load drives the conditions
      that some operands need (a full queue for the rejection ratio, a failed load for
      the load-failure increase);
  (c) an alert of the shipped rules reaches a webhook receiver through Alertmanager,
      routed by the shipped example routing (deploy/alertmanager/alertmanager.yml).

Every server listens on 127.0.0.1, on free ports, and is stopped by the test. Nothing
passes or fails on timing: waits poll for a state with a generous deadline.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import threading
from pathlib import Path

import numpy as np
import onnx
import pytest
import requests
from onnx import TensorProto, helper, numpy_helper

import ferry_helpers as fh
from monitoring_helpers import Daemon, WebhookReceiver, start_alertmanager, start_tsdbs, tool
from promql_checks import (DEPLOY, GRAFANA_RANGES, check_dashboard_importable, check_expressions, documented_metrics,
                           shipped_expressions, signal_operands)

# `ferry serve`'s rules and dashboard; the engine's are checked by test_observability_engine.py.
RULES = [DEPLOY / "prometheus" / "ferry-rules.yml"]
DASHBOARDS = [DEPLOY / "grafana" / "ferry-server.json"]
JOB = "ferry"  # the job name the shipped rules select
STARTUP_MODELS = ("mlp_classifier", "add_sub", "int_ops", "obs_slow")
BROKEN_MODEL = "obs_broken"
WAIT_S = 60.0
# Grafana's variables as a dashboard with every variable at "All" expands them.
GRAFANA_VARIABLES = {**GRAFANA_RANGES, "$job": ".*", "$instance": ".*", "$model": ".*", "$version": ".*"}


# --------------------------------------------------------------------------- the systems


# --------------------------------------------------------------------------- models


def add_slow_model(repo: Path) -> None:
    """obs_slow: Tanh(MatMul) repeated, a few ms per row, one instance and a queue of one
    request, so a burst of concurrent requests overflows it (reason="overloaded")."""
    width, repeats = 512, 24
    rng = np.random.default_rng(7)
    w = (rng.standard_normal((width, width)) / math.sqrt(width)).astype(np.float32)
    nodes, h = [], "X"
    for i in range(repeats):
        nodes += [helper.make_node("MatMul", [h, "W"], [f"m{i}"]), helper.make_node("Tanh", [f"m{i}"], [f"t{i}"])]
        h = f"t{i}"
    nodes.append(helper.make_node("Identity", [h], ["Y"]))
    graph = helper.make_graph(nodes, "obs_slow",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["batch", width])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["batch", width])],
                              [numpy_helper.from_array(w, "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    (repo / "obs_slow" / "1").mkdir(parents=True)
    onnx.save(model, str(repo / "obs_slow" / "1" / "model.onnx"))
    (repo / "obs_slow" / "config.pbtxt").write_text(f"""\
name: "obs_slow"
platform: "onnxruntime_onnx"
max_batch_size: 1
input [ {{ name: "X" data_type: TYPE_FP32 dims: [ {width} ] }} ]
output [ {{ name: "Y" data_type: TYPE_FP32 dims: [ {width} ] }} ]
instance_group [ {{ kind: KIND_CPU count: 1 }} ]
dynamic_batching {{ default_queue_policy {{ max_queue_size: 1 }} }}
""")


def add_broken_model(repo: Path) -> None:
    """obs_broken: a model file that is not ONNX, so every load of it fails."""
    (repo / BROKEN_MODEL / "1").mkdir(parents=True)
    (repo / BROKEN_MODEL / "1" / "model.onnx").write_bytes(b"not an onnx model")
    (repo / BROKEN_MODEL / "config.pbtxt").write_text(f'name: "{BROKEN_MODEL}"\nplatform: "onnxruntime_onnx"\n')


# --------------------------------------------------------------------------- load


def drive_load(server: fh.FerryServer) -> dict[str, int]:
    """A few hundred requests: successes over REST and gRPC, repeats answered from the
    response cache, bad requests, and bursts that overflow obs_slow's queue until at
    least one is refused. Returns what it sent."""
    import tritonclient.grpc as grpcclient

    sent = {"ok": 0, "invalid": 0, "overloaded": 0, "cache_hits": 0}
    with requests.Session() as s:
        # add_sub has its response cache on here: the same request ten times is one miss
        # and nine hits.
        same = fh.json_request(fh.make_inputs("add_sub", 2, seed=77))
        for _ in range(10):
            resp = s.post(f"{server.base}/v2/models/add_sub/infer", json=same, timeout=fh.HTTP_TIMEOUT_S)
            assert resp.status_code == 200, resp.text[:300]
            sent["ok"] += 1
        sent["cache_hits"] = 9
        for i in range(150):
            model = ("mlp_classifier", "add_sub", "int_ops")[i % 3]
            resp = s.post(f"{server.base}/v2/models/{model}/infer", timeout=fh.HTTP_TIMEOUT_S,
                          json=fh.json_request(fh.make_inputs(model, 1 + i % 4, seed=i)))
            assert resp.status_code == 200, resp.text[:300]
            sent["ok"] += 1
        for i in range(20):
            doc = fh.json_request(fh.make_inputs("add_sub", 1, seed=500 + i))
            doc["inputs"][0]["data"] = doc["inputs"][0]["data"][:-1]  # wrong element count
            resp = s.post(f"{server.base}/v2/models/add_sub/infer", json=doc, timeout=fh.HTTP_TIMEOUT_S)
            assert resp.status_code == 400, resp.text[:300]
            sent["invalid"] += 1

    client = grpcclient.InferenceServerClient(fh.grpc_url(server))
    try:
        for i in range(50):
            x = fh.make_inputs("mlp_classifier", 2, seed=900 + i)["input"]
            inp = grpcclient.InferInput("input", list(x.shape), "FP32")
            inp.set_data_from_numpy(x)
            client.infer("mlp_classifier", [inp])
            sent["ok"] += 1
    finally:
        client.close()

    x = np.random.default_rng(3).standard_normal((1, 512)).astype(np.float32)
    body, headers = fh.binary_request({"X": x})
    for _ in range(10):
        barrier = threading.Barrier(16)
        codes: list[int] = []

        def one():
            with requests.Session() as s:
                barrier.wait()
                codes.append(s.post(f"{server.base}/v2/models/obs_slow/infer", data=body, headers=headers,
                                    timeout=60).status_code)

        threads = [threading.Thread(target=one) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        assert set(codes) <= {200, 503}, codes
        sent["ok"] += codes.count(200)
        sent["overloaded"] += codes.count(503)
        if sent["overloaded"]:
            break
    assert sent["overloaded"], "10 bursts of 16 concurrent requests never filled a queue of one"
    return sent


# --------------------------------------------------------------------------- the stack


@pytest.fixture(scope="module")
def stack(ferry_module_factory, tmp_path_factory):
    work = tmp_path_factory.mktemp("observability")
    repo = ferry_module_factory.new_repo("obs-repo")
    with open(repo / "add_sub" / "config.pbtxt", "a") as f:
        f.write("response_cache { enable: true }\n")
    add_slow_model(repo)
    add_broken_model(repo)
    args = ["--model-control-mode", "explicit", "--intra-op-threads", "1"]
    for m in STARTUP_MODELS:
        args += ["--load-model", m]
    server = ferry_module_factory.start(repos=repo, args=args, name="observed")

    hook = WebhookReceiver()
    daemons: list[Daemon] = []
    try:
        am_port, = fh.free_ports(1)
        start_alertmanager(work, am_port, hook, daemons)
        scrape = {"job_name": JOB, "static_configs": [{"targets": [server.metrics_url]}]}
        prom, vm, vmalert = start_tsdbs(work, [scrape], RULES, am_port, daemons)

        # Both TSDBs scrape the server before the load, so that the failed load below
        # happens while they watch, as FerryModelLoadFailed needs.
        for tsdb in (prom, vm):
            fh.wait_until(lambda: tsdb.query(f'up{{job="{JOB}"}} == 1'), WAIT_S, f"{tsdb.name} to scrape ferry",
                          on_timeout=tsdb.tail)

        sent = drive_load(server)
        resp = server.post(f"/v2/repository/models/{BROKEN_MODEL}/load")
        assert resp.status_code >= 400, f"loading {BROKEN_MODEL} succeeded: {resp.text[:300]}"
        for action in ("unload", "load"):
            resp = server.post(f"/v2/repository/models/int_ops/{action}")
            assert resp.status_code == 200, f"{action} int_ops: {resp.status_code} {resp.text[:300]}"
        fh.wait_models_ready(server, STARTUP_MODELS)

        # Wait until both TSDBs hold the server's final counts, then until the rules
        # evaluators have recorded from them.
        text = fh.http_request("GET", f"http://{server.metrics_url}/metrics").text
        want = fh.metric_sum(fh.parse_metrics(text), "ferry_inference_requests_total")
        assert want == sent["ok"], f"the server counted {want} successes, the test saw {sent}"

        def caught_up(tsdb):
            r = tsdb.query(f'sum(ferry_inference_requests_total{{job="{JOB}"}})')
            return r and float(r[0]["value"][1]) >= want

        for tsdb in (prom, vm):
            fh.wait_until(lambda: caught_up(tsdb), WAIT_S, f"{tsdb.name} to hold {want:.0f} requests", on_timeout=tsdb.tail)
            fh.wait_until(lambda: tsdb.query("model_version_reason:ferry_rejections:ratio_rate5m"), WAIT_S,
                          f"the rules to record into {tsdb.name}", on_timeout=tsdb.tail)
            # The dashboard's alert panel needs one firing alert: the failed load's.
            fh.wait_until(lambda: tsdb.query(f'ALERTS{{alertname="FerryModelLoadFailed", alertstate="firing", '
                                             f'model="{BROKEN_MODEL}"}}'),
                          WAIT_S, f"FerryModelLoadFailed to fire into {tsdb.name}", on_timeout=tsdb.tail)
        yield {"server": server, "prometheus": prom, "vm": vm, "vmalert": vmalert, "hook": hook, "sent": sent,
               "work": work}
    finally:
        for d in reversed(daemons):
            d.stop()
        hook.close()


# --------------------------------------------------------------------------- docs/metrics.md


DOCUMENTED = documented_metrics("serve")
SCRAPE_LABELS = {"__name__", "job", "instance"}


def check_label_sets(tsdb: Daemon, name: str, labels: set[str], extra: set[str] = frozenset()) -> None:
    found = tsdb.series(f'{name}{{job="{JOB}"}}')
    assert found, f"{name}: no series in {tsdb.name}"
    for s in found:
        assert set(s) == labels | extra | SCRAPE_LABELS, \
            f"{name} in {tsdb.name}: labels {sorted(set(s) - SCRAPE_LABELS)}, documented {sorted(labels | extra)}"


@pytest.mark.parametrize("metric", sorted(DOCUMENTED))
def test_documented_metric_arrives_in_prometheus(stack, metric):
    kind, labels = DOCUMENTED[metric]
    prom = stack["prometheus"]
    meta = prom.get("/api/v1/metadata", metric=metric).get(metric)
    assert meta, f"Prometheus holds no metadata for {metric}"
    assert {m["type"] for m in meta} == {kind}, f"{metric}: type {meta}, documented {kind}"
    if kind == "histogram":
        check_label_sets(prom, metric + "_bucket", labels, {"le"})
        check_label_sets(prom, metric + "_sum", labels)
        check_label_sets(prom, metric + "_count", labels)
    else:
        check_label_sets(prom, metric, labels)


@pytest.mark.parametrize("metric", sorted(DOCUMENTED))
def test_documented_metric_arrives_in_victoriametrics(stack, metric):
    kind, labels = DOCUMENTED[metric]
    vm = stack["vm"]
    if kind == "histogram":
        check_label_sets(vm, metric + "_bucket", labels, {"le"})
        check_label_sets(vm, metric + "_sum", labels)
        check_label_sets(vm, metric + "_count", labels)
        les = {s["le"] for s in vm.series(f'{metric}_bucket{{job="{JOB}"}}')}
        assert "+Inf" in les and len(les) > 2, f"{metric}: buckets {sorted(les)}"
        assert not vm.series(f'{metric}{{job="{JOB}"}}'), f"{metric}: a histogram with a bare series"
    else:
        check_label_sets(vm, metric, labels)
    # The same series as Prometheus holds, label for label.
    names = [metric + s for s in ("_bucket", "_sum", "_count")] if kind == "histogram" else [metric]
    prom = stack["prometheus"]
    for name in names:
        as_set = lambda tsdb: {tuple(sorted(s.items())) for s in tsdb.series(f'{name}{{job="{JOB}"}}')}
        assert as_set(vm) == as_set(prom), f"{name}: VictoriaMetrics and Prometheus hold different series"


# What promtool's linter may say about the exposition: nothing (process_cpu_seconds_total
# was a gauge until it became the counter client libraries export).
KNOWN_LINT: set[str] = set()


def test_metrics_endpoint_passes_promtool_lint(stack):
    """promtool's linter finds nothing in the exposition after the load (every kind of
    series present)."""
    text = fh.http_request("GET", f"http://{stack['server'].metrics_url}/metrics").text
    assert "ferry_inference_failures_total{" in text and "ferry_model_unloads_total{" in text
    proc = subprocess.run([tool("promtool"), "check", "metrics"], input=text, capture_output=True, text=True,
                          timeout=30)
    problems = {line.strip() for line in (proc.stdout + proc.stderr).splitlines() if line.strip()}
    assert problems == KNOWN_LINT, f"promtool check metrics ({proc.returncode}): new {sorted(problems - KNOWN_LINT)}, " \
        f"no longer reported {sorted(KNOWN_LINT - problems)}"


def test_load_reached_both_tsdbs_with_its_failures(stack):
    """The load's failures arrive with their reasons, loads with their results, cache hits
    as hits; the counts match what the test caused."""
    for tsdb in (stack["prometheus"], stack["vm"]):
        by_reason = {r["metric"]["reason"]: float(r["value"][1]) for r in tsdb.query(
            f'sum by (reason) (ferry_inference_failures_total{{job="{JOB}"}})')}
        assert by_reason.get("invalid_argument") == stack["sent"]["invalid"], (tsdb.name, by_reason)
        assert by_reason.get("overloaded") == stack["sent"]["overloaded"], (tsdb.name, by_reason)
        loads = {r["metric"]["result"]: float(r["value"][1]) for r in tsdb.query(
            f'sum by (result) (ferry_model_loads_total{{job="{JOB}", model=~"{BROKEN_MODEL}|int_ops"}})')}
        assert loads == {"failure": 1.0, "success": 2.0}, (tsdb.name, loads)
        hits = tsdb.query(f'sum(ferry_cache_hits_total{{job="{JOB}", model="add_sub"}})')
        assert hits and float(hits[0]["value"][1]) == stack["sent"]["cache_hits"], (tsdb.name, hits)


# --------------------------------------------------------------------------- shipped PromQL


def test_signal_operands_split():
    """The splitter keeps what must return series and drops thresholds and modifiers."""
    assert signal_operands('up{job="ferry"} == 0') == ['up{job="ferry"}']
    assert signal_operands('sum by (job) (up{job="ferry"}) == 0 or absent(up{job="ferry"})') == \
        ['sum by (job) (up{job="ferry"})', 'up{job="ferry"}']
    assert signal_operands('(a > 0) unless on (job, model) (b{x=~"a|b"} >= 1)') == ["a", 'b{x=~"a|b"}']
    assert signal_operands("x > (14.4 * 0.001) and y > bool 2") == ["x", "y"]
    assert signal_operands("c - ignoring (le) d > 0.5") == ["c - ignoring (le) d"]
    assert signal_operands("rate(x[5m]) / ignoring (reason) group_left y") == ["rate(x[5m]) / ignoring (reason) group_left y"]
    assert signal_operands("band_or_orange") == ["band_or_orange"]
    assert signal_operands("(x > 0) unless on (m) (x offset 30m)") == ["x", "x"]
    assert signal_operands("max without () (x unless x offset 15m)") == ["max without () (x unless x offset 15m)"]
    assert signal_operands("(a > 0) unless on (m) (b > 1) or c < 2 and d", labelling=True) == ["a", "c"]
    assert signal_operands('x or absent(up{job="ferry"})', labelling=True) == ["x"]
    assert signal_operands("1 < x", labelling=True) == ["x"]


SHIPPED = shipped_expressions(RULES, DASHBOARDS)


@pytest.mark.parametrize("tsdb_name", ["prometheus", "vm"])
def test_every_shipped_expression_parses_and_returns_labelled_series(stack, tsdb_name):
    assert len(SHIPPED) > 60, len(SHIPPED)
    check_expressions(stack[tsdb_name], SHIPPED, GRAFANA_VARIABLES)


def test_failed_load_alert_fires_and_reaches_alertmanager_webhook(stack):
    """FerryModelLoadFailed (no `for`) fires in Prometheus and in vmalert (the fixture saw
    both write it as an ALERTS series), and reaches the webhook through Alertmanager with
    its labels and annotations, at the receiver the shipped routing picks for warnings.
    Each evaluator's own alerts API is asked too, since the webhook would be satisfied by
    either."""
    hook = stack["hook"]
    for evaluator, path in ((stack["prometheus"], "/api/v1/alerts"), (stack["vmalert"], "/api/v1/alerts")):
        def firing():
            return [a for a in evaluator.get(path)["alerts"] if a["labels"].get("alertname") == "FerryModelLoadFailed"
                    and a["labels"].get("model") == BROKEN_MODEL and a["state"] == "firing"]
        fh.wait_until(firing, WAIT_S, f"FerryModelLoadFailed firing in {evaluator.name}", on_timeout=evaluator.tail)

    def delivered():
        return [a for a in hook.alerts() if a["labels"].get("alertname") == "FerryModelLoadFailed"
                and a["labels"].get("model") == BROKEN_MODEL and a["status"] == "firing"]

    got = fh.wait_until(delivered, WAIT_S, "FerryModelLoadFailed at the webhook",
                        on_timeout=lambda: json.dumps(hook.notifications)[:2000])
    labels = got[0]["labels"]
    assert labels["severity"] == "warning" and labels["job"] == JOB, labels
    # The shipped routing sends warnings to the chat receiver.
    assert {a["path"] for a in got} == {"/ferry-chat"}, [a["path"] for a in got]
    assert got[0]["annotations"]["summary"] == f"loading {BROKEN_MODEL} failed on {stack['server'].metrics_url}", got[0]
    assert "docs/observability.md#ferrymodelloadfailed" in got[0]["annotations"]["runbook"], got[0]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_json_has_what_grafana_import_needs(path):
    check_dashboard_importable(path, {"model", "version"}, min_panels=20)
