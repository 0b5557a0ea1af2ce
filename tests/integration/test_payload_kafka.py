"""The payload log's Kafka sink against a real broker (the session's Kafka 4.1.2, see
kafka_helpers.py): events in CloudEvents' Kafka protocol binding, binary content mode,
read back with confluent-kafka and parsed by the CloudEvents Python SDK's Kafka binding;
the broker stopped under load and started again."""

from __future__ import annotations

import shutil
import time
import uuid

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary
from cloudevents.core.formats.json import JSONFormat

import ferry_helpers as fh

pytestmark = pytest.mark.usefixtures("kafka_broker")

CE_HEADERS = {"ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time"}


def topic_name(what: str) -> str:
    return f"payloads-{what}-{uuid.uuid4().hex[:8]}"


def parse(msg):
    """A consumed record as a CloudEvent (the SDK's from_binary), with the raw record."""
    headers = {}
    for name, value in msg.headers() or []:
        assert name not in headers, f"header {name} twice"
        headers[name] = value
    event = from_binary(KafkaMessage(headers=headers, key=msg.key(), value=msg.value() or b""), JSONFormat())
    return event, headers


def events_of(kafka_broker, topic: str, expected: int, timeout: float = 30.0):
    msgs = kafka_broker.consume_all(topic, expected, timeout=timeout, settle_s=1.0)
    return [(m, *parse(m)) for m in msgs]


def metrics(server):
    return fh.parse_metrics(fh.http_request("GET", f"http://{server.metrics_url}/metrics").text)


def events_total(server, result: str, model: str = "mlp_classifier") -> float:
    return fh.metric_sum(metrics(server), "ferry_payload_log_events_total", model=model, result=result)


def infer(server, request_id: str, x=None, model: str = "mlp_classifier"):
    x = np.random.default_rng(abs(hash(request_id)) % 2**32).standard_normal((1, 4)).astype(np.float32) if x is None else x
    body = fh.json_request({"input": x})
    body["id"] = request_id
    return x, server.post(f"/v2/models/{model}/infer", json=body)


