"""The test broker itself (kafka_helpers.KafkaBroker, Apache Kafka 4.1.2 from the jars that
tools/kafka/install.sh fetches), before any ferry test depends on it: it starts, takes a
consumer group with committed offsets and a committed and an aborted transaction, and
leaves no JVM behind when stopped. The client is confluent-kafka (its own librdkafka);
Debian's librdkafka 2.0.2 meets the broker in test_stream.py.
"""

from __future__ import annotations

import uuid

import pytest

import kafka_helpers as kh


def test_group_commit_and_transactions(kafka_broker):
    from confluent_kafka import Consumer, Producer, TopicPartition

    topic = f"selftest-{uuid.uuid4().hex[:8]}"
    kafka_broker.create_topics([topic], partitions=2)
    p = Producer({"bootstrap.servers": kafka_broker.bootstrap, "transactional.id": f"t-{topic}"})
    p.init_transactions(30)
    p.begin_transaction()
    for i in range(5):
        p.produce(topic, key=b"c%d" % i, value=b"committed")
    p.commit_transaction(30)
    p.begin_transaction()
    p.produce(topic, key=b"a", value=b"aborted")
    p.flush(10)
    p.abort_transaction(30)

    committed = kafka_broker.consume_all(topic, 5, settle_s=1.0)
    assert sorted(m.key() for m in committed) == [b"c%d" % i for i in range(5)]
    everything = kafka_broker.consume_all(topic, 6, settle_s=1.0, isolation="read_uncommitted")
    assert b"aborted" in [m.value() for m in everything]

    group = f"g-{topic}"
    c = Consumer({"bootstrap.servers": kafka_broker.bootstrap, "group.id": group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    got = 0
    while got < 5:
        m = c.poll(10)
        assert m is not None, "no message from the group consumer"
        assert not m.error(), m.error()
        got += 1
        c.commit(message=m, asynchronous=False)
    c.close()
    c2 = Consumer({"bootstrap.servers": kafka_broker.bootstrap, "group.id": group})
    offsets = c2.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=10)
    c2.close()
    assert sum(tp.offset for tp in offsets if tp.offset >= 0) >= 5


def test_stop_leaves_no_jvm(tmp_path):
    if not kh.kafka_available():
        pytest.skip(kh.missing_kafka_message())
    b = kh.KafkaBroker(tmp_path / "kafka").start()
    pid = b.proc.pid
    assert b.start_seconds > 0
    b.stop()
    import os
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
