"""Payload logging: every answered request of a monitored model as CloudEvents 1.0, to a
rotated JSON Lines file and to an HTTP receiver (batched), read back with the CloudEvents
Python SDK. Models of three runtimes (ONNX, XGBoost, a Python model) configured in the
three config formats (model.yaml, model-settings.json, config.pbtxt)."""

from __future__ import annotations

import json
import shutil
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import xgboost as xgb
from cloudevents.core.formats.json import JSONFormat

import ferry_helpers as fh

N_FEATURES = 5
MASK = (1 << 64) - 1


def sampled(request_id: str, rate: float) -> bool:
    """ferry's sampling decision (payload_log.cc): FNV-1a of the id, splitmix64's
    finaliser, the top 53 bits as a number in [0, 1) below the rate."""
    if rate >= 1:
        return True
    h = 0xCBF29CE484222325
    for c in request_id.encode():
        h ^= c
        h = (h * 0x100000001B3) & MASK
    h ^= h >> 30
    h = (h * 0xBF58476D1CE4E5B9) & MASK
    h ^= h >> 27
    h = (h * 0x94D049BB133111EB) & MASK
    h ^= h >> 31
    return (h >> 11) * 2.0**-53 < rate


class Receiver:
    """An HTTP receiver of CloudEvents batches (the standard library's server), run by
    the test; `delay_s` makes it slow."""

    def __init__(self, delay_s: float = 0.0):
        self.posts: list[tuple[dict, bytes]] = []
        self.lock = threading.Lock()
        self.delay_s = delay_s
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                with receiver.lock:
                    receiver.posts.append((dict(self.headers), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/events"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def events(self):
        with self.lock:
            posts = list(self.posts)
        out = []
        for headers, body in posts:
            assert headers.get("Content-Type") == "application/cloudevents-batch+json", headers
            batch = json.loads(body)
            assert isinstance(batch, list) and batch, body[:200]
            out.extend(JSONFormat().read(None, json.dumps(e)) for e in batch)
        return out

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def read_events(path: Path):
    """Every line of a JSONL payload log, parsed by the CloudEvents SDK."""
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    return [JSONFormat().read(None, line) for line in lines if line]


def by_request(events):
    joined: dict[str, dict[str, object]] = {}
    for e in events:
        kind = e.get_type().rsplit(".", 1)[-1]
        slot = joined.setdefault(e.get_extension("requestid"), {})
        assert kind not in slot, f"two {kind} events for request {e.get_extension('requestid')}"
        slot[kind] = e
    return joined


# A Python model that answers 400 for negative X and 500 for a zero (test_python_models.py's).
from test_python_models import RAISE as PICKY  # noqa: E402


def monitoring_pbtxt(settings: dict[str, str]) -> str:
    return "".join(f'parameters {{ key: "monitoring.{k}" value: {{ string_value: "{v}" }} }}\n'
                   for k, v in settings.items())


@pytest.fixture(scope="module")
def setup(ferry_module_factory, model_repo, tmp_path_factory):
    base = tmp_path_factory.mktemp("payload")
    logs = base / "logs"
    repo = base / "repo"
    receiver = Receiver()
    # ONNX, model.yaml's monitoring block, a small tensor limit.
    shutil.copytree(model_repo / "mlp_classifier", repo / "mlp")
    (repo / "mlp" / "model.yaml").write_text(
        f"monitoring:\n  payload_log:\n    sink: file:{logs}/mlp.jsonl\n    max_tensor_bytes: 64\n")
    # ONNX again, sampled at 20 %.
    shutil.copytree(model_repo / "mlp_classifier", repo / "mlp_sampled")
    (repo / "mlp_sampled" / "model.yaml").write_text(
        f"monitoring:\n  payload_log:\n    sink: file:{logs}/sampled.jsonl\n    sample_rate: 0.2\n")
    # XGBoost in MLServer's layout, to the HTTP receiver.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, N_FEATURES)).astype(np.float32)
    booster = xgb.train({"objective": "reg:squarederror", "max_depth": 3}, xgb.DMatrix(x, label=x[:, 0] * 2), 5)
    (repo / "xgb").mkdir(parents=True)
    booster.save_model(str(repo / "xgb" / "model.json"))
    (repo / "xgb" / "model-settings.json").write_text(json.dumps({
        "implementation": "mlserver_xgboost.XGBoostModel",
        "parameters": {"uri": "./model.json", "extra": {"monitoring.payload_log.sink": receiver.url}}}))
    # A Python model that fails on purpose (400 and 500), config.pbtxt parameters.
    (repo / "picky" / "1").mkdir(parents=True)
    (repo / "picky" / "1" / "model.py").write_text(PICKY)
    (repo / "picky" / "config.pbtxt").write_text(
        'backend: "python"\ninput [ { name: "X" data_type: TYPE_INT64 dims: [ -1 ] } ]\n'
        'output [ { name: "Y" data_type: TYPE_INT64 dims: [ -1 ] } ]\n'
        + monitoring_pbtxt({"payload_log.sink": f"file:{logs}/picky.jsonl"}))
    # A bad setting: named in the index, the model serves unlogged.
    shutil.copytree(model_repo / "mlp_classifier", repo / "mlp_bad")
    (repo / "mlp_bad" / "model.yaml").write_text(
        f"monitoring:\n  payload_log:\n    sink: file:{logs}/bad.jsonl\n    sample_rate: 2\n")
    server = fh.start_with_models(
        ferry_module_factory, repo, ["mlp", "mlp_sampled", "xgb", "picky", "mlp_bad"], "payload",
        args=["--python-executable", __import__("sys").executable, "--payload-log-http-delay-ms", "100"])
    yield server, logs, receiver, booster
    receiver.close()


def infer_mlp(server, rows: int, request_id: str | None = None, model: str = "mlp", seed: int = 0):
    x = np.random.default_rng(seed).standard_normal((rows, 4)).astype(np.float32)
    body = fh.json_request({"input": x})
    if request_id is not None:
        body["id"] = request_id
    resp = server.post(f"/v2/models/{model}/infer", json=body)
    assert resp.status_code == 200, resp.text
    return x, resp


def test_file_events_parse_with_the_sdk_and_join_request_and_response(setup):
    server, logs, _, _ = setup
    sent = {}
    for i in range(10):
        x, resp = infer_mlp(server, 1, request_id=f"mlp-{i}", seed=i)
        sent[f"mlp-{i}"] = (x, resp.json())
        assert resp.headers["X-Request-Id"] == f"mlp-{i}"
    # Without an id the server gives one, in the body and the header, and logs it.
    x, resp = infer_mlp(server, 2, seed=99)
    generated = resp.json()["id"]
    assert len(generated) == 36 and generated.count("-") == 4, generated
    assert resp.headers["X-Request-Id"] == generated
    sent[generated] = (x, resp.json())
    # The header names the request when the body does not.
    x = np.ones((1, 4), np.float32)
    resp = server.post("/v2/models/mlp/infer", json=fh.json_request({"input": x}), headers={"X-Request-Id": "hdr-1"})
    assert resp.status_code == 200 and resp.json()["id"] == "hdr-1"
    sent["hdr-1"] = (x, resp.json())
    # gRPC too.
    with grpcclient.InferenceServerClient(fh.grpc_url(server)) as g:
        inp = grpcclient.InferInput("input", [1, 4], "FP32")
        x = np.full((1, 4), 0.5, np.float32)
        inp.set_data_from_numpy(x)
        r = g.infer("mlp", [inp], request_id="grpc-1")
        sent["grpc-1"] = (x, {"outputs": [{"name": "probabilities", "data": r.as_numpy("probabilities").ravel().tolist()}]})

    events = fh.wait_until(lambda: (lambda ev: ev if len(ev) >= 2 * len(sent) else None)(read_events(logs / "mlp.jsonl")),
                           10, "the mlp payload events")
    assert len({(e.get_source(), e.get_id()) for e in events}) == len(events), "source+id must be unique per event"
    joined = by_request(events)
    assert set(joined) == set(sent)
    for rid, (x, answer) in sent.items():
        req, resp = joined[rid]["request"], joined[rid]["response"]
        for e in (req, resp):
            assert e.get_specversion() == "1.0"
            assert e.get_source().endswith("/models/mlp/versions/1"), e.get_source()
            assert e.get_datacontenttype() == "application/json"
            assert e.get_extension("model") == "mlp" and e.get_extension("modelversion") == "1"
            assert e.get_time().tzinfo is not None
        assert req.get_type() == "org.ferry.inference.request"
        assert resp.get_type() == "org.ferry.inference.response"
        assert resp.get_extension("statuscode") == 200
        assert req.get_extension("protocol") == ("grpc" if rid == "grpc-1" else "http")
        assert resp.get_time() >= req.get_time()
        logged_in = req.get_data()["inputs"][0]
        assert logged_in["name"] == "input" and logged_in["shape"] == list(x.shape)
        np.testing.assert_allclose(np.array(logged_in["data"], np.float32), x.ravel(), rtol=1e-6)
        logged_out = {o["name"]: o for o in resp.get_data()["outputs"]}
        expected_out = {o["name"]: o for o in answer["outputs"]}
        np.testing.assert_allclose(logged_out["probabilities"]["data"], expected_out["probabilities"]["data"], rtol=1e-6)


def test_large_tensors_are_truncated_and_marked(setup):
    server, logs, _, _ = setup
    x, _ = infer_mlp(server, 10, request_id="big-1")  # 40 FP32 = 160 bytes > max_tensor_bytes 64
    joined = fh.wait_until(lambda: by_request(read_events(logs / "mlp.jsonl")).get("big-1", {}).get("response"), 10,
                           "the big request's events")
    req = by_request(read_events(logs / "mlp.jsonl"))["big-1"]["request"]
    assert req.get_extension("truncated") is True
    t = req.get_data()["inputs"][0]
    assert t["shape"] == [10, 4]
    assert t["parameters"] == {"truncated": True, "element_count": 40}
    np.testing.assert_allclose(np.array(t["data"], np.float32), x.ravel()[:16], rtol=1e-6)
    assert joined.get_extension("truncated") is True  # probabilities: 30 FP32 = 120 bytes


def test_4xx_and_5xx_are_logged_with_their_errors(setup):
    server, logs, _, _ = setup
    def post(model, body, **kw):
        return server.post(f"/v2/models/{model}/infer", **kw, **({"json": body} if body is not None else {}))

    x_bad = {"id": "neg", "inputs": [{"name": "X", "shape": [2], "datatype": "INT64", "data": [5, -2]}]}
    neg_msg = fh.assert_error(post("picky", x_bad), 400, "X must not be negative, got -2")
    x_zero = {"id": "zero", "inputs": [{"name": "X", "shape": [1], "datatype": "INT64", "data": [0]}]}
    zero_msg = fh.assert_error(post("picky", x_zero), 500, "division by zero inside the model")
    ok = post("picky", {"id": "fine", "inputs": [{"name": "X", "shape": [1], "datatype": "INT64", "data": [4]}]})
    assert ok.status_code == 200, ok.text
    # Validation failures and bodies that do not decode are logged too.
    wrong_type = {"id": "wrongtype", "inputs": [{"name": "input", "shape": [1, 4], "datatype": "INT64", "data": [1, 2, 3, 4]}]}
    fh.assert_error(post("mlp", wrong_type), 400, "input")
    garbage = post("mlp", None, data=b"{not json", headers={"Content-Type": "application/json", "X-Request-Id": "garbage-1"})
    assert garbage.status_code == 400
    assert garbage.headers.get("X-Request-Id") is None or garbage.headers["X-Request-Id"] == "garbage-1"

    picky = fh.wait_until(lambda: (lambda j: j if all(k in j and "response" in j[k] for k in ("neg", "zero", "fine")) else None)(
        by_request(read_events(logs / "picky.jsonl"))), 15, "the picky events")
    assert picky["neg"]["response"].get_extension("statuscode") == 400
    assert picky["neg"]["response"].get_data() == {"error": neg_msg}, "the error the client got"
    assert picky["neg"]["request"].get_data()["inputs"][0]["data"] == [5, -2]
    assert picky["zero"]["response"].get_extension("statuscode") == 500
    assert picky["zero"]["response"].get_data() == {"error": zero_msg}
    assert picky["fine"]["response"].get_data()["outputs"][0]["data"] == [25]

    mlp = fh.wait_until(lambda: (lambda j: j if all(k in j and "response" in j[k] for k in ("wrongtype", "garbage-1")) else None)(
        by_request(read_events(logs / "mlp.jsonl"))), 10, "the mlp failures")
    wt = mlp["wrongtype"]
    assert wt["response"].get_extension("statuscode") == 400
    assert "input" in wt["response"].get_data()["error"]
    assert wt["request"].get_data()["inputs"][0]["datatype"] == "INT64"
    g = mlp["garbage-1"]
    assert g["response"].get_extension("statuscode") == 400
    assert g["response"].get_data()["error"]
    assert g["request"].get_data() is None, "a body that did not decode has no data to log"


def test_http_receiver_gets_batches_of_cloudevents(setup):
    server, _, receiver, booster = setup
    x = np.random.default_rng(1).standard_normal((1, N_FEATURES)).astype(np.float32)
    ids = [f"xgb-{i}" for i in range(30)]
    for rid in ids:
        body = fh.json_request({"input__0": x})
        body["id"] = rid
        resp = server.post("/v2/models/xgb/infer", json=body)
        assert resp.status_code == 200, resp.text
    events = fh.wait_until(lambda: (lambda ev: ev if len(ev) >= 60 else None)(receiver.events()), 15,
                           "60 events at the receiver")
    assert len(events) == 60
    assert len({e.get_id() for e in events}) == 60
    joined = by_request(events)
    assert set(joined) == set(ids)
    expected = booster.predict(xgb.DMatrix(x))[0]
    for rid in ids:
        out = joined[rid]["response"].get_data()["outputs"][0]
        assert abs(out["data"][0] - expected) < 1e-5
        assert joined[rid]["request"].get_extension("model") == "xgb"
    assert len(receiver.posts) < 30, "events are batched, not one POST each"


def test_sampling_follows_the_request_id_at_the_rate(setup):
    server, logs, _, _ = setup
    ids = [f"s-{i}" for i in range(400)]
    for rid in ids:
        infer_mlp(server, 1, request_id=rid, model="mlp_sampled")
    expected = {rid for rid in ids if sampled(rid, 0.2)}
    assert abs(len(expected) - 80) < 4 * (400 * 0.2 * 0.8) ** 0.5  # the hash spreads ids evenly
    joined = fh.wait_until(lambda: (lambda j: j if set(j) >= expected else None)(
        by_request(read_events(logs / "sampled.jsonl"))), 10, "the sampled events")
    time.sleep(0.3)
    joined = by_request(read_events(logs / "sampled.jsonl"))
    assert set(joined) == expected, "exactly the ids the sampling function picks"
    for slot in joined.values():
        assert set(slot) == {"request", "response"}, "request and response are sampled together"
        assert slot["request"].get_extension("sampledrate") == 5


def test_a_bad_setting_is_named_and_the_model_serves_unlogged(setup):
    server, logs, _, _ = setup
    index = {(e["name"], e.get("version")): e for e in server.post("/v2/repository/index", json={}).json()}
    entry = index[("mlp_bad", "1")]
    assert entry["state"] == "READY"
    assert entry["reason"] == ("model 'mlp_bad' version 1: monitoring: monitoring.payload_log.sample_rate: "
                               "must be a number from 0 to 1, not '2'"), entry
    infer_mlp(server, 1, model="mlp_bad")
    assert not (logs / "bad.jsonl").exists()


def test_metrics_count_records_and_events(setup):
    server, _, _, _ = setup
    infer_mlp(server, 1, request_id="metrics-1")

    def counted():
        samples = fh.parse_metrics(fh.http_request("GET", f"http://{server.metrics_url}/metrics").text)
        written = fh.metric_sum(samples, "ferry_payload_log_events_total", model="mlp", version="1", result="written")
        records = fh.metric_sum(samples, "ferry_monitoring_records_total", model="mlp", version="1")
        return samples if written >= 2 and records >= 1 else None

    samples = fh.wait_until(counted, 10, "payload log metrics")
    assert fh.metric_sum(samples, "ferry_monitoring_records_dropped_total", model="mlp") == 0
    assert fh.metric_sum(samples, "ferry_payload_log_events_total", model="mlp_bad") == 0


# --------------------------------------------------------------------------- sinks under trouble


def hammer(server, seconds: float, model: str = "mlp_classifier") -> list[float]:
    """Sequential requests for `seconds`; every one must succeed. Returns latencies."""
    x = np.ones((1, 4), np.float32)
    body = fh.json_request({"input": x})
    latencies = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.monotonic()
        resp = server.post(f"/v2/models/{model}/infer", json=body)
        latencies.append(time.monotonic() - t0)
        assert resp.status_code == 200, resp.text
    return latencies


def test_a_receiver_that_is_down_or_slow_never_stops_serving(ferry_factory):
    # Nothing listens on this port: every POST fails, is retried, and its events fail.
    down_port = fh.free_ports(1)[0]
    down = ferry_factory.start(args=["--payload-log", f"http://127.0.0.1:{down_port}/events",
                                     "--payload-log-http-delay-ms", "50", "--payload-log-http-retries", "1"],
                               name="receiver-down")
    latencies = hammer(down, 2.0)
    assert len(latencies) > 20
    samples = fh.wait_until(lambda: (lambda s: s if fh.metric_sum(s, "ferry_payload_log_events_total",
                                                                   model="mlp_classifier", result="failed") > 0 else None)(
        fh.parse_metrics(fh.http_request("GET", f"http://{down.metrics_url}/metrics").text)), 15, "failed events counted")
    assert fh.metric_sum(samples, "ferry_payload_log_events_total", model="mlp_classifier", result="written") == 0
    down.stop_and_check()

    # A receiver that takes 2 s per POST, a buffer of about ten events: the rest is
    # dropped and counted, and requests are answered as fast as ever.
    slow = Receiver(delay_s=2.0)
    try:
        server = ferry_factory.start(args=["--payload-log", slow.url, "--payload-log-http-batch", "1",
                                           "--payload-log-http-buffer-bytes", "8000"], name="receiver-slow")
        latencies = hammer(server, 2.0)
        assert len(latencies) > 20
        assert sorted(latencies)[len(latencies) // 2] < 0.5, "median latency must not follow the receiver's 2 s"
        samples = fh.parse_metrics(fh.http_request("GET", f"http://{server.metrics_url}/metrics").text)
        assert fh.metric_sum(samples, "ferry_payload_log_events_total", model="mlp_classifier", result="dropped") > 0
        assert fh.http_request("GET", f"{server.base}/v2/health/ready").status_code == 200
        server.terminate()
        assert server.wait_exit(timeout=30) == 0
    finally:
        slow.close()


def test_sigterm_flushes_what_is_buffered(ferry_factory, tmp_path):
    receiver = Receiver()
    try:
        # Batches would wait a minute; SIGTERM must send them at once.
        server = ferry_factory.start(args=["--payload-log", receiver.url, "--payload-log-http-delay-ms", "60000",
                                           "--payload-log-http-batch", "1000"], name="flush")
        x = np.ones((1, 4), np.float32)
        for i in range(7):
            body = fh.json_request({"input": x})
            body["id"] = f"flush-{i}"
            assert server.post("/v2/models/mlp_classifier/infer", json=body).status_code == 200
        time.sleep(0.3)
        assert receiver.events() == [], "nothing is sent before the batch is due"
        t0 = time.monotonic()
        server.terminate()
        assert server.wait_exit(timeout=30) == 0
        assert time.monotonic() - t0 < 10
        events = receiver.events()
        assert set(by_request(events)) == {f"flush-{i}" for i in range(7)}
        assert len(events) == 14
    finally:
        receiver.close()


def test_bad_flags_are_named(ferry_binary, model_repo):
    import subprocess

    for flags, message in [
        (["--payload-log", "ftp://x"], ("--payload-log must be file:PATH, http://HOST[:PORT]/PATH, kafka://BROKERS/TOPIC or none, "
                                        "not 'ftp://x'")),
        (["--payload-log-sample-rate", "1.5"], "--payload-log-sample-rate must be between 0 and 1"),
        (["--payload-log-mode", "both"], "--payload-log-mode must be all, request or response, not 'both'"),
    ]:
        proc = subprocess.run([str(ferry_binary), "serve", "--model-repository", str(model_repo), *flags],
                              capture_output=True, text=True, timeout=30, env=fh.child_env())
        assert proc.returncode == 2, proc.stderr
        assert message in proc.stderr, proc.stderr
