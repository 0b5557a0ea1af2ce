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
import time

import pytest

import ferry_helpers as fh
from monitoring_helpers import Collector, attributes

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
