"""A real Apache Kafka broker for ferry's tests: single node, KRaft, on loopback.

The jars come from tools/kafka/install.sh (scripts/setup.sh runs it) and are linked
at third_party/kafka/libs. `KafkaBroker.start()` writes a server.properties for two
free ports in its own folder, formats the storage (`kafka.tools.StorageTool format
--standalone`), starts `kafka.Kafka` on Java 17 with a small heap, and waits until a
real client (confluent-kafka's AdminClient) sees the broker. `stop()` ends the JVM
(SIGTERM, then SIGKILL); the JVM also gets SIGKILL if the test runner dies
(PR_SET_PDEATHSIG), so no broker outlives a test session.

Used by conftest.py's `kafka_broker` fixture; importable by any test that needs Kafka
(the stream tests, the payload log's Kafka sink).
"""

from __future__ import annotations

import atexit
import base64
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Iterable

import ferry_helpers as fh

KAFKA_VERSION = "4.1.2"
KAFKA_LIBS = fh.REPO_ROOT / "third_party" / "kafka" / "libs"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0

# Small heap and a quick-to-start JIT: a test broker handles little data, and most of
# its start-up is class loading and JIT warm-up.
JVM_FLAGS = ["-Xms128m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
             "-Xss1m", "-Djava.awt.headless=true"]

_LIVE: list["KafkaBroker"] = []


def missing_kafka_message() -> str:
    return (f"Kafka {KAFKA_VERSION} jars not found at {KAFKA_LIBS}; run tools/kafka/install.sh "
            "(scripts/setup.sh runs it)")


