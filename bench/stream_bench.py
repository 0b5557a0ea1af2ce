"""ferry stream benchmark (run by bench/run_stream_bench.sh): for each delivery mode,
exactly-once (at the default and a 20 ms commit interval) and at-least-once, side by side
on one broker in one run,
  backlog   BENCH_BACKLOG V2 requests for mlp_classifier produced first, then the stream
            started: messages/s from its partitions' assignment to its last answer, as a read_committed
            reader (joined before the stream starts) sees them;
  paced     BENCH_RATE messages/s for BENCH_SECONDS seconds into a running stream: the
            end-to-end latency from just before each produce() to the reader receiving its
            answer (p50, p99, max).
The broker is kafka_helpers.KafkaBroker (Kafka 4.1.2, one node); the reader and the producer
are confluent-kafka, in this process. Every answer is checked to arrive exactly once.
Prints a Markdown table."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

import numpy as np  # noqa: E402

import ferry_helpers as fh  # noqa: E402
import kafka_helpers as kh  # noqa: E402
from stream_helpers import FerryStream  # noqa: E402

BACKLOG = int(os.environ.get("BENCH_BACKLOG", "20000"))
RATE = int(os.environ.get("BENCH_RATE", "500"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
BATCH = os.environ.get("BENCH_STREAM_BATCH", "64")
# (row label, --guarantee, more flags): exactly-once answers become visible when their
# transaction commits, so its latency follows --commit-interval-ms (default 100).
MODES = [("exactly-once", "exactly-once", []),
         ("exactly-once, --commit-interval-ms 20", "exactly-once", ["--commit-interval-ms", "20"]),
         ("at-least-once", "at-least-once", [])]


def log(msg):
    print(f"[stream-bench] {msg}", file=sys.stderr, flush=True)


def requests(n, seed):
    x = fh.make_inputs("mlp_classifier", n, seed)["input"]
    return [json.dumps(fh.json_request({"input": x[i:i + 1]})).encode() for i in range(n)]


def reader(broker, topic):
    from confluent_kafka import Consumer

    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"bench-{uuid.uuid4().hex}",
                  "auto.offset.reset": "earliest", "isolation.level": "read_committed",
                  "enable.auto.commit": False})
    assigned = []
    c.subscribe([topic], on_assign=lambda consumer, parts: assigned.append(parts))
    # Joined (and positioned) before the stream starts, so no answer waits on the reader.
    deadline = time.monotonic() + 60
    while not assigned and time.monotonic() < deadline:
        c.poll(0.2)
    assert assigned, "the reader got no partitions"
    return c


def read(c, n, timeout):
    """(key -> receive time) for n distinct keys; fails on a repeat."""
    got = {}
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        # One message per poll, stamped as it arrives: consume(N, t) returns only once N
        # messages are there or t has passed, which would add up to t to every latency.
        m = c.poll(0.2)
        if m is None or m.error():
            continue
        k = m.key().decode()
        assert k not in got, f"answer for {k} twice"
        got[k] = time.monotonic()
    assert len(got) == n, f"{len(got)} of {n} answers"
    return got


def run_mode(broker, binary, repo, work, guarantee, extra, tag):
    base = f"b{uuid.uuid4().hex[:6]}"
    args = ["--model", "mlp_classifier", "--guarantee", guarantee, "--batch-size", BATCH, *extra]
    # Backlog: all inputs first, then the stream.
    tin, tout = f"{base}.in", f"{base}.out"
    broker.create_topics([tin, tout, tout + ".dead-letter"], partitions=3)
    broker.produce(tin, [(f"k{i}".encode(), v) for i, v in enumerate(requests(BACKLOG, 1))])
    c = reader(broker, tout)
    s = FerryStream(binary, repo, broker, work / f"{tag}-backlog.log",
                    ["--input-topic", tin, "--output-topic", tout, *args]).start()
    assigned_at = time.monotonic()
    got = read(c, BACKLOG, 300)
    c.close()
    assert s.stop() == 0
    times = sorted(got.values())
    # From the group's assignment (or the first answer, if the log was read later), since
    # exactly-once answers appear a transaction at a time.
    backlog_rate = BACKLOG / max(1e-9, times[-1] - min(assigned_at, times[0]))

    # Paced: a running stream, inputs at RATE/s.
    tin, tout = f"{base}.pin", f"{base}.pout"
    broker.create_topics([tin, tout, tout + ".dead-letter"], partitions=3)
    s = FerryStream(binary, repo, broker, work / f"{tag}-paced.log",
                    ["--input-topic", tin, "--output-topic", tout, *args]).start()
    c = reader(broker, tout)
    n = int(RATE * SECONDS)
    bodies = requests(n, 2)
    sent = {}
    p = broker.producer(**{"linger.ms": 0})
    # A running producer knows the topic: without this lookup its first messages wait
    # while it discovers the topic's partitions, and that would be counted as the stream's.
    p.list_topics(tin, timeout=10)

    def produce():
        t0 = time.monotonic()
        for i, v in enumerate(bodies):
            wait = t0 + i / RATE - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            sent[f"k{i}"] = time.monotonic()
            p.produce(tin, key=f"k{i}", value=v)
            p.poll(0)
        p.flush(30)

    t = threading.Thread(target=produce)
    t.start()
    got = read(c, n, SECONDS + 120)
    t.join()
    c.close()
    assert s.stop() == 0
    lat = np.array([got[k] - sent[k] for k in got]) * 1000
    return backlog_rate, np.percentile(lat, 50), np.percentile(lat, 99), lat.max()


def main():
    binary = fh.ferry_bin()
    work = Path(tempfile.mkdtemp(prefix="ferry-stream-bench."))
    repo = fh.generate_repo(work / "repo")
    broker = kh.KafkaBroker(work / "kafka")
    broker.start()
    log(f"broker up in {broker.start_seconds:.1f}s")
    rows = []
    try:
        for label, g, extra in MODES:
            log(f"{label}: backlog of {BACKLOG}, then {RATE}/s for {SECONDS:.0f}s")
            rows.append((label, *run_mode(broker, binary, repo, work, g, extra, f"{g}{len(rows)}")))
    finally:
        broker.stop()
    print(f"| mode | backlog messages/s | paced at {RATE}/s: p50 ms | p99 ms | max ms |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for g, rate, p50, p99, mx in rows:
        print(f"| {g} | {rate:,.0f} | {p50:.1f} | {p99:.1f} | {mx:.1f} |")
    eo, al = rows[0][1], rows[-1][1]
    print(f"\nexactly-once / at-least-once throughput: {eo / al:.2f}")


if __name__ == "__main__":
    main()
