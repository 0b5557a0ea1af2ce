"""The observability stack over `ferry engine`, against the real systems: an engine with
three deployments (one under load through both gateways with a small max_in_flight, one
that scales from zero, one whose model cannot load so that it crash-loops) is found
through its HTTP service discovery (GET /v1/targets) and scraped every second by a real
Prometheus and a real VictoriaMetrics single node, as two jobs: `ferry-engine` (the
engine's metrics port) and `ferry` (the replicas). Prometheus and vmalert evaluate the
shipped engine rules (deploy/prometheus/ferry-engine-rules.yml).

The tests check that
  (a) every metric of docs/metrics.md's `ferry engine` table arrives in both TSDBs with
      the documented labels (and type, in Prometheus's metadata), and the replicas'
      series arrive labelled by deployment, revision and replica;
  (b) every PromQL expression of the engine rules and of the engine dashboard
      (deploy/grafana/ferry-engine.json) parses and returns series with the labels it
      shows, in both TSDBs (promql_checks.check_expressions);
  (c) FerryEngineRevisionCrashLooping fires in Prometheus and in vmalert for the broken
      deployment, and for nothing else.
Nothing passes or fails on timing: waits poll for a state with a generous deadline.
"""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

import ferry_helpers as fh
from engine_helpers import FerryEngine, write_spec
from monitoring_helpers import Daemon, WebhookReceiver, start_alertmanager, start_tsdbs
from promql_checks import (DEPLOY, GRAFANA_RANGES, check_dashboard_importable, check_expressions, documented_metrics,
                           series_names, shipped_expressions)

RULES = [DEPLOY / "prometheus" / "ferry-engine-rules.yml"]
DASHBOARDS = [DEPLOY / "grafana" / "ferry-engine.json"]
DOCUMENTED = documented_metrics("engine")
SHIPPED = shipped_expressions(RULES, DASHBOARDS)
VARIABLES = {**GRAFANA_RANGES, "$job": ".*", "$deployment": ".*"}
ENGINE_JOB, REPLICA_JOB = "ferry-engine", "ferry"
WAIT_S = 90.0


def scrape_configs(targets_url: str, refresh: bool = True) -> list[dict]:
    """The two jobs docs/observability.md tells users to configure: one discovery, kept
    apart by the ferry_role label the engine gives each target. VictoriaMetrics 1.79 has
    no per-config refresh_interval (its -promscrape.httpSDCheckInterval flag sets it)."""
    def job(name: str, role: str) -> dict:
        sd = {"url": targets_url, **({"refresh_interval": "1s"} if refresh else {})}
        return {"job_name": name, "http_sd_configs": [sd],
                "relabel_configs": [{"source_labels": ["ferry_role"], "regex": role, "action": "keep"}]}
    return [job(ENGINE_JOB, "engine"), job(REPLICA_JOB, "replica")]


def add_sub_inputs(module, batch: int = 1):
    a = np.arange(16 * batch, dtype=np.float32).reshape(batch, 16)
    inputs = [module.InferInput("INPUT0", list(a.shape), "FP32"), module.InferInput("INPUT1", list(a.shape), "FP32")]
    inputs[0].set_data_from_numpy(a)
    inputs[1].set_data_from_numpy(a)
    return inputs


def drive_load(engine: FerryEngine) -> dict[str, int]:
    """Eight closed-loop clients (REST and gRPC) against `arith`, whose gateway admits two
    requests at a time, so some are refused (503 / RESOURCE_EXHAUSTED); a few bad requests;
    and a first request to `lazy`, which has no replica until then (a cold start)."""
    counts = {"ok": 0, "refused": 0, "other": 0}
    lock = threading.Lock()

    def worker(i: int) -> None:
        grpc = i % 2 == 1
        client = (grpcclient.InferenceServerClient(engine.grpc_url) if grpc
                  else httpclient.InferenceServerClient(engine.url))
        module = grpcclient if grpc else httpclient
        for _ in range(40):
            try:
                client.infer("add_sub", add_sub_inputs(module))
                key = "ok"
            except Exception as exc:  # noqa: BLE001 - the refusals are the point
                text = str(exc)
                key = "refused" if ("503" in text or "RESOURCE_EXHAUSTED" in text or "max_in_flight" in text) else "other"
            with lock:
                counts[key] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bad = engine.post("/v2/models/add_sub/infer", json={"inputs": [{"name": "INPUT0", "shape": [1, 3],
                                                                     "datatype": "FP32", "data": [1, 2, 3]}]})
    assert bad.status_code == 400, bad.text
    resp = engine.post("/v2/models/lazy_add_sub/infer", json={"inputs": [
        {"name": n, "shape": [1, 16], "datatype": "FP32", "data": [1.0] * 16} for n in ("INPUT0", "INPUT1")]})
    assert resp.status_code == 200, resp.text
    return counts


