"""`ferry engine`'s gRPC gateway with real `ferry serve` replicas: tritonclient.grpc,
grpcio stubs and grpcurl through it, compared with the replicas answering directly.

A module-wide engine serves two deployments of the example models (arith: add_sub and
int_ops on two replicas; classifier: mlp_classifier on one); the tests that kill replicas
or need a slow model start their own engine.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import time

import grpc
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tritonclient.grpc import service_pb2 as pb
from tritonclient.utils import InferenceServerException

import ferry_helpers as fh
import grpc_helpers as gh
from engine_helpers import FerryEngine, infer_add_sub, kill_one_under_load, pid_alive, two_replica_spec, write_spec

SERVICE = "inference.GRPCInferenceService"
GRPCURL = fh.REPO_ROOT / "third_party" / "bin" / "grpcurl"


@pytest.fixture(scope="module")
def engine(ferry_binary, model_repo, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("engine-grpc")
    spec = write_spec(tmp / "spec.yaml", f"""\
deployments:
- name: arith
  revisions:
  - name: v1
    models: [{model_repo / 'add_sub'}, {model_repo / 'int_ops'}]
    serve: {{http-threads: 1, intra-op-threads: 1}}
  replicas: 2
- name: classifier
  revisions:
  - name: v1
    models: [{model_repo / 'mlp_classifier'}]
    serve: {{http-threads: 1, intra-op-threads: 1}}
""")
    e = FerryEngine(ferry_binary, tmp / "state", spec, tmp / "engine.log").start(wait="live")
    e.wait_ready_replicas("arith", 2)
    e.wait_ready_replicas("classifier", 1)
    yield e
    e.stop_and_check(timeout=40)


@pytest.fixture
def client(engine):
    c = grpcclient.InferenceServerClient(engine.grpc_url)
    yield c
    c.close()


@pytest.fixture
def direct(engine):
    """A tritonclient.grpc client of one arith replica's own gRPC port."""
    replica = engine.wait_ready_replicas("arith", 2)[0]
    c = grpcclient.InferenceServerClient(f"127.0.0.1:{replica['grpc_port']}")
    yield c
    c.close()


def expect_rpc_error(fn, code: grpc.StatusCode, *mentions: str) -> str:
    with pytest.raises(InferenceServerException) as info:
        fn()
    assert info.value.status() == str(code), f"{info.value.status()}: {info.value.message()}"
    for m in mentions:
        assert m in info.value.message(), f"{info.value.message()!r} does not mention {m!r}"
    return info.value.message()


def test_infer_through_the_gateway_equals_the_replica_and_onnxruntime(engine, client, direct, model_repo):
    inputs = fh.make_inputs("add_sub", 4, seed=11)
    via_gateway = infer_add_sub(client, inputs)
    via_replica = infer_add_sub(direct, inputs)
    expected = fh.reference(model_repo, "add_sub", 1, inputs)
    for name in fh.MODEL_OUTPUTS["add_sub"]:
        fh.assert_tensor_equal(via_gateway.as_numpy(name), via_replica.as_numpy(name), name)
        fh.assert_tensor_equal(via_gateway.as_numpy(name), expected[name], name)
    assert via_gateway.get_response().model_name == "add_sub"
    assert via_gateway.get_response().model_version == "1"

    # The other deployment, and a request id that comes back.
    x = np.random.default_rng(2).standard_normal((3, 4)).astype(np.float32)
    got = client.infer("mlp_classifier", gh.infer_inputs({"input": x}), request_id="cls-1")
    assert got.get_response().id == "cls-1"
    want = fh.reference(model_repo, "mlp_classifier", 1, {"input": x})
    fh.assert_tensor_equal(got.as_numpy("probabilities"), want["probabilities"], "probabilities")


def test_responses_name_the_revision_that_answered(engine):
    with grpc.insecure_channel(engine.grpc_url) as ch:
        req = gh.infer_request("int_ops", {"X": np.arange(4, dtype=np.int64).reshape(1, 4),
                                           "Y": np.ones((1, 4), np.int64)}, "1")
        resp, call = gh.stub(ch).ModelInfer.with_call(req, timeout=gh.RPC_TIMEOUT_S,
                                                      metadata=[("x-request-tag", "abc")])
        assert dict(call.initial_metadata())["ferry-revision"] == "v1"
        assert gh.response_arrays(resp)["SUM"].tolist() == [[1, 2, 3, 4]]


