"""Model monitoring's metrics against the real systems: a `ferry serve` whose
mlp_classifier has a reference profile (built by `ferry profile build`), drift on
(windows of 200 rows), outlier scores and a payload log to a file is sent rows with one
feature shifted, and whose binary classifier `obs_binary` has ground-truth feedback (with
the label-free CBPE estimate) is sent rows and then their true labels,
while a real Prometheus and a real VictoriaMetrics single node scrape it every second;
Prometheus and vmalert evaluate the shipped monitoring rules
(deploy/prometheus/ferry-monitoring-rules.yml) and alert to a real Alertmanager with
the shipped routing.

The tests check that
  (a) every metric of docs/metrics.md's "Model monitoring", "Ground-truth feedback and
      quality" and "Drift" tables arrives in both TSDBs with the documented labels (and type, in Prometheus's metadata);
  (b) every PromQL expression of the monitoring rules and of the models dashboard
      (deploy/grafana/ferry-models.json) parses and returns series with the labels it
      shows, in both TSDBs (promql_checks.check_expressions);
  (c) FerryModelDrift fires for the drifted model in Prometheus and in vmalert, and
      reaches the ticket receiver through Alertmanager.
Nothing passes or fails on timing: waits poll for a state with a generous deadline.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import ferry_helpers as fh
from monitoring_helpers import Daemon, WebhookReceiver, start_alertmanager, start_tsdbs
from promql_checks import (DEPLOY, GRAFANA_RANGES, check_dashboard_importable, check_expressions, documented_metrics,
                           series_names, shipped_expressions)

RULES = [DEPLOY / "prometheus" / "ferry-monitoring-rules.yml"]
DASHBOARDS = [DEPLOY / "grafana" / "ferry-models.json"]
DOCUMENTED = {**documented_metrics("## Model monitoring", min_rows=7), **documented_metrics("## Drift", min_rows=9),
              **documented_metrics("## Ground-truth feedback and quality", min_rows=5)}
SHIPPED = shipped_expressions(RULES, DASHBOARDS)
VARIABLES = {**GRAFANA_RANGES, "$job": ".*", "$model": ".*", "$version": ".*"}
JOB = "ferry"
MODEL = "mlp_classifier"
WINDOW = 200
WAIT_S = 90.0


def monitored_repo(factory, work: Path) -> Path:
    repo = factory.new_repo("monitoring-repo")
    data = work / "train.npy"
    np.save(data, np.random.default_rng(11).standard_normal((4000, 4)).astype(np.float32))
    proc = subprocess.run([str(fh.ferry_bin()), "profile", "build", "--model-repository", str(repo),
                           "--model", MODEL, "--data", str(data)],
                          capture_output=True, text=True, timeout=120, env=fh.child_env())
    assert proc.returncode == 0, proc.stderr[-2000:]
    # eval_interval 0: every window is evaluated (the six windows arrive within a second,
    # which the default 1 s rate limit would judge as two).
    settings = {"monitoring.drift.enabled": "true", "monitoring.drift.window": str(WINDOW),
                "monitoring.drift.buckets": "1", "monitoring.drift.eval_interval": "0",
                "monitoring.payload_log.sink": f"file:{work / 'payload.jsonl'}",
                "monitoring.outliers.enabled": "true"}
    with open(repo / MODEL / "config.pbtxt", "a") as f:
        for k, v in settings.items():
            f.write(f'parameters {{ key: "{k}" value: {{ string_value: "{v}" }} }}\n')
    return repo


BINARY = "obs_binary"


def add_binary_classifier(repo: Path) -> None:
    """obs_binary: logistic regression on two features, answering `probabilities`
    [batch, 2] (1 - p, p), with feedback monitoring on."""
    w = numpy_helper.from_array(np.array([[1.5], [-2.0]], np.float32), "W")
    b = numpy_helper.from_array(np.array([0.25], np.float32), "B")
    one = numpy_helper.from_array(np.array([1.0], np.float32), "One")
    nodes = [helper.make_node("MatMul", ["x", "W"], ["z0"]), helper.make_node("Add", ["z0", "B"], ["z"]),
             helper.make_node("Sigmoid", ["z"], ["p"]), helper.make_node("Sub", ["One", "p"], ["q"]),
             helper.make_node("Concat", ["q", "p"], ["probabilities"], axis=1)]
    graph = helper.make_graph(nodes, BINARY, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2])],
                              [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 2])],
                              [w, b, one])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    (repo / BINARY / "1").mkdir(parents=True)
    onnx.save(model, str(repo / BINARY / "1" / "model.onnx"))
    with open(repo / BINARY / "config.pbtxt", "w") as f:
        for k, v in (("monitoring.feedback.enabled", "true"), ("monitoring.feedback.output", "probabilities")):
            f.write(f'parameters {{ key: "{k}" value: {{ string_value: "{v}" }} }}\n')


def send_with_feedback(server, rows: int) -> None:
    """Rows of obs_binary, then their true labels (drawn from the model's own
    probabilities, so the estimate and the truth agree), and one unknown id."""
    rng = np.random.default_rng(13)
    items = []
    for _ in range(rows // 20):
        x = rng.standard_normal((20, 2)).astype(np.float32)
        resp = server.post(f"/v2/models/{BINARY}/infer", json={"inputs": [
            {"name": "x", "datatype": "FP32", "shape": [20, 2], "data": x.ravel().tolist()}]})
        assert resp.status_code == 200, resp.text[:300]
        answer = resp.json()
        p = np.array(answer["outputs"][0]["data"], np.float64).reshape(20, 2)[:, 1]
        items.append({"id": answer["id"], "target": (rng.random(20) < p).astype(int).tolist()})

    def joined():  # a prediction is stored just after its answer: resend the ones not there yet
        resp = server.post(f"/v2/models/{BINARY}/feedback", json={"feedback": items})
        body = resp.json()
        assert {r["result"] for r in body["rejected"]} <= {"unknown"}, body
        items[:] = [items[r["index"]] for r in body["rejected"]]
        return not items
    fh.wait_until(joined, WAIT_S, "the feedback to join its predictions")
    resp = server.post(f"/v2/models/{BINARY}/feedback", json={"feedback": [{"id": "no-such-request", "target": 1}]})
    assert resp.status_code == 400 and resp.json()["unknown"] == 1, resp.text


def send_drifted(server, rows: int) -> None:
    """Rows like the profile's, with feature 0 moved by three standard deviations."""
    x = np.random.default_rng(12).standard_normal((rows, 4)).astype(np.float32)
    x[:, 0] += 3.0
    for i in range(0, rows, 20):
        chunk = x[i:i + 20]
        resp = server.post(f"/v2/models/{MODEL}/infer", json={"inputs": [
            {"name": "input", "datatype": "FP32", "shape": list(chunk.shape), "data": chunk.ravel().tolist()}]})
        assert resp.status_code == 200, resp.text[:300]


