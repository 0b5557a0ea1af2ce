"""Fixtures for ferry's integration tests.

The server binary comes from $FERRY_BIN (default <repo>/build/dev/ferry).  A
session-wide server serves the example repository (generated into a temporary
folder by examples/generate_models.py); `ferry_factory` / `ferry_module_factory`
start extra servers with their own flags or repositories.  Every server listens
on 127.0.0.1 only, on ports picked free at start, and must exit with code 0
within 15 s of SIGTERM.  When a test fails, the tail of each server log that was
active during it is attached to the report.
"""

from __future__ import annotations

import os
import time

# The tests use grpcio in this process and spawn servers from it; gRPC's fork support
# is of no use here and its handlers are a hazard around fork, so keep it off.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

import pytest

import ferry_helpers as fh


@pytest.fixture(scope="session")
def ferry_binary():
    path = fh.ferry_bin()
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(fh.missing_binary_message(path), pytrace=False)
    return path


@pytest.fixture(scope="session")
def model_repo(tmp_path_factory):
    """The example repository, generated once per session.  Treat it as read-only."""
    return fh.generate_repo(tmp_path_factory.mktemp("models") / "repo")


@pytest.fixture(scope="session")
def ferry_server(ferry_binary, model_repo, tmp_path_factory):
    """A server in the default (none) model-control mode on the example repository.

    Attributes: .url ("127.0.0.1:PORT"), .metrics_url, .repo, .proc, .base ("http://...").
    """
    server = fh.FerryServer(ferry_binary, [model_repo], [],
                            tmp_path_factory.mktemp("ferry-session") / "ferry.log")
    server.start()
    yield server
    server.stop_and_check()


def _close_pool(pool: fh.ServerPool) -> None:
    problems = pool.close()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def ferry_factory(ferry_binary, model_repo, tmp_path):
    """Start extra servers: `ferry_factory.start(repos=None, args=[...], wait="ready")`.

    `ferry_factory.new_repo()` returns a private copy of the example repository.
    Servers still running at the end of the test get SIGTERM and must exit 0.
    """
    pool = fh.ServerPool(ferry_binary, model_repo, tmp_path)
    yield pool
    _close_pool(pool)


@pytest.fixture(scope="module")
def ferry_module_factory(ferry_binary, model_repo, tmp_path_factory):
    """Same as ferry_factory, for servers shared by the tests of one module."""
    pool = fh.ServerPool(ferry_binary, model_repo, tmp_path_factory.mktemp("ferry-module"))
    yield pool
    _close_pool(pool)


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory):
    """One single-node Kafka broker (KRaft, loopback, free ports) for the whole session:
    a kafka_helpers.KafkaBroker. Skips when the jars are missing (tools/kafka/install.sh),
    unless FERRY_REQUIRE_KAFKA is set (then it fails). Tests create their own topics
    (`kafka_broker.create_topics([...], partitions=N)`) with names of their own."""
    import kafka_helpers as kh

    if not kh.kafka_available():
        if os.environ.get("FERRY_REQUIRE_KAFKA"):
            pytest.fail(kh.missing_kafka_message(), pytrace=False)
        pytest.skip(kh.missing_kafka_message())
    broker = kh.KafkaBroker(tmp_path_factory.mktemp("kafka"))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def engines(ferry_binary, tmp_path):
    """Start `ferry engine` processes: `engines(spec, state_dir, wait="live", name="engine")`
    returns an engine_helpers.FerryEngine. Engines still running at the end of the test
    get SIGTERM and must exit 0."""
    from engine_helpers import FerryEngine

    started: list[FerryEngine] = []

    def start(spec, state_dir, wait: str = "live", name: str = "engine", extra_args=()) -> FerryEngine:
        e = FerryEngine(ferry_binary, state_dir, spec, tmp_path / f"{name}-{len(started)}.log", extra_args)
        started.append(e)
        return e.start(wait=wait)

    yield start
    for e in started:
        if e.is_running():
            e.stop_and_check(timeout=40)


@pytest.fixture
def http(server, request):
    """A tritonclient.http client of the `server` fixture that the requesting module defines;
    its timeout is the module's HTTP_TIMEOUT_S when it sets one (slow models), else 10 s."""
    import tritonclient.http as httpclient

    timeout = getattr(request.module, "HTTP_TIMEOUT_S", fh.HTTP_TIMEOUT_S)
    c = httpclient.InferenceServerClient(server.url, network_timeout=timeout)
    yield c
    c.close()


@pytest.fixture
def grpc_client(server):
    """A tritonclient.grpc client of the `server` fixture that the requesting module defines."""
    import tritonclient.grpc as grpcclient

    c = grpcclient.InferenceServerClient(fh.grpc_url(server))
    yield c
    c.close()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    item._ferry_t0 = time.time()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    t0 = getattr(item, "_ferry_t0", 0.0)
    for server in fh.ALL_SERVERS:
        if server.started_at is None:
            continue
        if server.stopped_at is None or server.stopped_at >= t0:
            report.sections.append((f"ferry log tail ({server.log_path})", server.describe(40)))