def test_health_metadata_index_and_config_through_the_gateway(engine, client, direct):
    assert client.is_server_live() and client.is_server_ready()
    md = client.get_server_metadata()
    assert md.name == "ferry-engine" and md.version
    assert client.is_model_ready("add_sub") and client.is_model_ready("mlp_classifier", "1")
    assert client.is_model_ready("no_such_model") is False, "as ferry serve: an unknown model is not ready"
    assert client.get_model_metadata("add_sub") == direct.get_model_metadata("add_sub")
    assert client.get_model_metadata("int_ops", "1").versions == ["1"]
    assert client.get_model_config("add_sub") == direct.get_model_config("add_sub")
    stats = client.get_inference_statistics("add_sub")
    assert {s.name for s in stats.model_stats} == {"add_sub"}
    index = client.get_model_repository_index()
    assert [(m.name, m.state) for m in index.models] == [(m, "READY") for m in sorted(fh.MODEL_NAMES)]
    expect_rpc_error(lambda: client.get_inference_statistics(""), grpc.StatusCode.UNIMPLEMENTED, "one model")
    expect_rpc_error(lambda: client.load_model("add_sub"), grpc.StatusCode.FAILED_PRECONDITION,
                     "add_sub", "deployment spec")
    expect_rpc_error(lambda: client.unload_model("add_sub"), grpc.StatusCode.FAILED_PRECONDITION, "add_sub")

    with grpc.insecure_channel(engine.grpc_url) as ch:
        health = health_pb2_grpc.HealthStub(ch)
        for service in ("", SERVICE, "add_sub", "mlp_classifier"):
            got = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=gh.RPC_TIMEOUT_S).status
            assert got == health_pb2.HealthCheckResponse.SERVING, service
        with pytest.raises(grpc.RpcError) as err:
            health.Check(health_pb2.HealthCheckRequest(service="no_such_model"), timeout=gh.RPC_TIMEOUT_S)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_unknown_model_is_not_found_as_ferry_serve_says(client, direct):
    inputs = gh.infer_inputs(fh.make_inputs("add_sub", 1))
    from_gateway = expect_rpc_error(lambda: client.infer("no_such_model", inputs), grpc.StatusCode.NOT_FOUND)
    from_replica = expect_rpc_error(lambda: direct.infer("no_such_model", inputs), grpc.StatusCode.NOT_FOUND)
    assert from_gateway == from_replica == "Request for unknown model: 'no_such_model' is not found"
    expect_rpc_error(lambda: client.get_model_metadata("no_such_model"), grpc.StatusCode.NOT_FOUND,
                     "'no_such_model'")
    # A version the replica lacks is the replica's answer, forwarded.
    assert expect_rpc_error(lambda: client.infer("add_sub", inputs, model_version="7"), grpc.StatusCode.NOT_FOUND) \
        == expect_rpc_error(lambda: direct.infer("add_sub", inputs, model_version="7"), grpc.StatusCode.NOT_FOUND)