@pytest.fixture(scope="module")
def stack(ferry_binary, model_repo, tmp_path_factory):
    work = tmp_path_factory.mktemp("observability-engine")
    broken = work / "broken_repo" / "broken"
    (broken / "1").mkdir(parents=True)
    (broken / "config.pbtxt").write_text(
        (model_repo / "add_sub" / "config.pbtxt").read_text().replace('name: "add_sub"', 'name: "broken"'))
    (broken / "1" / "model.onnx").write_bytes(b"this is not an ONNX model")
    lazy = fh.copy_repo(model_repo, work / "lazy_repo")
    (lazy / "add_sub").rename(lazy / "lazy_add_sub")
    cfg = lazy / "lazy_add_sub" / "config.pbtxt"
    cfg.write_text(cfg.read_text().replace('name: "add_sub"', 'name: "lazy_add_sub"'))
    spec = write_spec(work / "spec.yaml", f"""\
deployments:
- name: arith
  revisions:
  - name: v1
    models: [{model_repo / 'add_sub'}]
    serve: {{http-threads: 1, intra-op-threads: 1}}
  replicas: 2
  gateway: {{max_in_flight: 2}}
- name: lazy
  revisions:
  - name: v1
    models: [{lazy / 'lazy_add_sub'}]
    serve: {{http-threads: 1, intra-op-threads: 1}}
  replicas: {{min: 0, max: 1, initial: 0}}
- name: bad
  revisions:
  - name: v1
    models: [{broken}]
    serve: {{http-threads: 1}}
  health: {{ready_timeout: 5s}}
  restart: {{initial_backoff: 100ms, max_backoff: 400ms, crash_loop_failures: 2}}
""")
    engine = FerryEngine(ferry_binary, work / "state", spec, work / "engine.log").start(wait="live")
    daemons: list[Daemon] = []
    hook = WebhookReceiver()
    try:
        engine.wait_ready_replicas("arith", 2)
        targets_url = f"{engine.admin_url}/v1/targets"
        am_port, = fh.free_ports(1)
        start_alertmanager(work, am_port, hook, daemons)
        prom, vm, vmalert = start_tsdbs(work, scrape_configs(targets_url), RULES, am_port, daemons,
                                        vm_scrape_configs=scrape_configs(targets_url, refresh=False),
                                        vm_flags=("-promscrape.httpSDCheckInterval=1s",))
        for tsdb in (prom, vm):
            fh.wait_until(lambda: tsdb.query(f'up{{job="{ENGINE_JOB}"}} == 1'), WAIT_S,
                          f"{tsdb.name} to scrape the engine", on_timeout=tsdb.tail)
            fh.wait_until(lambda: len(tsdb.query(f'up{{job="{REPLICA_JOB}", deployment="arith"}} == 1')) == 2,
                          WAIT_S, f"{tsdb.name} to scrape both arith replicas", on_timeout=tsdb.tail)
        sent = drive_load(engine)
        assert sent["ok"] > 0 and sent["other"] == 0, sent

        # Both TSDBs hold the engine's final counts and the rules have recorded from them.
        text = fh.http_request("GET", f"http://{engine.metrics_url}/metrics").text
        want = fh.metric_sum(fh.parse_metrics(text), "ferry_engine_requests_total")

        def caught_up(tsdb):
            r = tsdb.query(f'sum(ferry_engine_requests_total{{job="{ENGINE_JOB}"}})')
            return r and float(r[0]["value"][1]) >= want

        for tsdb in (prom, vm):
            fh.wait_until(lambda: caught_up(tsdb), WAIT_S, f"{tsdb.name} to hold {want:.0f} requests", on_timeout=tsdb.tail)
            fh.wait_until(lambda: tsdb.query("deployment:ferry_engine_server_errors:ratio_rate5m"), WAIT_S,
                          f"the rules to record into {tsdb.name}", on_timeout=tsdb.tail)
            fh.wait_until(lambda: tsdb.query('ALERTS{alertname="FerryEngineRevisionCrashLooping", '
                                             'alertstate="firing", deployment="bad"}'),
                          WAIT_S, f"FerryEngineRevisionCrashLooping to fire into {tsdb.name}", on_timeout=tsdb.tail)
        yield {"engine": engine, "prometheus": prom, "vm": vm, "vmalert": vmalert, "sent": sent, "hook": hook}
    finally:
        for d in reversed(daemons):
            d.stop()
        hook.close()
        if engine.is_running():
            engine.stop_and_check(timeout=40)