@pytest.fixture(scope="module")
def stack(ferry_module_factory, tmp_path_factory):
    work = tmp_path_factory.mktemp("observability-monitoring")
    repo = monitored_repo(ferry_module_factory, work)
    add_binary_classifier(repo)
    server = ferry_module_factory.start(repos=repo, args=["--model-control-mode", "explicit", "--load-model", MODEL,
                                                          "--load-model", BINARY, "--intra-op-threads", "1"],
                                        name="monitored")
    hook = WebhookReceiver()
    daemons: list[Daemon] = []
    try:
        am_port, = fh.free_ports(1)
        start_alertmanager(work, am_port, hook, daemons)
        scrape = {"job_name": JOB, "static_configs": [{"targets": [server.metrics_url]}]}
        prom, vm, vmalert = start_tsdbs(work, [scrape], RULES, am_port, daemons)
        for tsdb in (prom, vm):
            fh.wait_until(lambda: tsdb.query(f'up{{job="{JOB}"}} == 1'), WAIT_S, f"{tsdb.name} to scrape ferry",
                          on_timeout=tsdb.tail)
        send_drifted(server, 6 * WINDOW)
        send_with_feedback(server, 400)
        evaluations = fh.wait_until(
            lambda: (lambda r: r if r["evaluations"] >= 6 else None)(
                server.get(f"/v2/models/{MODEL}/monitoring").json()["versions"][0]["drift"]),
            WAIT_S, "six drift windows evaluated")["evaluations"]
        for tsdb in (prom, vm):
            fh.wait_until(lambda: tsdb.query(f'ferry_drift_evaluations_total{{model="{MODEL}"}} >= {evaluations}'),
                          WAIT_S, f"{tsdb.name} to hold {evaluations} drift evaluations", on_timeout=tsdb.tail)
            fh.wait_until(lambda: tsdb.query("model_version:ferry_drift_alarms:ratio_increase30m"), WAIT_S,
                          f"the rules to record into {tsdb.name}", on_timeout=tsdb.tail)
            fh.wait_until(lambda: tsdb.query(f'ferry_model_quality_estimated{{model="{BINARY}", metric="accuracy"}}')
                          and tsdb.query(f'ferry_feedback_total{{model="{BINARY}", result="unknown"}} >= 1'),
                          WAIT_S, f"{tsdb.name} to hold the quality estimate and the feedback", on_timeout=tsdb.tail)
            fh.wait_until(lambda: tsdb.query(f'ALERTS{{alertname="FerryModelDrift", alertstate="firing", '
                                             f'model="{MODEL}"}}'),
                          WAIT_S, f"FerryModelDrift to fire into {tsdb.name}", on_timeout=tsdb.tail)
        yield {"server": server, "prometheus": prom, "vm": vm, "vmalert": vmalert, "hook": hook}
    finally:
        for d in reversed(daemons):
            d.stop()
        hook.close()