def kafka_available() -> bool:
    return (KAFKA_LIBS / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file() and shutil.which("java") is not None


def _cluster_id() -> str:
    # What `StorageTool random-uuid` prints: 16 random bytes, URL-safe base64, no padding.
    # Like Kafka's own Uuid.randomUuid, never one that starts with "-": the storage tool's
    # argument parser would read it as an option ("--cluster-id: expected one argument").
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


class KafkaBroker:
    """One single-node KRaft broker (broker and controller in one JVM) in `workdir`.

    Attributes: .bootstrap ("127.0.0.1:PORT"), .port, .controller_port, .log_path,
    .start_seconds (wall time from launch to ready, measured).
    """

    def __init__(self, workdir: Path, extra_properties: dict[str, str] | None = None):
        self.workdir = Path(workdir)
        self.extra_properties = dict(extra_properties or {})
        self.proc: subprocess.Popen | None = None
        self.port = self.controller_port = 0
        self.log_path = self.workdir / "broker.log"
        self.start_seconds = 0.0
        self._log_file = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _java(self, main: str, args: Iterable[str], heap: list[str]) -> list[str]:
        return [shutil.which("java") or "java", *heap, "-cp", f"{KAFKA_LIBS}/*", main, *args]

    def _write_properties(self, first_start: bool) -> Path:
        if first_start:
            self.port, self.controller_port = fh.free_ports(2)
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.workdir / "data"),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
        }
        props.update(self.extra_properties)
        path = self.workdir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        return path

    def start(self) -> "KafkaBroker":
        """Format (first start only) and launch the broker; return once a client sees it.
        A restart after stop() keeps the ports and the data."""
        if not kafka_available():
            raise RuntimeError(missing_kafka_message())
        t0 = time.monotonic()
        first = self.port == 0
        self.workdir.mkdir(parents=True, exist_ok=True)
        props = self._write_properties(first)
        if first:
            fmt = subprocess.run(
                self._java("kafka.tools.StorageTool",
                           ["format", "--standalone", "-t", _cluster_id(), "-c", str(props)],
                           ["-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]),
                capture_output=True, text=True, timeout=60)
            if fmt.returncode != 0:
                raise RuntimeError(f"kafka storage format failed ({fmt.returncode}):\n{fmt.stdout}\n{fmt.stderr}")
        self._log_file = open(self.log_path, "ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "JAVA_TOOL"))}
        self.proc = subprocess.Popen(
            fh._orphan_guard() + self._java("kafka.Kafka", [str(props)],
                                            JVM_FLAGS + [f"-Dkafka.logs.dir={self.workdir}"]),
            stdout=self._log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=self.workdir, env=env, start_new_session=True)
        _LIVE.append(self)
        try:
            fh.wait_until(self._ready, START_TIMEOUT_S, f"Kafka broker on {self.bootstrap}",
                          interval=0.2, on_timeout=lambda: self.log_tail(30))
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - t0
        return self

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"Kafka broker exited with {self.proc.returncode}:\n{self.log_tail(30)}")
        # A plain connect first: a client made before the port is open only logs refusals.
        with socket.create_connection(("127.0.0.1", self.port), timeout=1):
            pass
        md = self.admin().list_topics(timeout=10)
        return bool(md.brokers)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no broker log)"

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, kill: bool = False) -> None:
        """End the JVM: SIGTERM (a clean shutdown), SIGKILL after STOP_TIMEOUT_S; kill=True
        sends SIGKILL at once (a broker that dies)."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT_S)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self in _LIVE:
            _LIVE.remove(self)

    # topics -----------------------------------------------------------------
    def admin(self):
        from confluent_kafka.admin import AdminClient

        return AdminClient({"bootstrap.servers": self.bootstrap})

    def create_topics(self, names: Iterable[str], partitions: int = 1) -> None:
        """Create topics (replication 1) and wait until the broker has their leaders."""
        from confluent_kafka.admin import NewTopic

        names = list(names)
        admin = self.admin()
        futures = admin.create_topics([NewTopic(n, num_partitions=partitions, replication_factor=1)
                                       for n in names], operation_timeout=30)
        for name, fut in futures.items():
            fut.result(timeout=40)

        def leaders_known():
            md = admin.list_topics(timeout=5)
            return all(n in md.topics and md.topics[n].error is None
                       and len(md.topics[n].partitions) == partitions
                       and all(p.leader >= 0 for p in md.topics[n].partitions.values()) for n in names)

        fh.wait_until(leaders_known, 30, f"leaders of topics {names}")

    # clients ----------------------------------------------------------------
    def producer(self, **conf):
        from confluent_kafka import Producer

        return Producer({"bootstrap.servers": self.bootstrap, "enable.idempotence": True, **conf})

    def produce(self, topic: str, messages: Iterable[tuple], partition: int | None = None) -> int:
        """Produce (key, value[, headers]) tuples and wait until all are acknowledged."""
        p = self.producer()
        errors: list[str] = []
        n = 0

        def on_delivery(err, _msg):
            if err is not None:
                errors.append(str(err))

        for m in messages:
            key, value = m[0], m[1]
            headers = m[2] if len(m) > 2 else None
            kw = {"partition": partition} if partition is not None else {}
            p.produce(topic, value=value, key=key, headers=headers, on_delivery=on_delivery, **kw)
            n += 1
            if n % 1000 == 0:
                p.poll(0)
        left = p.flush(30)
        assert left == 0 and not errors, f"produce to {topic}: {left} undelivered, errors {errors[:3]}"
        return n

    def consume_all(self, topic: str, expected: int, timeout: float = 60.0,
                    isolation: str = "read_committed", settle_s: float = 2.0) -> list:
        """Read `topic` from the beginning with a fresh group until `expected` messages
        arrived (then `settle_s` more, to catch extras) or `timeout` passed."""
        from confluent_kafka import Consumer, KafkaError

        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": f"reader-{uuid.uuid4().hex}",
                      "auto.offset.reset": "earliest", "enable.auto.commit": False,
                      "isolation.level": isolation})
        out = []
        try:
            c.subscribe([topic])
            deadline = time.monotonic() + timeout
            settle_until = None
            while time.monotonic() < deadline:
                if settle_until is None and len(out) >= expected:
                    settle_until = time.monotonic() + settle_s
                if settle_until is not None and time.monotonic() >= settle_until:
                    break
                msg = c.poll(0.2)
                if msg is None:
                    continue
                if msg.error():
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise AssertionError(f"consume {topic}: {msg.error()}")
                out.append(msg)
        finally:
            c.close()
        return out


def _stop_all() -> None:
    for b in list(_LIVE):
        b.stop()


atexit.register(_stop_all)