def test_statistics_through_the_gateway_sum_every_replica(engine, client, model_repo):
    """ModelStatistics through the gRPC gateway asks every ready replica and sums their
    answers (as the REST gateway's GET .../stats), so tritonclient.grpc's
    get_inference_statistics counts every request, not only the picked replica's."""
    replicas = engine.wait_ready_replicas("arith", 2)
    directs = [grpcclient.InferenceServerClient(f"127.0.0.1:{r['grpc_port']}") for r in replicas]
    try:
        def successes(c):
            stats = c.get_inference_statistics("add_sub", "1", as_json=True)
            return [int(s["inference_stats"]["success"].get("count", 0)) for s in stats["model_stats"]]

        before = [successes(d)[0] for d in directs]
        sent = 40
        for _ in range(sent):
            infer_add_sub(client, fh.make_inputs("add_sub", 1))
        after = [successes(d)[0] for d in directs]
        served = [a - b for a, b in zip(after, before)]
        assert sum(served) == sent and min(served) > 0, served  # both replicas served some
        assert successes(client) == [sum(after)], (successes(client), after)
        total = client.get_inference_statistics("add_sub", "1", as_json=True)
        [merged] = total["model_stats"]
        parts = [d.get_inference_statistics("add_sub", "1", as_json=True)["model_stats"][0] for d in directs]
        assert int(merged["inference_count"]) == sum(int(p["inference_count"]) for p in parts)
        assert int(merged["last_inference"]) == max(int(p["last_inference"]) for p in parts)
        # Every version, each summed; an unknown version is the replica's own NOT_FOUND.
        every = client.get_inference_statistics("add_sub", as_json=True)
        assert sorted(s["version"] for s in every["model_stats"]) == ["1", "2"], every
        assert expect_rpc_error(lambda: client.get_inference_statistics("add_sub", "9"), grpc.StatusCode.NOT_FOUND) \
            == expect_rpc_error(lambda: directs[0].get_inference_statistics("add_sub", "9"), grpc.StatusCode.NOT_FOUND)
    finally:
        for d in directs:
            d.close()


def test_stream_through_the_gateway_in_order_with_in_band_errors(engine, client, model_repo):
    n = 40
    rng = np.random.default_rng(5)
    x0 = rng.standard_normal((n, 16)).astype(np.float32)
    x1 = rng.standard_normal((n, 16)).astype(np.float32)
    # Request i is add_sub, except: 7 names an unknown model, 13 a model of the other
    # deployment, 21 int_ops (same deployment: forwarded on the same stream).
    odd = {7: "no_such_model", 13: "mlp_classifier", 21: "int_ops"}
    collector = gh.StreamCollector(n)
    client.start_stream(callback=collector)
    try:
        for i in range(n):
            model = odd.get(i, "add_sub")
            if model == "int_ops":
                inputs = {"X": np.full((1, 4), i, np.int64), "Y": np.ones((1, 4), np.int64)}
            elif model == "mlp_classifier":
                inputs = {"input": np.zeros((1, 4), np.float32)}
            else:
                inputs = {"INPUT0": x0[i:i + 1], "INPUT1": x1[i:i + 1]}
            client.async_stream_infer(model, gh.infer_inputs(inputs), request_id=f"r{i}",
                                      model_version="1" if model == "add_sub" else "")
        items = collector.wait()
    finally:
        client.stop_stream()
    expected = fh.reference(model_repo, "add_sub", 1, {"INPUT0": x0, "INPUT1": x1})
    for i, (result, error) in enumerate(items):
        if i == 7:
            assert error is not None and "Request for unknown model: 'no_such_model' is not found" in str(error)
            continue
        if i == 13:
            assert error is not None, "a model of another deployment is refused in-band"
            assert "deployment 'classifier'" in str(error) and "deployment 'arith'" in str(error), str(error)
            continue
        assert error is None, f"response {i}: {error}"
        resp = result.get_response()
        assert resp.id == f"r{i}", f"response {i} has id {resp.id!r}: out of order"
        if i == 21:
            assert result.as_numpy("SUM").tolist() == [[i + 1] * 4]
            continue
        for name in fh.MODEL_OUTPUTS["add_sub"]:
            fh.assert_tensor_equal(result.as_numpy(name), expected[name][i:i + 1], f"r{i} {name}")
    # The stream counted as one request of its deployment: still answering after it.
    assert client.is_model_ready("add_sub")