def test_events_use_the_binary_binding_and_join_by_request_id(kafka_broker, ferry_factory):
    topic = topic_name("binding")
    kafka_broker.create_topics([topic], partitions=3)
    server = ferry_factory.start(args=["--payload-log", f"kafka://{kafka_broker.bootstrap}/{topic}"], name="kafka")
    sent = {}
    for i in range(12):
        x, resp = infer(server, f"rest-{i}")
        assert resp.status_code == 200, resp.text
        sent[f"rest-{i}"] = (x, resp.json()["outputs"][0]["data"], 200)
    with grpcclient.InferenceServerClient(fh.grpc_url(server)) as g:
        for i in range(3):
            x = np.full((1, 4), 0.25 * i, np.float32)
            inp = grpcclient.InferInput("input", [1, 4], "FP32")
            inp.set_data_from_numpy(x)
            r = g.infer("mlp_classifier", [inp], request_id=f"grpc-{i}")
            sent[f"grpc-{i}"] = (x, r.as_numpy("probabilities").ravel().tolist(), 200)
        # A failing gRPC request: the wrong shape.
        bad = grpcclient.InferInput("input", [1, 3], "FP32")
        bad.set_data_from_numpy(np.ones((1, 3), np.float32))
        with pytest.raises(Exception, match="shape"):
            g.infer("mlp_classifier", [bad], request_id="grpc-bad")
        sent["grpc-bad"] = (np.ones((1, 3), np.float32), None, 400)
    # A failing REST request.
    bad = {"id": "rest-bad", "inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}
    error = fh.assert_error(server.post("/v2/models/mlp_classifier/infer", json=bad), 400, "shape")
    sent["rest-bad"] = (np.array([[1, 2, 3]], np.float32), None, 400)

    got = events_of(kafka_broker, topic, 2 * len(sent))
    assert len(got) == 2 * len(sent)
    assert len({e.get_id() for _, e, _ in got}) == len(got), "a new id per event"
    joined: dict[str, dict] = {}
    for msg, event, headers in got:
        assert CE_HEADERS <= set(headers), headers.keys()
        assert headers["ce_specversion"] == b"1.0"
        assert headers["content-type"] == b"application/json"
        assert not any(h.startswith("ce-") for h in headers), "the Kafka binding's prefix is ce_"
        rid = event.get_extension("requestid")
        assert msg.key() == rid.encode(), "the request id is the record key"
        assert event.get_extension("partitionkey") == rid  # what the SDK makes of the key
        assert event.get_source().endswith("/models/mlp_classifier/versions/1")
        kind = event.get_type().rsplit(".", 1)[-1]
        assert kind not in joined.setdefault(rid, {}), f"two {kind} events for {rid}"
        joined[rid][kind] = (msg, event)
    assert set(joined) == set(sent)
    for rid, (x, outputs, status) in sent.items():
        (qmsg, req), (rmsg, resp) = joined[rid]["request"], joined[rid]["response"]
        assert qmsg.partition() == rmsg.partition() and qmsg.offset() < rmsg.offset(), \
            "a request's events share a partition, request first"
        assert req.get_extension("protocol") == ("grpc" if rid.startswith("grpc") else "http")
        assert resp.get_extension("statuscode") == str(status), "integers travel as decimal text headers"
        assert resp.get_time() >= req.get_time() and resp.get_time().tzinfo is not None
        np.testing.assert_allclose(np.array(req.get_data()["inputs"][0]["data"], np.float32), x.ravel(), rtol=1e-6)
        if outputs is None:
            assert "shape" in resp.get_data()["error"]
        else:
            probs = {o["name"]: o for o in resp.get_data()["outputs"]}["probabilities"]
            np.testing.assert_allclose(probs["data"], outputs, rtol=1e-6)
    assert joined["rest-bad"]["response"][1].get_data() == {"error": error}
    assert len({m.partition() for m, _, _ in got}) > 1, "keys spread over the topic's partitions"
    fh.wait_until(lambda: events_total(server, "written") == 2 * len(sent), 10, "written events counted")
    assert events_total(server, "failed") == 0 and events_total(server, "dropped") == 0


def test_model_yaml_names_brokers_and_topic_and_bad_settings_are_named(kafka_broker, ferry_factory, tmp_path,
                                                                      model_repo):
    topic = topic_name("yaml")
    kafka_broker.create_topics([topic])
    repo = tmp_path / "repo"
    shutil.copytree(model_repo / "mlp_classifier", repo / "mlp")
    (repo / "mlp" / "model.yaml").write_text(
        f"monitoring:\n  payload_log:\n    sink: kafka\n    mode: response\n"
        f"    kafka:\n      brokers: {kafka_broker.bootstrap}\n      topic: {topic}\n")
    shutil.copytree(model_repo / "mlp_classifier", repo / "mlp_bad")
    (repo / "mlp_bad" / "model.yaml").write_text(
        f"monitoring:\n  payload_log:\n    sink: kafka\n    kafka:\n      brokers: {kafka_broker.bootstrap}\n")
    server = fh.start_with_models(ferry_factory, repo, ["mlp", "mlp_bad"], "kafka-yaml")
    for i in range(5):
        assert infer(server, f"yaml-{i}", model="mlp")[1].status_code == 200
    got = events_of(kafka_broker, topic, 5)
    assert sorted(e.get_extension("requestid") for _, e, _ in got) == [f"yaml-{i}" for i in range(5)]
    assert {e.get_type() for _, e, _ in got} == {"org.ferry.inference.response"}
    index = {(e["name"], e.get("version")): e for e in server.post("/v2/repository/index", json={}).json()}
    entry = index[("mlp_bad", "1")]
    assert entry["state"] == "READY"
    assert entry["reason"] == ("model 'mlp_bad' version 1: monitoring: monitoring.payload_log.kafka.topic: "
                               "must be set with sink kafka"), entry


def test_bad_kafka_flags_are_named(ferry_binary, tmp_path):
    import subprocess

    for args, mention in ((["--payload-log", "kafka://127.0.0.1:1"], "names no topic"),
                          (["--payload-log-kafka", "no.such.property=1"], "--payload-log-kafka: kafka property no.such.property=1"),
                          (["--payload-log-kafka", "linger.ms"], "--payload-log-kafka must be KEY=VALUE")):
        r = subprocess.run([str(ferry_binary), "serve", "--model-repository", str(tmp_path), "--http-port", "0",
                            "--grpc-port", "0", "--metrics-port", "0", *args],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode != 0, (args, r.stdout, r.stderr)
        assert mention in r.stderr + r.stdout, (args, r.stderr)


def hammer(server, prefix: str, seconds: float) -> list[float]:
    """Requests for `seconds`, each must be answered 200; returns the latencies."""
    latencies = []
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        t0 = time.monotonic()
        _, resp = infer(server, f"{prefix}-{i}", x=np.ones((1, 4), np.float32))
        latencies.append(time.monotonic() - t0)
        assert resp.status_code == 200, resp.text
        i += 1
    return latencies


def test_broker_down_and_back_serving_goes_on_and_failures_are_counted(kafka_broker, ferry_factory):
    topic = topic_name("outage")
    kafka_broker.create_topics([topic])
    sink = f"kafka://{kafka_broker.bootstrap}/{topic}"
    # Events not acknowledged within 3 s fail (counted); the default is a minute.
    server = ferry_factory.start(args=["--payload-log", sink, "--payload-log-kafka-timeout-ms", "3000"],
                                 name="kafka-outage")
    before = hammer(server, "before", 1.0)
    fh.wait_until(lambda: events_total(server, "written") == 2 * len(before), 15, "events before the outage written")

    kafka_broker.stop()
    try:
        during = hammer(server, "during", 4.0)
        assert len(during) > 20
        assert sorted(during)[len(during) // 2] < 0.2, "a broker that is away must not slow requests"
        # A server that starts while the broker is away serves too; its events wait
        # (default timeout, a minute) and go once the broker is back.
        late = ferry_factory.start(args=["--payload-log", sink], name="kafka-late")
        early = hammer(late, "early", 1.0)
        fh.wait_until(lambda: events_total(server, "failed") == 2 * len(during), 20,
                      "events of the outage failed at the 3 s timeout")
        assert fh.http_request("GET", f"{server.base}/v2/health/ready").status_code == 200
    finally:
        kafka_broker.start()

    after = hammer(server, "after", 1.0)
    want = {f"before-{i}" for i in range(len(before))} | {f"after-{i}" for i in range(len(after))} | \
           {f"early-{i}" for i in range(len(early))}
    got = events_of(kafka_broker, topic, 2 * len(want), timeout=60)
    ids = [e.get_extension("requestid") for _, e, _ in got]
    assert set(ids) == want, sorted(set(ids) ^ want)[:10]
    assert len(ids) == 2 * len(want), "each event once"
    fh.wait_until(lambda: events_total(server, "written") == 2 * (len(before) + len(after)), 10,
                  "the events before and after the outage counted written")
    fh.wait_until(lambda: events_total(late, "written") == 2 * len(early), 10,
                  "the late server's events counted written")
    assert events_total(late, "failed") == 0 and events_total(late, "dropped") == 0
    log = server.log_path.read_text(errors="replace")
    assert log.count("kafka events not delivered") == 1, "one warning for the whole outage"
    assert "kafka delivery resumed" in log


def test_sigterm_flushes_what_librdkafka_holds(kafka_broker, ferry_factory):
    topic = topic_name("flush")
    kafka_broker.create_topics([topic])
    # Batches would wait 30 s in librdkafka (linger.ms, passed through); SIGTERM must
    # send them at once.
    server = ferry_factory.start(args=["--payload-log", f"kafka://{kafka_broker.bootstrap}/{topic}",
                                       "--payload-log-kafka", "linger.ms=30000"], name="kafka-flush")
    for i in range(7):
        assert infer(server, f"flush-{i}")[1].status_code == 200
    time.sleep(0.5)
    t0 = time.monotonic()
    server.terminate()
    assert server.wait_exit(timeout=30) == 0
    assert time.monotonic() - t0 < 15
    got = events_of(kafka_broker, topic, 14, timeout=20)
    assert sorted({e.get_extension("requestid") for _, e, _ in got}) == sorted(f"flush-{i}" for i in range(7))
    assert len(got) == 14