@pytest.mark.parametrize("metric", sorted(DOCUMENTED))
def test_documented_monitoring_metric_arrives_in_both_tsdbs(stack, metric):
    kind, labels = DOCUMENTED[metric]
    meta = stack["prometheus"].get("/api/v1/metadata", metric=metric).get(metric)
    assert meta and {m["type"] for m in meta} == {kind}, f"{metric}: type {meta}, documented {kind}"
    for name, extra in series_names(kind, metric):
        for tsdb in (stack["prometheus"], stack["vm"]):
            found = tsdb.series(f'{name}{{job="{JOB}"}}')
            assert found, f"{name}: no series in {tsdb.name}"
            for s in found:
                assert set(s) == labels | extra | {"__name__", "job", "instance"}, \
                    f"{name} in {tsdb.name}: labels {sorted(s)}, documented {sorted(labels | extra)}"
                if "model" in labels:
                    assert s["model"] in (MODEL, BINARY), s


@pytest.mark.parametrize("tsdb_name", ["prometheus", "vm"])
def test_every_monitoring_expression_parses_and_returns_labelled_series(stack, tsdb_name):
    assert len(SHIPPED) > 15, len(SHIPPED)
    check_expressions(stack[tsdb_name], SHIPPED, VARIABLES)


def test_drift_alert_fires_for_the_drifted_model_and_reaches_the_ticket_receiver(stack):
    for evaluator in (stack["prometheus"], stack["vmalert"]):
        def firing():
            return [a for a in evaluator.get("/api/v1/alerts")["alerts"] if a["state"] == "firing"
                    and a["labels"].get("alertname") == "FerryModelDrift"]
        got = fh.wait_until(firing, WAIT_S, f"FerryModelDrift in {evaluator.name}", on_timeout=evaluator.tail)
        assert {(a["labels"]["model"], a["labels"]["version"]) for a in got} == {(MODEL, "1")}, got
        assert got[0]["labels"]["severity"] == "ticket"
        # Every window drifted: 100% of them.
        assert got[0]["annotations"]["summary"] == f"{MODEL} version 1: 100% of its drift windows drifted in 30 minutes"
    hook = stack["hook"]
    delivered = fh.wait_until(lambda: [a for a in hook.alerts() if a["status"] == "firing"
                                       and a["labels"].get("alertname") == "FerryModelDrift"],
                              WAIT_S, "FerryModelDrift at the webhook",
                              on_timeout=lambda: json.dumps(hook.notifications)[:2000])
    assert {a["path"] for a in delivered} == {"/ferry-tickets"}, [a["path"] for a in delivered]


def test_models_dashboard_json_has_what_grafana_import_needs():
    check_dashboard_importable(DASHBOARDS[0], {"job", "model", "version"}, min_panels=12)
