"""Prometheus metrics on the metrics port (GET /metrics)."""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict

import pytest

import ferry_helpers as fh
from ferry_helpers import metric_samples, metric_sum

ADD_SUB_V1 = "/v2/models/add_sub/versions/1/infer"
V1 = {"model": "add_sub", "version": "1"}

HISTOGRAMS = (
    "ferry_request_duration_seconds",
    "ferry_queue_duration_seconds",
    "ferry_compute_input_duration_seconds",
    "ferry_compute_infer_duration_seconds",
    "ferry_compute_output_duration_seconds",
)


def scrape(server):
    resp = fh.http_request("GET", f"http://{server.metrics_url}/metrics")
    assert resp.status_code == 200, resp.text[:300]
    assert resp.headers.get("Content-Type", "").startswith("text/plain"), resp.headers.get("Content-Type")
    return resp.text, fh.parse_metrics(resp.text)


@pytest.fixture(scope="module")
def traffic(ferry_server):
    """Send known traffic to add_sub v1 and return metrics from before and after it."""
    _, before = scrape(ferry_server)
    batches = [1, 2, 3, 1, 1]
    for i, batch in enumerate(batches):
        inputs = fh.make_inputs("add_sub", batch, seed=100 + i)
        resp = ferry_server.post(ADD_SUB_V1, json=fh.json_request(inputs))
        assert resp.status_code == 200, resp.content[:300]
    failures = 3
    for i in range(failures):
        doc = fh.json_request(fh.make_inputs("add_sub", 1, seed=200 + i))
        doc["inputs"][0]["data"] = doc["inputs"][0]["data"][:-1]  # wrong element count
        resp = ferry_server.post(ADD_SUB_V1, data=json.dumps(doc).encode())
        assert resp.status_code == 400, resp.content[:300]

    wanted = metric_sum(before, "ferry_inference_requests_total", **V1) + len(batches)
    # Counters are normally updated before the response goes out; allow a short lag anyway,
    # then let each test judge what it finds.
    deadline = time.monotonic() + 5
    while True:
        text, after = scrape(ferry_server)
        if metric_sum(after, "ferry_inference_requests_total", **V1) >= wanted or time.monotonic() > deadline:
            break
        time.sleep(fh.POLL_INTERVAL_S)
    return {"before": before, "after": after, "text": text,
            "requests": len(batches), "items": sum(batches), "failures": failures}


def delta(traffic, name, **labels):
    return metric_sum(traffic["after"], name, **labels) - metric_sum(traffic["before"], name, **labels)


def test_success_counter_counts_exactly_the_requests_sent(traffic):
    assert metric_samples(traffic["after"], "ferry_inference_requests_total", **V1), \
        "no ferry_inference_requests_total{model=\"add_sub\",version=\"1\"} sample"
    assert 'ferry_inference_requests_total{' in traffic["text"]
    assert delta(traffic, "ferry_inference_requests_total", **V1) == traffic["requests"]


def test_failure_counter_has_reason_label(traffic):
    samples = metric_samples(traffic["after"], "ferry_inference_failures_total", model="add_sub")
    assert samples, "no ferry_inference_failures_total sample for add_sub"
    assert all("reason" in labels for _, labels, _ in samples), samples
    assert delta(traffic, "ferry_inference_failures_total", model="add_sub") == traffic["failures"]


def test_inference_and_execution_counts(traffic):
    assert delta(traffic, "ferry_inference_count_total", **V1) == traffic["items"]
    # requests were sent one after another, so each was its own execution
    assert delta(traffic, "ferry_inference_executions_total", **V1) == traffic["requests"]


@pytest.mark.parametrize("family", HISTOGRAMS)
def test_histograms(traffic, family):
    after = traffic["after"]
    buckets = metric_samples(after, family + "_bucket", **V1)
    assert buckets, f"no {family}_bucket samples for add_sub v1"
    assert metric_samples(after, family + "_sum", **V1), f"no {family}_sum"
    # group buckets by their label set without `le`; check each series is a proper histogram
    series = defaultdict(list)
    for _, labels, value in buckets:
        key = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        series[key].append((float(labels["le"]), value))
    for key, points in series.items():
        points.sort()
        assert math.isinf(points[-1][0]), f"{family}{dict(key)} has no +Inf bucket"
        values = [v for _, v in points]
        assert values == sorted(values), f"{family}{dict(key)} buckets not cumulative: {points}"
        count = metric_sum(after, family + "_count", **dict(key))
        assert count == points[-1][1], f"{family}{dict(key)}: _count {count} != +Inf bucket {points[-1][1]}"
    assert delta(traffic, family + "_count", **V1) >= traffic["requests"]


def test_gauges_and_model_load_metrics(traffic):
    names = {n for n, _, _ in traffic["after"]}
    assert "ferry_inflight_requests" in names
    assert all(v >= 0 for _, _, v in metric_samples(traffic["after"], "ferry_inflight_requests"))
    assert metric_sum(traffic["after"], "ferry_model_loads_total") >= 3  # three models, add_sub twice
    assert any(n.startswith("ferry_model_load_duration_seconds") for n in names)


def test_process_metrics(traffic):
    assert metric_sum(traffic["after"], "process_resident_memory_bytes") > 0
    assert metric_samples(traffic["after"], "process_cpu_seconds_total")
