"""ferry's own alerting (`ferry serve --alert-rules`), against a real Alertmanager.

ferry evaluates its rules over its own metrics and posts firing and resolved alerts to
Alertmanager's v2 API (routed by the shipped deploy/alertmanager/alertmanager.yml with
its waits shortened, to the test's webhook receiver) and, directly, to a webhook.
"""

from __future__ import annotations

import subprocess
import time

import pytest

import ferry_helpers as fh
from monitoring_helpers import Daemon, WebhookReceiver, start_alertmanager

RULES = """\
rules:
- alert: FerryTestModelFailing
  metric: ferry_inference_failures_total
  function: increase
  window: 2s
  by: [model]
  condition: "> 2"
  labels: {severity: critical}
  annotations: {summary: "{{ $labels.model }} failed {{ $value }} requests in 2 s"}
"""


@pytest.fixture
def alert_stack(ferry_binary, model_repo, tmp_path):
    hook = WebhookReceiver()
    daemons: list[Daemon] = []
    server = None
    try:
        am_port, = fh.free_ports(1)
        start_alertmanager(tmp_path, am_port, hook, daemons)
        (tmp_path / "rules.yaml").write_text(RULES)
        server = fh.FerryServer(ferry_binary, [model_repo], [
            "--alert-rules", str(tmp_path / "rules.yaml"), "--alertmanager-url", f"http://127.0.0.1:{am_port}",
            "--alert-webhook-url", f"{hook.url}/direct", "--alert-interval-ms", "200"], tmp_path / "ferry.log").start()
        yield server, hook
    finally:
        if server is not None and server.is_running():
            server.stop_and_check()
        for d in daemons:
            d.stop()
        hook.close()


def fail_requests(server: fh.FerryServer, n: int) -> None:
    for _ in range(n):
        resp = server.post("/v2/models/add_sub/infer", json={"inputs": [
            {"name": "INPUT0", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3]}]})
        assert resp.status_code == 400, resp.text


def test_a_rule_fires_and_resolves_through_alertmanager_and_the_webhook(alert_stack):
    server, hook = alert_stack
    # Counters present at the loop's first evaluation are its baseline, not an increase:
    # let it run once (every 200 ms) before the first failure. The rule fires at the third
    # failure: with "> 0" an evaluation between two requests (a loaded machine) fired with
    # a value of 1 or 2, and the summary said so.
    time.sleep(1.0)
    fail_requests(server, 3)

    def delivered(path: str, status: str):
        return [a for a in hook.alerts() if a["path"] == path and a["status"] == status
                and a["labels"].get("alertname") == "FerryTestModelFailing"]

    # Alertmanager routes severity=critical to the pager receiver.
    fired = fh.wait_until(lambda: delivered("/ferry-pager", "firing"), 30, "the alert through Alertmanager")
    assert fired[0]["labels"]["model"] == "add_sub"
    assert fired[0]["annotations"]["summary"] == "add_sub failed 3 requests in 2 s"
    direct = fh.wait_until(lambda: delivered("/direct", "firing"), 10, "the alert on the direct webhook")
    assert direct[0]["fingerprint"] and direct[0]["labels"]["severity"] == "critical"
    assert fired[0]["fingerprint"], fired[0]

    # No more failures: the 2 s window empties and the alert resolves, on both paths.
    fh.wait_until(lambda: delivered("/direct", "resolved"), 20, "the resolution on the direct webhook")
    fh.wait_until(lambda: delivered("/ferry-pager", "resolved"), 30, "the resolution through Alertmanager")
    # One message per transition on the direct webhook: no repeats while it fired.
    time.sleep(1.0)
    direct_msgs = [n for n in hook.notifications if n["path"] == "/direct"]
    assert [n["status"] for n in direct_msgs] == ["firing", "resolved"], direct_msgs
    assert server.is_running()
    # What was delivered is counted: two webhook messages, Alertmanager POSTs, no failure.
    counts = notifications(server)
    assert counts[("webhook", "sent")] == 2 and counts[("alertmanager", "sent")] >= 2, counts
    assert counts[("webhook", "failed")] == counts[("alertmanager", "failed")] == 0, counts


def notifications(server: fh.FerryServer) -> dict[tuple[str, str], float]:
    """ferry_alert_notifications_total by (target, result), from the metrics endpoint."""
    samples = fh.parse_metrics(fh.http_request("GET", f"http://{server.metrics_url}/metrics").text)
    return {(labels["target"], labels["result"]): value for name, labels, value in samples
            if name == "ferry_alert_notifications_total"}