def test_grpcurl_lists_describes_and_calls_through_the_gateway(engine):
    if not GRPCURL.is_file():
        pytest.skip(f"grpcurl not built ({GRPCURL}); run scripts/setup.sh")

    def grpcurl(*args, data=None):
        cmd = [str(GRPCURL), "-plaintext", "-max-time", "10", *(["-d", data] if data else []), engine.grpc_url, *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20)

    listed = grpcurl("list")
    assert listed.returncode == 0, listed.stderr
    assert {SERVICE, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= set(listed.stdout.split())
    described = grpcurl("describe", SERVICE)
    assert described.returncode == 0, described.stderr
    for rpc in ("ModelInfer", "ModelStreamInfer", "ModelMetadata", "ServerReady", "RepositoryIndex"):
        assert f"rpc {rpc}" in described.stdout, described.stdout
    ready = grpcurl(f"{SERVICE}/ModelReady", data='{"name": "int_ops"}')
    assert ready.returncode == 0, ready.stderr
    assert json.loads(ready.stdout) == {"ready": True}
    # ModelInfer with typed contents, written as JSON: forwarded as bytes all the same.
    infer = grpcurl(f"{SERVICE}/ModelInfer", data=json.dumps({
        "model_name": "int_ops",
        "inputs": [{"name": "X", "datatype": "INT64", "shape": [1, 4], "contents": {"int64_contents": [1, 2, 3, 4]}},
                   {"name": "Y", "datatype": "INT64", "shape": [1, 4], "contents": {"int64_contents": [4, 3, 2, 1]}}]}))
    assert infer.returncode == 0, infer.stderr
    out = json.loads(infer.stdout)
    assert out["model_name"] == "int_ops" and [o["name"] for o in out["outputs"]] == ["SUM", "PROD", "GREATER"]
    assert np.frombuffer(base64.b64decode(out["raw_output_contents"][0]), "<i8").tolist() == [5, 5, 5, 5]
    health = grpcurl("grpc.health.v1.Health/Check", data='{"service": "add_sub"}')
    assert json.loads(health.stdout) == {"status": "SERVING"}


def test_garbage_bytes_are_invalid_argument_naming_the_field(engine, client, model_repo):
    with grpc.insecure_channel(engine.grpc_url) as ch:
        raw = ch.unary_unary(f"/{SERVICE}/ModelInfer")  # no serializers: bytes in, bytes out
        cases = {
            b"\x0a\xff\x01add_sub": "malformed ModelInferRequest: field 1 (model_name) at byte 0: length 255 "
                                    "runs past the end of the message",
            b"\x0a\x07add_sub\x12\x80": "field 2 (model_version) at byte 9: truncated length",
            b"this is not a protobuf message": "malformed ModelInferRequest: field 14 at byte 0",
            b"\xff" * 16: "malformed ModelInferRequest: overlong field tag at byte 0",
        }
        for payload, mention in cases.items():
            err = gh.rpc_error(raw, payload)
            gh.assert_rpc_error(err, grpc.StatusCode.INVALID_ARGUMENT, mention)
        # In a stream, a malformed request gets an in-band error and the stream goes on.
        good = gh.infer_request("add_sub", fh.make_inputs("add_sub", 1), "1", request_id="after").SerializeToString()
        stream = ch.stream_stream(f"/{SERVICE}/ModelStreamInfer")
        answers = [pb.ModelStreamInferResponse.FromString(b)
                   for b in stream(iter([b"\x0a\xff\x01add_sub", good]), timeout=gh.RPC_TIMEOUT_S)]
    assert "field 1 (model_name)" in answers[0].error_message
    assert answers[1].error_message == "" and answers[1].infer_response.id == "after"
    infer_add_sub(client, fh.make_inputs("add_sub", 1))  # the gateway still serves


def test_kill9_of_a_replica_under_grpc_load_costs_no_request(engines, model_repo, tmp_path):
    engine = engines(two_replica_spec(tmp_path, model_repo), tmp_path / "state")
    before = engine.wait_ready_replicas("examples", 2)
    victim = before[0]["pid"]
    load = kill_one_under_load(engine, model_repo, victim, protocol="grpc")
    assert load.total >= 200, load.total
    after = engine.wait_ready_replicas("examples", 2)
    assert victim not in {r["pid"] for r in after} and not pid_alive(victim)
    grpc_counters = engine.status()["grpc_gateway"]
    samples = fh.parse_metrics(fh.http_request("GET", f"http://{engine.metrics_url}/metrics").text)
    assert fh.metric_sum(samples, "ferry_engine_requests_total", deployment="examples", protocol="grpc",
                         code="2xx") >= load.total
    assert fh.metric_sum(samples, "ferry_engine_requests_total", deployment="examples", protocol="grpc",
                         code="5xx") == 0
    assert fh.metric_sum(samples, "ferry_engine_upstream_retries_total", deployment="examples") == \
        grpc_counters["retries"] + engine.status()["gateway"]["retries"]
    assert grpc_counters["upstream_errors"] == 0
    # Each retry followed an UNAVAILABLE of the killed replica, counted against it.
    victim_index = str(next(r["index"] for r in before if r["pid"] == victim))
    assert fh.metric_sum(samples, "ferry_engine_upstream_errors_total", deployment="examples", replica=victim_index,
                         reason="unavailable") >= grpc_counters["retries"]
    print(f"\ngRPC kill test: {load.total} requests, {load.after_mark} after the kill, "
          f"{grpc_counters['retries']} retried")


def test_deadlines_admission_and_cold_start_over_grpc(engines, model_repo, tmp_path):
    slow_repo = tmp_path / "slow"
    # Sized for ~3 s; the gateway's request_timeout is 10 times shorter, so the model stays
    # slower than it on a machine busier or idler than when it was sized.
    fh.write_slow_model(slow_repo, seconds=3)
    spec = write_spec(tmp_path / "spec.yaml", f"""\
deployments:
- name: slow
  revisions:
  - name: v1
    model_repository: {slow_repo}
    serve: {{http-threads: 1}}
  gateway: {{max_in_flight: 1, request_timeout: 300ms}}
- name: lazy
  revisions:
  - name: v1
    models: [{model_repo / 'add_sub'}]
    serve: {{http-threads: 1, intra-op-threads: 1}}
  replicas: {{min: 0, max: 1}}
  autoscaling: {{stable_window: 2s, panic_window: 1s, scale_to_zero_after: 1s}}
""")
    engine = engines(spec, tmp_path / "state")
    engine.wait_ready_replicas("slow", 1)
    n = fh.SLOW_MODEL_N
    slow_req = gh.infer_request("slow", {"x": np.ones((n, n), np.float32)})
    with gh.channel(engine, max_message_bytes=8 * n * n) as ch:
        infer = gh.stub(ch).ModelInfer
        # The client's deadline, shorter than the model's time, reaches the replica.
        t0 = time.monotonic()
        with pytest.raises(grpc.RpcError) as err:
            infer(slow_req, timeout=0.2)
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - t0 < 1.0

        # Without one, gateway.request_timeout applies, and says so.
        err = gh.rpc_error(infer, slow_req, timeout=30)
        gh.assert_rpc_error(err, grpc.StatusCode.DEADLINE_EXCEEDED, "slow/v1/0", "gateway.request_timeout")

        # max_in_flight 1: of two calls at once, one is RESOURCE_EXHAUSTED (the other runs
        # into request_timeout).
        calls = [infer.future(slow_req, timeout=30) for _ in range(2)]
        codes = sorted(str(c.exception().code()) for c in calls)
        assert codes == sorted([str(grpc.StatusCode.DEADLINE_EXCEEDED), str(grpc.StatusCode.RESOURCE_EXHAUSTED)])
        over = next(c.exception() for c in calls if c.exception().code() == grpc.StatusCode.RESOURCE_EXHAUSTED)
        gh.assert_rpc_error(over, grpc.StatusCode.RESOURCE_EXHAUSTED, "deployment 'slow'", "gateway.max_in_flight")

    # Scaled to zero, a gRPC request waits for a replica, counted as demand, and succeeds.
    def at_zero():
        r = engine.revision("lazy")
        return r["desired"] == 0 and r["replicas"] == []
    fh.wait_until(at_zero, 30, "lazy to scale to zero", on_timeout=lambda: engine.describe(30))
    c = grpcclient.InferenceServerClient(engine.grpc_url)
    try:
        t0 = time.monotonic()
        got = infer_add_sub(c, fh.make_inputs("add_sub", 1))
        print(f"\nfirst gRPC request from zero replicas: {(time.monotonic() - t0) * 1000:.0f} ms")
        assert got.as_numpy("OUTPUT0").shape == (1, 16)
    finally:
        c.close()
    samples = fh.parse_metrics(fh.http_request("GET", f"http://{engine.metrics_url}/metrics").text)
    assert fh.metric_sum(samples, "ferry_engine_rejected_total", deployment="slow", reason="max_in_flight") == 1


@pytest.mark.parametrize("args", [(), ("--streaming",)], ids=["unary", "streaming"])
def test_perf_analyzer_runs_through_the_gateway(engine, args):
    perf_analyzer = fh.REPO_ROOT / "third_party" / "perf_analyzer" / "bin" / "perf_analyzer"
    if not perf_analyzer.is_file():
        pytest.skip(f"perf_analyzer not installed ({perf_analyzer}); run scripts/setup.sh")
    # Loose stability: this checks that it works through the gateway, not how fast (two
    # replicas behind one gateway on a busy machine vary from window to window).
    proc = subprocess.run([str(perf_analyzer), "-m", "add_sub", "-u", engine.grpc_url, "-i", "grpc", *args,
                           "--measurement-mode", "count_windows", "--measurement-request-count", "100",
                           "--max-trials", "4", "--stability-percentage", "1000", "--concurrency-range", "2"],
                          capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    count = re.search(r"Request count: ([0-9]+)", out)
    assert count and int(count.group(1)) >= 100, out
    assert "Throughput" in out, out


def test_an_unknown_grpc_transport_is_refused_naming_the_flag(ferry_binary, tmp_path):
    proc = subprocess.run([str(ferry_binary), "engine", "--state-dir", str(tmp_path / "state"),
                           "--grpc-transport", "grpcpp"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2, proc.stderr
    assert "--grpc-transport: 'grpcpp' is not native or grpc++" in proc.stderr, proc.stderr


def test_client_that_never_reads_is_stopped_at_the_gateway(engine, client, model_repo):
    """test_grpc_native's client that sends ModelStreamInfer requests but never takes the
    answers, against the gateway: its windows are held once the answers it does not read
    pile up, so it is stopped after a bounded amount; the native transport holds its
    upstream windows too, so the replicas' answers wait in the replicas (their own
    bounded output) rather than in the engine; and other clients are served meanwhile.
    (Before the upstream hold the engine's RSS grew by about what the client sent.)"""
    from test_grpc_native import flood_without_reading

    def serves() -> None:
        inputs = fh.make_inputs("add_sub", 1, seed=3)
        got = infer_add_sub(client, inputs)
        expected = fh.reference(model_repo, "add_sub", 1, inputs)
        for name in fh.MODEL_OUTPUTS["add_sub"]:
            fh.assert_tensor_equal(got.as_numpy(name), expected[name], name)

    replicas = [r["pid"] for r in engine.wait_ready_replicas("arith", 2)]
    rss_before = fh.vm_rss_bytes(engine.proc.pid)
    replicas_before = sum(fh.vm_rss_bytes(p) for p in replicas)
    c, sent = flood_without_reading(engine)
    try:
        grown = fh.vm_rss_bytes(engine.proc.pid) - rss_before
        replicas_grown = sum(fh.vm_rss_bytes(p) for p in replicas) - replicas_before
        print(f"never-reading client: sent {sent >> 20} MiB; engine RSS +{grown >> 20} MiB; "
              f"replicas' RSS +{replicas_grown >> 20} MiB")
        assert sent < 128 << 20, f"the gateway took {sent >> 20} MiB from a client that never reads"
        if os.environ.get("FERRY_GRPC_TRANSPORT", "native") != "native":
            # grpc++ carries the gateway: its own flow control, which lets more in.
            assert grown < fh.rss_growth_bound(192 << 20), \
                f"the engine's RSS grew {grown >> 20} MiB for a client that never reads"
        else:
            # The holds leave in the engine, per stream, 1 MiB of answers unsent to the
            # client and one 1 MiB upstream window; the client's first burst (its windows:
            # 32 MiB a connection) may pass through it while an upstream connection starts.
            assert grown < fh.rss_growth_bound(48 << 20), \
                f"the engine's RSS grew {grown >> 20} MiB for a client that never reads and sent {sent >> 20} MiB"
            if not fh.under_address_sanitizer():  # whose quarantine keeps either side's freed memory
                # The answers the client does not take wait in the replicas, not in the
                # engine (without the upstream hold: engine +40..54 MiB, replicas +6..22 MiB).
                assert grown < replicas_grown, \
                    f"the engine grew {grown >> 20} MiB and the replicas {replicas_grown >> 20} MiB: " \
                    "the answers are in the engine"
        serves()
    finally:
        c.close()
    serves()