def check_label_sets(tsdb: Daemon, name: str, labels: set[str]) -> None:
    found = tsdb.series(f'{name}{{job="{ENGINE_JOB}"}}')
    assert found, f"{name}: no series in {tsdb.name}"
    for s in found:
        # The engine's target carries one discovery label, ferry_role.
        assert set(s) == labels | {"__name__", "job", "instance", "ferry_role"}, \
            f"{name} in {tsdb.name}: labels {sorted(s)}, documented {sorted(labels)}"


@pytest.mark.parametrize("metric", sorted(DOCUMENTED))
def test_documented_engine_metric_arrives_in_both_tsdbs(stack, metric):
    kind, labels = DOCUMENTED[metric]
    meta = stack["prometheus"].get("/api/v1/metadata", metric=metric).get(metric)
    assert meta and {m["type"] for m in meta} == {kind}, f"{metric}: type {meta}, documented {kind}"
    for name, extra in series_names(kind, metric):
        for tsdb in (stack["prometheus"], stack["vm"]):
            check_label_sets(tsdb, name, labels | extra)
        as_set = lambda tsdb: {tuple(sorted(s.items())) for s in tsdb.series(f'{name}{{job="{ENGINE_JOB}"}}')}
        assert as_set(stack["vm"]) == as_set(stack["prometheus"]), f"{name}: the TSDBs hold different series"


def test_replica_series_carry_their_deployment(stack):
    for tsdb in (stack["prometheus"], stack["vm"]):
        got = tsdb.query(f'sum by (deployment, revision, replica) (ferry_inference_requests_total{{job="{REPLICA_JOB}", '
                         f'deployment="arith", model="add_sub"}})')
        assert len(got) == 2 and {s["metric"]["revision"] for s in got} == {"v1"}, (tsdb.name, got)
        total = sum(float(s["value"][1]) for s in got)
        assert total >= stack["sent"]["ok"], (tsdb.name, total, stack["sent"])


def test_load_left_its_marks(stack):
    """The load reached the counters the rules and dashboard read: refusals for
    max_in_flight, a cold start of `lazy`, a scale event, restarts of `bad`."""
    prom = stack["prometheus"]
    assert stack["sent"]["refused"] > 0, stack["sent"]
    q = lambda e: float(prom.query(e)[0]["value"][1])
    assert q('sum(ferry_engine_rejected_total{deployment="arith", reason="max_in_flight"})') == stack["sent"]["refused"]
    assert q('sum(ferry_engine_cold_start_wait_seconds_count{deployment="lazy"})') >= 1
    assert q('sum(ferry_engine_scale_events_total{deployment="lazy"})') >= 1
    assert q('sum(ferry_engine_replica_restarts_total{deployment="bad"})') >= 2


@pytest.mark.parametrize("tsdb_name", ["prometheus", "vm"])
def test_every_engine_expression_parses_and_returns_labelled_series(stack, tsdb_name):
    assert len(SHIPPED) > 25, len(SHIPPED)
    check_expressions(stack[tsdb_name], SHIPPED, VARIABLES)


def test_crash_loop_alert_fires_for_the_broken_deployment_only(stack):
    for evaluator in (stack["prometheus"], stack["vmalert"]):
        def firing():
            return [a for a in evaluator.get("/api/v1/alerts")["alerts"] if a["state"] == "firing"
                    and a["labels"].get("alertname") == "FerryEngineRevisionCrashLooping"]
        got = fh.wait_until(firing, WAIT_S, f"FerryEngineRevisionCrashLooping in {evaluator.name}",
                            on_timeout=evaluator.tail)
        assert {(a["labels"]["deployment"], a["labels"]["revision"]) for a in got} == {("bad", "v1")}, got
        assert got[0]["labels"]["severity"] == "critical"
        assert got[0]["annotations"]["summary"] == "revision v1 of bad is crash-looping"
    # Through Alertmanager's shipped routing, critical alerts reach the pager receiver.
    hook = stack["hook"]
    delivered = fh.wait_until(lambda: [a for a in hook.alerts() if a["status"] == "firing"
                                       and a["labels"].get("alertname") == "FerryEngineRevisionCrashLooping"],
                              WAIT_S, "FerryEngineRevisionCrashLooping at the webhook",
                              on_timeout=lambda: json.dumps(hook.notifications)[:2000])
    assert {a["path"] for a in delivered} == {"/ferry-pager"}, [a["path"] for a in delivered]


def test_engine_dashboard_json_has_what_grafana_import_needs():
    check_dashboard_importable(DASHBOARDS[0], {"job", "deployment"}, min_panels=15)