def test_unreachable_targets_are_retried_counted_and_serving_goes_on(ferry_binary, model_repo, tmp_path):
    """Alertmanager and the webhook both refuse connections: the firing alert is retried
    with back-off and every failed POST counted, while requests are answered as usual."""
    closed_am, closed_hook = fh.free_ports(2)  # nothing listens on them
    (tmp_path / "rules.yaml").write_text(RULES)
    server = fh.FerryServer(ferry_binary, [model_repo], [
        "--alert-rules", str(tmp_path / "rules.yaml"), "--alertmanager-url", f"http://127.0.0.1:{closed_am}",
        "--alert-webhook-url", f"http://127.0.0.1:{closed_hook}/hook", "--alert-interval-ms", "200"],
        tmp_path / "ferry.log").start()
    try:
        assert notifications(server) == {("alertmanager", "sent"): 0, ("alertmanager", "failed"): 0,
                                         ("webhook", "sent"): 0, ("webhook", "failed"): 0,
                                         ("webhook", "dropped"): 0}
        time.sleep(1.0)
        fail_requests(server, 3)
        counts = fh.wait_until(lambda: (c := notifications(server))[("alertmanager", "failed")] >= 2 and
                               c[("webhook", "failed")] >= 2 and c, 30, "failed deliveries to be counted (retried)")
        assert counts[("alertmanager", "sent")] == counts[("webhook", "sent")] == 0, counts
        ok = server.post("/v2/models/add_sub/infer", json={"inputs": [
            {"name": "INPUT0", "datatype": "FP32", "shape": [1, 16], "data": [1.0] * 16},
            {"name": "INPUT1", "datatype": "FP32", "shape": [1, 16], "data": [2.0] * 16}]})
        assert ok.status_code == 200, ok.text
        assert "alert notification failed; retrying with back-off" in server.log_path.read_text()
    finally:
        server.stop_and_check()


def test_bad_rules_are_refused_naming_the_field_and_line(ferry_binary, model_repo, tmp_path):
    (tmp_path / "rules.yaml").write_text("rules:\n- alert: A\n  metric: m\n  condition: 'above 3'\n")
    proc = subprocess.run([str(ferry_binary), "serve", "--model-repository", str(model_repo), "--alert-rules",
                           str(tmp_path / "rules.yaml"), "--alert-webhook-url", "http://127.0.0.1:9/x"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert f"{tmp_path / 'rules.yaml'}:4:14: rules[0].condition: 'above 3' is not a condition" in proc.stderr


def test_the_engine_alerts_on_its_own_metrics(engines, model_repo, tmp_path):
    """`ferry engine --alert-rules`: a replica killed with SIGKILL drops the ready count
    under the rule's threshold; the alert fires to the webhook, then resolves once the
    supervisor has replaced the replica."""
    import os
    import signal

    from engine_helpers import write_spec

    hook = WebhookReceiver()
    try:
        (tmp_path / "rules.yaml").write_text("""\
rules:
- alert: FerryEngineReplicaMissing
  metric: ferry_engine_replicas
  match: {state: ready}
  by: [deployment, revision]
  condition: "< 2"
  annotations: {summary: "{{ $labels.deployment }}/{{ $labels.revision }}: {{ $value }} of 2 replicas ready"}
""")
        spec = write_spec(tmp_path / "spec.yaml", f"""\
deployments:
- name: arith
  revisions:
  - name: v1
    models: [{model_repo / 'add_sub'}]
    serve: {{http-threads: 1, intra-op-threads: 1}}
  replicas: 2
  restart: {{initial_backoff: 1s}}
""")
        e = engines(spec, tmp_path / "state", extra_args=[
            "--alert-rules", str(tmp_path / "rules.yaml"), "--alert-webhook-url", f"{hook.url}/engine",
            "--alert-interval-ms", "100"])
        replicas = e.wait_ready_replicas("arith", 2)
        # While the replicas start, fewer than 2 are ready: that fires and resolves too.
        fh.wait_until(lambda: len([a for a in hook.alerts() if a["status"] == "firing"]) ==
                      len([a for a in hook.alerts() if a["status"] == "resolved"]), 10, "the start-up alert to resolve")
        time.sleep(0.5)
        hook.notifications.clear()
        time.sleep(0.5)
        assert not hook.notifications, "nothing fires while both replicas are ready"
        os.kill(replicas[0]["pid"], signal.SIGKILL)
        fired = fh.wait_until(lambda: [a for a in hook.alerts() if a["status"] == "firing"], 20, "the alert")
        assert fired[0]["labels"] == {"alertname": "FerryEngineReplicaMissing", "deployment": "arith",
                                      "revision": "v1"}, fired[0]
        assert fired[0]["annotations"]["summary"] == "arith/v1: 1 of 2 replicas ready"
        fh.wait_until(lambda: [a for a in hook.alerts() if a["status"] == "resolved"], 30, "the resolution",
                      on_timeout=lambda: e.describe(30))
    finally:
        hook.close()
