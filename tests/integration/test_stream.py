"""`ferry stream` against a real Kafka 4.1.2 broker (kafka_helpers, one per session), with
Debian's librdkafka 2.0.2 inside ferry and confluent-kafka as the tests' own client.

What a user would notice: every input gets its model's answer (compared with onnxruntime on
the same inputs), exactly once for a read_committed reader even when the stream process is
killed with SIGKILL and started again, or when two processes share the partitions; the
messages that fail, and only those, land in the dead-letter topic with the error; a schema
that does not fit the model is refused before the first message.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import ferry_helpers as fh
from stream_helpers import FerryStream

MODEL = "mlp_classifier"
MODEL_VERSION = "1"


@pytest.fixture
def streams(ferry_binary, model_repo, kafka_broker, tmp_path):
    """Start `ferry stream` processes: `streams(args)`; stopped (SIGTERM, exit 0 checked) at the end."""
    started: list[FerryStream] = []

    def start(args, wait_assigned=True, name="stream", repo=None) -> FerryStream:
        s = FerryStream(ferry_binary, repo or model_repo, kafka_broker, tmp_path / f"{name}-{len(started)}.log",
                        list(args))
        started.append(s)
        return s.start(wait_assigned)

    yield start
    problems = []
    for s in started:
        if s.proc is not None and s.proc.poll() is None:
            rc = s.stop()
            if rc != 0:
                problems.append(f"{s.log_path}: exit {rc}\n{s.log()[-2000:]}")
    assert not problems, "\n".join(problems)


def topics(broker, partitions: int = 3) -> tuple[str, str, str]:
    base = f"t{uuid.uuid4().hex[:8]}"
    names = (f"{base}.in", f"{base}.out", f"{base}.out.dead-letter")
    broker.create_topics(names, partitions=partitions)
    return names


def v2_messages(n: int, seed: int):
    x = fh.make_inputs(MODEL, n, seed)["input"]
    msgs = [(f"k{i}".encode(), json.dumps(fh.json_request({"input": x[i:i + 1]})).encode()) for i in range(n)]
    return x, msgs


def by_key(messages) -> dict[str, object]:
    return {m.key().decode(): m for m in messages}


def headers_of(msg) -> dict[str, str]:
    return {k: (v.decode() if v is not None else None) for k, v in (msg.headers() or [])}


def assert_answers(outputs: dict, x: np.ndarray, repo: Path, keys) -> None:
    """Each output holds the model's answer for its input row (onnxruntime on the same row)."""
    idx = [int(k[1:]) for k in keys]
    ref = fh.reference(repo, MODEL, MODEL_VERSION, {"input": x[idx]})
    for j, k in enumerate(keys):
        body = json.loads(outputs[k].value())
        assert body["model_name"] == MODEL and body["id"] == k, body
        got = {o["name"]: np.array(o["data"], dtype=fh.V2_TO_NP[o["datatype"]]).reshape(o["shape"])
               for o in body["outputs"]}
        fh.assert_outputs_match(got, {n: v[j:j + 1] for n, v in ref.items()})


