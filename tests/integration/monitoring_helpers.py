"""Monitoring daemons for the integration tests: Prometheus, VictoriaMetrics and
Alertmanager started on 127.0.0.1 (Debian packages), and a webhook receiver that keeps
what Alertmanager (or ferry's own alerting) posts to it."""

from __future__ import annotations

import http.server
import json
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
