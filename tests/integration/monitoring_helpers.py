"""Monitoring daemons for the integration tests: Prometheus, VictoriaMetrics and
Alertmanager started on 127.0.0.1 (Debian packages), a webhook receiver that keeps
what Alertmanager (or ferry's own alerting) posts to it, and the OpenTelemetry
Collector that tools/otelcol/install.sh builds (OTLP/HTTP in, a JSON-lines file out)."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

import ferry_helpers as fh

WAIT_S = 60.0
AM_CONFIG = fh.REPO_ROOT / "deploy" / "alertmanager" / "alertmanager.yml"


def tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        pytest.fail(f"{name} not found on PATH: scripts/setup.sh installs it (Debian packages "
                    "prometheus, victoria-metrics, prometheus-alertmanager)", pytrace=False)
    return path


class Daemon:
    """One monitoring process on 127.0.0.1 with its output in a log file."""

    def __init__(self, name: str, argv: list[str], base: str, ready_path: str, log: Path,
                 started: list["Daemon"]):
        self.name, self.argv, self.base, self.ready_path, self.log = name, argv, base, ready_path, log
        self.proc: subprocess.Popen | None = None
        started.append(self)  # before the start, so that a start that fails is stopped too

    def start(self) -> "Daemon":
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(fh._orphan_guard() + self.argv, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT, cwd=str(self.log.parent))

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                return fh.http_request("GET", self.base + self.ready_path, timeout=1).status_code == 200
            except requests.RequestException:
                return False

        fh.wait_until(ready, WAIT_S, f"{self.name} to be ready", on_timeout=self.tail)
        return self

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def get(self, path: str, **params) -> dict:
        resp = fh.http_request("GET", self.base + path, params=params)
        assert resp.status_code == 200, f"{self.name} GET {path} {params}: {resp.status_code} {resp.text[:500]}"
        doc = resp.json()
        assert doc.get("status") == "success", f"{self.name} GET {path} {params}: {doc}"
        return doc["data"]

    def query(self, expr: str) -> list[dict]:
        """An instant query, now; a parse error fails with the TSDB's message."""
        resp = fh.http_request("GET", self.base + "/api/v1/query", params={"query": expr})
        assert resp.status_code == 200, f"{self.name} cannot evaluate\n{expr}\n{resp.status_code}: {resp.text[:500]}"
        return resp.json()["data"]["result"]

    def series(self, match: str) -> list[dict]:
        now = time.time()
        return self.get("/api/v1/series", **{"match[]": match, "start": str(now - 3600), "end": str(now + 60)})


class WebhookReceiver:
    """Alertmanager's webhook receiver: keeps every notification it is sent, with the
    path it was posted to (one path per Alertmanager receiver)."""

    def __init__(self):
        self.notifications: list[dict] = []
        received = self.notifications

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append(dict(json.loads(body), path=self.path))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def alerts(self) -> list[dict]:
        """Every alert received, each with the path of the notification that carried it."""
        return [dict(a, path=n["path"]) for n in list(self.notifications) for a in n.get("alerts", [])]


def alertmanager_config(hook: WebhookReceiver) -> dict:
    """The shipped routing (deploy/alertmanager/alertmanager.yml), its inhibit rules
    included, with each receiver's webhook pointed at the test's receiver under the
    receiver's name, and its waits shortened to a second."""
    import yaml

    config = yaml.safe_load(AM_CONFIG.read_text())
    for receiver in config["receivers"]:
        for hook_config in receiver["webhook_configs"]:
            hook_config["url"] = f"{hook.url}/{receiver['name']}"
            hook_config["send_resolved"] = True
    config["route"].update(group_wait="1s", group_interval="1s")
    return config