def produce_over_time(broker, topic: str, msgs, seconds: float) -> threading.Thread:
    """Produce `msgs` spread over about `seconds`, in a thread (started)."""
    def run():
        chunks = 20
        step = max(1, len(msgs) // chunks)
        for i in range(0, len(msgs), step):
            broker.produce(topic, msgs[i:i + step])
            time.sleep(seconds / chunks)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


@pytest.mark.parametrize("guarantee", ["exactly-once", "at-least-once"])
def test_outputs_are_the_models_answers(kafka_broker, streams, model_repo, guarantee):
    tin, tout, tdead = topics(kafka_broker)
    n = 300
    x, msgs = v2_messages(n, seed=1)
    kafka_broker.produce(tin, msgs)
    s = streams(["--input-topic", tin, "--output-topic", tout, "--model", MODEL, "--guarantee", guarantee,
                 "--group", f"g-{tin}"])
    out = kafka_broker.consume_all(tout, n)
    keys = [m.key().decode() for m in out]
    assert Counter(keys) == Counter(f"k{i}" for i in range(n)), "each input answered exactly once"
    outputs = by_key(out)
    assert_answers(outputs, x, model_repo, sorted(outputs))
    # The source position travels in headers, and the output is keyed (so partitioned) like the input.
    inputs = by_key(kafka_broker.consume_all(tin, n, settle_s=0.5))
    for k, m in outputs.items():
        h = headers_of(m)
        assert h["ferry-source-topic"] == tin
        assert (int(h["ferry-source-partition"]), int(h["ferry-source-offset"])) == (
            inputs[k].partition(), inputs[k].offset())
        assert h["ferry-model"] == MODEL
    assert kafka_broker.consume_all(tdead, 0, settle_s=0.5) == []

    samples = s.metrics()
    assert fh.metric_sum(samples, "ferry_stream_messages_in_total", topic=tin) == n
    fh.wait_until(lambda: fh.metric_sum(s.metrics(), "ferry_stream_messages_out_total", topic=tout) == n, 10,
                  "messages_out to reach n")
    assert fh.metric_sum(samples, "ferry_stream_inference_duration_seconds_count") > 0
    # Lag per assigned partition, from librdkafka's statistics: all caught up once committed.
    def lag_caught_up():
        lags = fh.metric_samples(s.metrics(), "ferry_stream_consumer_lag", topic=tin)
        return len(lags) == 3 and all(v == 0 for _, _, v in lags)
    fh.wait_until(lag_caught_up, 20, "consumer lag 0 on each of the 3 partitions")
    if guarantee == "exactly-once":
        assert fh.metric_sum(s.metrics(), "ferry_stream_transactions_total", outcome="committed") >= 1
    assert s.stop() == 0


@pytest.mark.parametrize("guarantee", ["exactly-once", "at-least-once"])
def test_missing_output_topic_is_named_at_start_and_served_once_created(kafka_broker, streams, model_repo,
                                                                       guarantee):
    # The stream looks its output topics up before the first message (so its first answers
    # do not wait for the producer to find them); one the broker lacks is named in the log,
    # and the stream answers into it once it exists (the test broker does not auto-create).
    base = f"t{uuid.uuid4().hex[:8]}"
    tin, tout, tdead = f"{base}.in", f"{base}.out", f"{base}.out.dead-letter"
    kafka_broker.create_topics([tin, tdead], partitions=1)
    s = streams(["--input-topic", tin, "--output-topic", tout, "--model", MODEL, "--guarantee", guarantee,
                 "--group", f"g-{tin}"])
    warnings = [line for line in s.log().splitlines() if "output topic not known to the broker" in line]
    assert len(warnings) == 1, s.log()[-3000:]
    assert "flag=--output-topic" in warnings[0] and f"topic={tout}" in warnings[0], warnings[0]
    kafka_broker.create_topics([tout], partitions=1)
    x, msgs = v2_messages(20, seed=7)
    kafka_broker.produce(tin, msgs)
    outputs = by_key(kafka_broker.consume_all(tout, 20))
    assert sorted(outputs) == sorted(f"k{i}" for i in range(20))
    assert_answers(outputs, x, model_repo, sorted(outputs))


def test_the_model_header_picks_each_messages_model_and_version(kafka_broker, streams, model_repo):
    # No --model: every model of the repository is loaded, and each message names its own.
    tin, tout, tdead = topics(kafka_broker, partitions=2)
    n = 20
    x = fh.make_inputs(MODEL, n, seed=6)["input"]
    ab = fh.make_inputs("add_sub", n, seed=7)
    msgs = []
    for i in range(n):
        msgs.append((f"m{i}".encode(), json.dumps(fh.json_request({"input": x[i:i + 1]})).encode(),
                     [("ferry-model", MODEL.encode())]))
        msgs.append((f"a{i}".encode(), json.dumps(fh.json_request({k: v[i:i + 1] for k, v in ab.items()})).encode(),
                     [("ferry-model", b"add_sub"), ("ferry-model-version", b"1")]))
    kafka_broker.produce(tin, msgs)
    streams(["--input-topic", tin, "--output-topic", tout, "--group", f"g-{tin}"])
    out = by_key(kafka_broker.consume_all(tout, 2 * n))
    mlp_keys, ab_keys = [f"m{i}" for i in range(n)], [f"a{i}" for i in range(n)]
    assert sorted(out) == sorted(mlp_keys + ab_keys), "each message answered once"
    assert_answers(out, x, model_repo, mlp_keys)
    ref = fh.reference(model_repo, "add_sub", 1, ab)
    for i, k in enumerate(ab_keys):
        body = json.loads(out[k].value())
        assert body["model_name"] == "add_sub" and body["model_version"] == "1", body
        got = {o["name"]: np.array(o["data"], dtype=fh.V2_TO_NP[o["datatype"]]).reshape(o["shape"])
               for o in body["outputs"]}
        fh.assert_outputs_match(got, {name: v[i:i + 1] for name, v in ref.items()})
        h = headers_of(out[k])
        assert (h["ferry-model"], h["ferry-model-version"]) == ("add_sub", "1"), h
    assert kafka_broker.consume_all(tdead, 0, settle_s=0.5) == []


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_dead_letters_hold_exactly_the_bad_messages(kafka_broker, streams, model_repo, fmt):
    tin, tout, tdead = topics(kafka_broker, partitions=2)
    x = fh.make_inputs(MODEL, 40, seed=2)["input"]
    good = {}
    for i in range(40):
        row = x[i]
        good[f"k{i}"] = (",".join(repr(float(v)) for v in row) if fmt == "csv"
                         else json.dumps({"a": float(row[0]), "b": float(row[1]), "c": float(row[2]),
                                          "d": float(row[3])}))
    if fmt == "csv":
        bad = {"bad-cell": ("1,2,x,4", "column 'c'"), "bad-count": ("1,2,3", "3 cells"),
               "bad-empty": ("", "empty")}
    else:
        bad = {"bad-cell": ('{"a":1,"b":2,"c":"x","d":4}', "column 'c'"),
               "bad-missing": ('{"a":1,"b":2,"c":3}', "column 'd' is missing"),
               "bad-json": ("{not json", "not valid JSON")}
    unknown_model = ("1,2,3,4" if fmt == "csv" else '{"a":1,"b":2,"c":3,"d":4}')
    msgs = [(f"k{i}".encode(), good[f"k{i}"].encode()) for i in range(40)]
    # Bad messages interleaved with good ones, so they share batches.
    mixed = []
    bad_items = list(bad.items())
    for i, m in enumerate(msgs):
        mixed.append(m)
        if i in (3, 17, 31):
            k, (v, _) = bad_items[(3, 17, 31).index(i)]
            mixed.append((k.encode(), v.encode()))
    mixed.append((b"bad-model", unknown_model.encode(), [("ferry-model", b"no_such_model"), ("trace", b"t-1")]))
    kafka_broker.produce(tin, mixed)
    streams(["--input-topic", tin, "--output-topic", tout, "--model", MODEL, "--format", fmt, "--group", f"g-{tin}",
             "--columns", "a,b,c,d", "--map", "a:input,b:input,c:input,d:input"])
    out = kafka_broker.consume_all(tout, 40)
    assert sorted(m.key().decode() for m in out) == sorted(good), "every good message answered once"
    outputs = by_key(out)
    assert_answers(outputs, x, model_repo, sorted(outputs))
    dead = kafka_broker.consume_all(tdead, len(bad) + 1)
    assert sorted(m.key().decode() for m in dead) == sorted([*bad, "bad-model"]), "exactly the bad messages"
    for m in dead:
        k = m.key().decode()
        h = headers_of(m)
        assert h["ferry-source-topic"] == tin and int(h["ferry-source-offset"]) >= 0
        if k == "bad-model":
            assert "no_such_model" in h["ferry-error"], h
            assert h["ferry-error-stage"] == "decode" and h["trace"] == "t-1", h
            continue
        assert (m.value() or b"").decode() == bad[k][0], "the dead letter carries the input as it was"
        assert bad[k][1] in h["ferry-error"], h
        assert h["ferry-error-code"] == "INVALID_ARGUMENT" and h["ferry-error-stage"] == "decode", h


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_string_rows_feed_bytes_inputs_and_answers_hold_the_models_strings(kafka_broker, streams, tmp_path, fmt):
    # The string model of test_batch_bytes: text (BYTES) -> echo, word (BYTES) and code (INT64).
    from test_batch_bytes import ODD, VOCAB, build_repo
    repo = build_repo(tmp_path / "strings-repo")
    texts = VOCAB + ODD
    tin, tout, tdead = topics(kafka_broker, partitions=2)

    def encode(t: str) -> bytes:
        if fmt == "json":
            return json.dumps({"text": t}).encode()
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\r\n").writerow([t])
        return buf.getvalue().encode()

    good = {f"k{i}": t for i, t in enumerate(texts)}
    if fmt == "csv":
        bad = {"bad-count": (b"a,b", "2 cells"), "bad-utf8": (b"\xff\xfeok", "output 'echo'")}
    else:
        bad = {"bad-number": (b'{"text": 7}', "column 'text'"), "bad-utf8": (b'{"text": "\xff\xfeok"}', "output 'echo'")}
    mixed = []
    for i, (k, t) in enumerate(good.items()):
        mixed.append((k.encode(), encode(t)))
        if i in (2, 9):  # in the same batches as good rows
            k_bad, (v, _) = list(bad.items())[(2, 9).index(i)]
            mixed.append((k_bad.encode(), v))
    kafka_broker.produce(tin, mixed)
    streams(["--input-topic", tin, "--output-topic", tout, "--model", "strings", "--format", fmt, "--group",
             f"g-{tin}", "--columns", "text"], repo=repo)
    out = by_key(kafka_broker.consume_all(tout, len(good)))
    assert sorted(out) == sorted(good), "every good message answered once"
    ref = fh.reference(repo, "strings", 1, {"text": np.array(texts, dtype=object).reshape(-1, 1)})
    for i, k in enumerate(good):
        body = json.loads(out[k].value())
        got = {o["name"]: o for o in body["outputs"]}
        assert body["id"] == k and got["echo"]["datatype"] == "BYTES" and got["echo"]["shape"] == [1, 1], body
        assert got["echo"]["data"] == [texts[i]] == [ref["echo"][i][0]], body
        assert got["word"]["data"] == [ref["word"][i][0]], body
        assert got["code"]["data"] == [ref["code"][i][0]], body
    assert {"NAÏVE", "DATE, DRIED", "<unknown>"} <= {ref["word"][i][0] for i in range(len(texts))}
    dead = kafka_broker.consume_all(tdead, len(bad))
    assert sorted(m.key().decode() for m in dead) == sorted(bad), "exactly the bad messages"
    for m in dead:
        k = m.key().decode()
        h = headers_of(m)
        assert m.value() == bad[k][0], "the dead letter carries the input as it was"
        assert bad[k][1] in h["ferry-error"], h
        assert h["ferry-error-code"] == "INVALID_ARGUMENT", h
        assert h["ferry-error-stage"] == ("inference" if k == "bad-utf8" else "decode"), h


def test_schema_that_does_not_fit_is_refused_before_the_first_message(ferry_binary, model_repo):
    base = [str(ferry_binary), "stream", "--model-repository", str(model_repo), "--brokers", "127.0.0.1:1",
            "--input-topic", "i", "--output-topic", "o", "--metrics-port", "0", "--model", MODEL]
    cases = [
        (["--format", "csv", "--columns", "a,b,c"], ["input 'input'", "4 values"]),
        (["--format", "csv", "--columns", "a,b,c,d", "--map", "a:input,b:input,c:input,e:input"], ["column 'e'"]),
        (["--format", "json", "--columns", "x:3"], ["input 'input'"]),
        (["--format", "csv"], ["--columns"]),
        (["--format", "avro"], ["--format", "'avro'"]),
        (["--guarantee", "twice"], ["--guarantee"]),
        (["--kafka", "no.such.property=1"], ["no.such.property"]),
    ]
    for args, mentions in cases:
        p = subprocess.run(base + args, capture_output=True, text=True, timeout=60, env=fh.child_env())
        assert p.returncode == 2, f"{args}: exit {p.returncode}\n{p.stderr[-2000:]}"
        first = p.stderr.splitlines()
        msg = next((l for l in first if l.startswith("ferry stream:")), "")
        for m in mentions:
            assert m in msg, f"{args}: {m!r} not in {msg!r}\n{p.stderr[-1500:]}"


def test_kill9_and_restart_gives_each_input_exactly_one_output(kafka_broker, streams, model_repo):
    tin, tout, _ = topics(kafka_broker, partitions=3)
    n = 3000
    x, msgs = v2_messages(n, seed=3)
    args = ["--input-topic", tin, "--output-topic", tout, "--model", MODEL, "--instance-id", "replica-0",
            "--group", f"g-{tin}",
            "--batch-size", "16", "--commit-interval-ms", "50"]
    producer = produce_over_time(kafka_broker, tin, msgs, seconds=10)
    s = streams(args, name="killed")
    # Killed mid-stream: some outputs are committed, more are still to come.
    fh.wait_until(lambda: len(kafka_broker.consume_all(tout, n, timeout=2, settle_s=0)) > 200, 60,
                  "some committed outputs")
    s.kill()
    committed_at_kill = len(kafka_broker.consume_all(tout, n, timeout=3, settle_s=0.5))
    assert committed_at_kill < n, "the kill came too late to be mid-stream"
    s2 = streams(args, name="restarted")
    producer.join(60)
    out = kafka_broker.consume_all(tout, n, timeout=120)
    counts = Counter(m.key().decode() for m in out)
    missing = [f"k{i}" for i in range(n) if f"k{i}" not in counts]
    repeated = {k: c for k, c in counts.items() if c > 1}
    assert not missing and not repeated, f"{len(missing)} missing (e.g. {missing[:5]}), repeated {list(repeated.items())[:5]}"
    outputs = by_key(out)
    sample = sorted(outputs)[::97]
    assert_answers(outputs, x, model_repo, sample)
    assert s2.stop() == 0


def test_two_processes_in_one_group_split_the_partitions(kafka_broker, streams):
    tin, tout, _ = topics(kafka_broker, partitions=4)
    n = 2000
    _, msgs = v2_messages(n, seed=4)
    args = ["--input-topic", tin, "--output-topic", tout, "--model", MODEL, "--group", f"g-{tin}",
            "--batch-size", "16", "--commit-interval-ms", "50"]
    a = streams(args, name="a")
    producer = produce_over_time(kafka_broker, tin, msgs, seconds=8)
    time.sleep(1.0)
    b = streams(args, name="b")  # joins mid-stream: a rebalance with a transaction open
    producer.join(60)
    out = kafka_broker.consume_all(tout, n, timeout=120)
    counts = Counter(m.key().decode() for m in out)
    assert len(counts) == n and max(counts.values()) == 1, (
        f"{n - len(counts)} missing, {sum(1 for c in counts.values() if c > 1)} repeated")
    ins = [fh.metric_sum(s.metrics(), "ferry_stream_messages_in_total", topic=tin) for s in (a, b)]
    assert all(v > 0 for v in ins), f"both processes consumed: {ins}"
    assigned = [re.findall(r'partitions assigned.*?partitions="?([^" ]+)', s.log()) for s in (a, b)]
    last = [set(x[-1].split(",")) if x else set() for x in assigned]
    assert last[0] and last[1] and not (last[0] & last[1]), f"disjoint partitions: {last}"
    assert len(last[0] | last[1]) == 4, last
    assert a.stop() == 0 and b.stop() == 0


def test_broker_that_goes_away_is_retried_and_nothing_is_lost(ferry_binary, model_repo, tmp_path):
    """A broker of its own (the session's must stay up): killed mid-stream, started again
    on the same ports and data; the stream rides it out and every input is answered once."""
    import kafka_helpers as kh

    if not kh.kafka_available():
        if os.environ.get("FERRY_REQUIRE_KAFKA"):  # as the session's broker fixture does
            pytest.fail(kh.missing_kafka_message(), pytrace=False)
        pytest.skip(kh.missing_kafka_message())
    broker = kh.KafkaBroker(tmp_path / "kafka").start()
    s = None
    try:
        tin, tout, _ = topics(broker, partitions=2)
        n = 600
        _, msgs = v2_messages(n, seed=5)
        broker.produce(tin, msgs[:300])
        s = FerryStream(ferry_binary, model_repo, broker, tmp_path / "stream.log",
                        ["--input-topic", tin, "--output-topic", tout, "--model", MODEL,
                         "--group", f"g-{tin}", "--instance-id", "r0"]).start()
        fh.wait_until(lambda: len(broker.consume_all(tout, 300, timeout=3, settle_s=0)) == 300, 60,
                      "the first answers")
        broker.stop(kill=True)
        time.sleep(3)
        assert s.proc.poll() is None, f"ferry stream exited while the broker was away:\n{s.log()[-3000:]}"
        broker.start()
        broker.produce(tin, msgs[300:])
        out = broker.consume_all(tout, n, timeout=120)
        counts = Counter(m.key().decode() for m in out)
        assert len(counts) == n and max(counts.values()) == 1, (
            f"{n - len(counts)} missing, {sum(1 for c in counts.values() if c > 1)} repeated\n{s.log()[-3000:]}")
        assert s.stop() == 0
    finally:
        if s is not None and s.proc.poll() is None:
            s.kill()
        broker.stop()
