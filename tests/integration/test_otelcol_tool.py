"""The OpenTelemetry Collector that tools/otelcol/install.sh builds (scripts/setup.sh runs it)
receives OTLP/HTTP JSON traces and its file exporter writes them out as sent.

This checks the tool itself, before any ferry test depends on it: a real collector (core
v0.161.0, otlp receiver, contrib's fileexporter) started on a free loopback port with
tools/otelcol/test-config.yaml, sent one ExportTraceServiceRequest with Python requests, and
the span read back from the exporter's JSON-lines file. A test of ferry's own spans follows the
same pattern: start `Collector`, point ferry's OTLP exporter at `collector.traces_url`, then
`collector.wait_for_spans(...)`.

The binary is third_party/bin/otelcol. Without it the test skips, unless FERRY_REQUIRE_OTELCOL
is set (then it fails): build it with tools/otelcol/install.sh.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

import ferry_helpers as fh

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


@pytest.fixture
def collector(tmp_path):
    c = Collector(tmp_path)
    try:
        yield c.start()
    finally:
        rc = c.stop()
    assert rc == 0, f"otelcol exited with {rc} on SIGTERM:\n{c.tail()}"


def test_otlp_http_json_span_reaches_file_exporter(collector):
    trace_id, span_id = os.urandom(16).hex(), os.urandom(8).hex()
    start_ns = time.time_ns()
    request = {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "ferry-otelcol-tool-test"}}]},
        "scopeSpans": [{
            "scope": {"name": "test_otelcol_tool"},
            "spans": [{
                "traceId": trace_id,
                "spanId": span_id,
                "name": "infer dense",
                "kind": 2,  # SPAN_KIND_SERVER; OTLP/JSON writes enums as integers
                "startTimeUnixNano": str(start_ns),
                "endTimeUnixNano": str(start_ns + 1_500_000),
                "attributes": [{"key": "ferry.model", "value": {"stringValue": "dense"}}],
            }],
        }],
    }]}
    resp = fh.http_request("POST", collector.traces_url, data=json.dumps(request),
                           headers={"Content-Type": "application/json"})
    assert resp.status_code == 200, f"{resp.status_code} {resp.text[:500]}"
    assert resp.headers["Content-Type"].startswith("application/json")
    assert "rejectedSpans" not in resp.json().get("partialSuccess", {}), resp.text

    [span] = collector.wait_for_spans(lambda s: s.get("traceId") == trace_id)
    assert span["spanId"] == span_id
    assert span["name"] == "infer dense"
    assert span["kind"] == 2
    assert span["startTimeUnixNano"] == str(start_ns)
    assert span["endTimeUnixNano"] == str(start_ns + 1_500_000)
    assert attributes(span.get("attributes", [])) == {"ferry.model": "dense"}
    assert span["_resource"]["service.name"] == "ferry-otelcol-tool-test"