def start_alertmanager(work: Path, port: int, hook: WebhookReceiver, daemons: list[Daemon]) -> Daemon:
    """A real Alertmanager on 127.0.0.1:port with the shipped routing pointed at `hook`."""
    (work / "alertmanager.yml").write_text(json.dumps(alertmanager_config(hook)))
    return Daemon("alertmanager", [
        tool("prometheus-alertmanager"), f"--config.file={work / 'alertmanager.yml'}",
        f"--storage.path={work / 'am-data'}", f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address="], f"http://127.0.0.1:{port}", "/-/ready", work / "alertmanager.log",
        daemons).start()


def start_tsdbs(work: Path, scrape_configs: list[dict], rules: list[Path], am_port: int, daemons: list[Daemon],
                vm_scrape_configs: list[dict] | None = None,
                vm_flags: tuple[str, ...] = ()) -> tuple[Daemon, Daemon, Daemon]:
    """Prometheus (scraping and evaluating `rules`, alerting to Alertmanager on am_port),
    a VictoriaMetrics single node scraping the same targets (vm_scrape_configs when its
    dialect differs), and vmalert evaluating `rules` against VictoriaMetrics; all on
    127.0.0.1, every second, appended to `daemons`. Returns (prometheus, vm, vmalert)."""
    prom_port, vm_port, vmalert_port = fh.free_ports(3)
    (work / "prometheus.yml").write_text(json.dumps({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in rules],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
        "scrape_configs": scrape_configs}))
    prom = Daemon("prometheus", [
        tool("prometheus"), f"--config.file={work / 'prometheus.yml'}",
        f"--storage.tsdb.path={work / 'prom-data'}", f"--web.listen-address=127.0.0.1:{prom_port}"],
        f"http://127.0.0.1:{prom_port}", "/-/ready", work / "prometheus.log", daemons).start()
    (work / "vm-scrape.yml").write_text(json.dumps({"global": {"scrape_interval": "1s"},
                                                     "scrape_configs": vm_scrape_configs or scrape_configs}))
    vm = Daemon("victoria-metrics", [
        tool("victoria-metrics"), f"-promscrape.config={work / 'vm-scrape.yml'}",
        f"-storageDataPath={work / 'vm-data'}", f"-httpListenAddr=127.0.0.1:{vm_port}",
        "-search.latencyOffset=1s", "-search.disableCache", *vm_flags],
        f"http://127.0.0.1:{vm_port}", "/health", work / "victoria-metrics.log", daemons).start()
    vm_base = f"http://127.0.0.1:{vm_port}"
    vmalert = Daemon("vmalert", [
        tool("vmalert")] + [f"-rule={p}" for p in rules] + [
        f"-datasource.url={vm_base}", f"-remoteWrite.url={vm_base}", f"-remoteRead.url={vm_base}",
        f"-notifier.url=http://127.0.0.1:{am_port}", "-evaluationInterval=1s",
        f"-httpListenAddr=127.0.0.1:{vmalert_port}"],
        f"http://127.0.0.1:{vmalert_port}", "/health", work / "vmalert.log", daemons).start()
    return prom, vm, vmalert


# --------------------------------------------------------------------------- OpenTelemetry Collector

OTELCOL = fh.REPO_ROOT / "third_party" / "bin" / "otelcol"
CONFIG = fh.REPO_ROOT / "tools" / "otelcol" / "test-config.yaml"
START_TIMEOUT_S = 30.0
SPAN_TIMEOUT_S = 10.0


def otelcol_binary() -> Path:
    if OTELCOL.is_file() and os.access(OTELCOL, os.X_OK):
        return OTELCOL
    msg = f"OpenTelemetry Collector not built ({OTELCOL}); run tools/otelcol/install.sh (scripts/setup.sh does)"
    if os.environ.get("FERRY_REQUIRE_OTELCOL"):
        pytest.fail(msg + " [FERRY_REQUIRE_OTELCOL is set]", pytrace=False)
    pytest.skip(msg)


class Collector:
    """One collector on 127.0.0.1: OTLP/HTTP in (no gRPC), every trace out to a JSON-lines file."""

    def __init__(self, workdir: Path):
        self.port = fh.free_ports(1)[0]
        self.output = workdir / "traces.jsonl"
        self.log = workdir / "otelcol.log"
        self.proc: subprocess.Popen | None = None

    @property
    def traces_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/traces"

    def start(self) -> "Collector":
        env = dict(os.environ, OTELCOL_HTTP_ENDPOINT=f"127.0.0.1:{self.port}", OTELCOL_OUTPUT=str(self.output))
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(fh._orphan_guard() + [str(otelcol_binary()), "--config", str(CONFIG)],
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         env=env, cwd=str(self.log.parent))

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"otelcol exited with {self.proc.returncode}:\n{self.tail()}")
            # An empty ExportTraceServiceRequest: the receiver answers 200 and exports nothing.
            return fh.http_request("POST", self.traces_url, data=b"{}", timeout=1,
                                   headers={"Content-Type": "application/json"}).status_code == 200

        fh.wait_until(ready, START_TIMEOUT_S, "otelcol to accept OTLP/HTTP", on_timeout=self.tail)
        return self

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"otelcol ignored SIGTERM for 20s:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def spans(self) -> list[dict]:
        """Every span written so far, each with its resource's attributes as `_resource` (a dict)."""
        out = []
        try:
            text = self.output.read_text()
        except FileNotFoundError:
            return out
        for line in text.splitlines():
            if not line.strip():
                continue
            for rs in json.loads(line).get("resourceSpans", []):
                resource = attributes(rs.get("resource", {}).get("attributes", []))
                for ss in rs.get("scopeSpans", []):
                    for span in ss.get("spans", []):
                        out.append(dict(span, _resource=resource))
        return out

    def wait_for_spans(self, predicate, timeout: float = SPAN_TIMEOUT_S) -> list[dict]:
        """The spans that satisfy predicate, once there is at least one."""
        return fh.wait_until(lambda: [s for s in self.spans() if predicate(s)], timeout,
                             "the span in the file exporter's output",
                             on_timeout=lambda: f"file: {self.spans()}\nlog:\n{self.tail()}")


def attributes(kvs: list[dict]) -> dict:
    """OTLP/JSON KeyValue list -> {key: value}, for the scalar value kinds."""
    out = {}
    for kv in kvs:
        value = kv.get("value", {})
        for kind in ("stringValue", "boolValue", "intValue", "doubleValue"):
            if kind in value:
                out[kv["key"]] = value[kind]
    return out
