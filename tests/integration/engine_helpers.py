"""Helpers for the `ferry engine` tests (test_engine.py: REST gateway; test_engine_grpc.py:
gRPC gateway; test_engine_admin.py: admin API and CLI): the engine process, spec files,
the `ferry deploy / status / scale / delete / logs` commands, and a closed-loop load of
add_sub requests through either gateway with tritonclient. The `engines` fixture is in
conftest.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from tritonclient.utils import np_to_triton_dtype

import ferry_helpers as fh

REPLICA_START_TIMEOUT_S = 60.0


class FerryEngine(fh.FerryServer):
    """A `ferry engine` process: http_port is its REST gateway's, grpc_port its gRPC
    gateway's, admin_port its admin API's."""

    def __init__(self, binary: Path, state_dir: Path, spec: Path | None, log_path: Path, extra_args=()):
        super().__init__(binary, [], extra_args, log_path)
        self.state_dir = Path(state_dir)
        self.spec = spec
        self.admin_port = 0

    def _pick_ports(self) -> None:
        self.http_port, self.grpc_port, self.metrics_port, self.admin_port = fh.free_ports(4)

    @property
    def command(self) -> list[str]:
        cmd = [str(self.binary), "engine", "--state-dir", str(self.state_dir),
               "--http-address", "127.0.0.1", "--http-port", str(self.http_port),
               "--http-threads", "2", "--grpc-port", str(self.grpc_port), "--grpc-threads", "2",
               "--metrics-port", str(self.metrics_port),
               "--admin-address", "127.0.0.1", "--admin-port", str(self.admin_port), "--log-level", "info"]
        if self.spec is not None:
            cmd += ["--config", str(self.spec)]
        # FERRY_GRPC_TRANSPORT (native, the engine's default, or grpc++) picks what carries
        # the gateway's gRPC, to clients and to replicas, unless a test picks one itself.
        transport = os.environ.get("FERRY_GRPC_TRANSPORT")
        if transport and "--grpc-transport" not in self.extra_args:
            cmd += ["--grpc-transport", transport]
        return cmd + self.extra_args

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def status(self) -> dict:
        return json.loads((self.state_dir / "status.json").read_text())

    def revision(self, deployment: str, revision: str = "v1") -> dict:
        """The revision's serving instance (during a rolling update a revision also has an
        incoming or a retiring one)."""
        status = self.status()
        # An engine restarted on a state folder finds the last one's file until it writes its own.
        if status["pid"] != self.proc.pid:
            raise AssertionError(f"status.json is still engine {status['pid']}'s, not {self.proc.pid}'s")
        found = [r for r in status["revisions"] if r["deployment"] == deployment and r["revision"] == revision]
        for r in found:
            if r.get("role", "serving") == "serving":
                return r
        raise AssertionError(f"{deployment}/{revision} not serving in status.json: {found}")

    # admin API and CLI ------------------------------------------------------
    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def admin(self, method: str, path: str, **kw):
        """One request to the admin API (a requests.Response)."""
        return fh.http_request(method, self.admin_url + path, **kw)

    def cli(self, *args: str, timeout: float = 120, cwd: Path | None = None) -> subprocess.CompletedProcess:
        """`ferry ARGS --admin URL`, output captured as text."""
        return run_cli(self.binary, [*args, "--admin", self.admin_url], timeout=timeout, cwd=cwd)

    def cli_json(self, *args: str, timeout: float = 120, cwd: Path | None = None) -> dict:
        """`ferry ARGS --json`, which must exit 0; its parsed output."""
        p = self.cli(*args, "--json", timeout=timeout, cwd=cwd)
        assert p.returncode == 0, \
            f"ferry {' '.join(args)} exited {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}\n{self.describe(30)}"
        return json.loads(p.stdout)

    def wait_ready_replicas(self, deployment: str, count: int, revision: str = "v1",
                            timeout: float = REPLICA_START_TIMEOUT_S) -> list[dict]:
        def ready():
            r = self.revision(deployment, revision)
            reps = [x for x in r["replicas"] if x["state"] == "ready"]
            return reps if len(reps) == count and r["ready"] == count else None
        return fh.wait_until(ready, timeout, f"{count} ready replicas of {deployment}/{revision}",
                             on_timeout=lambda: self.describe(30))


def run_cli(binary: Path, args: list[str], timeout: float = 120, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Runs `ferry ARGS` (no FERRY_* variables from this process) and captures its output."""
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=timeout, env=fh.child_env(),
                          cwd=str(cwd) if cwd else None)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes; it only waits for its parent to reap it.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def write_spec(path: Path, body: str) -> Path:
    path.write_text(body)
    return path


def two_replica_spec(tmp_path: Path, repo: Path, extra: str = "") -> Path:
    return write_spec(tmp_path / "spec.yaml", f"""\
deployments:
- name: examples
  revisions:
  - name: v1
    model_repository: {repo}
    serve: {{http-threads: 1, intra-op-threads: 1}}
  replicas: {{min: 2, max: 2}}
  restart: {{initial_backoff: 100ms}}
{extra}""")


def _client_module(client):
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient

    return grpcclient if isinstance(client, grpcclient.InferenceServerClient) else httpclient


def infer_add_sub(client, inputs):
    """add_sub version 1 through a tritonclient.http or tritonclient.grpc client."""
    mod = _client_module(client)
    binary = {"binary_data": True} if mod.__name__.endswith("http") else {}
    infer_inputs = []
    for name, arr in inputs.items():
        inp = mod.InferInput(name, list(arr.shape), np_to_triton_dtype(arr.dtype))
        inp.set_data_from_numpy(arr, **binary)
        infer_inputs.append(inp)
    outputs = [mod.InferRequestedOutput(n, **binary) for n in fh.MODEL_OUTPUTS["add_sub"]]
    return client.infer("add_sub", infer_inputs, model_version="1", outputs=outputs)


def assert_add_sub_answers(client, repo: Path, batch: int = 1) -> None:
    """One add_sub inference through `client` matches onnxruntime on the same file."""
    inputs = fh.make_inputs("add_sub", batch)
    got = infer_add_sub(client, inputs)
    fh.assert_outputs_match({n: got.as_numpy(n) for n in fh.MODEL_OUTPUTS["add_sub"]},
                            fh.reference(repo, "add_sub", 1, inputs))


class ClosedLoop:
    """`clients` threads, each with its own tritonclient connection to the engine's REST
    (protocol="http") or gRPC ("grpc") gateway, sending add_sub requests back to back and
    checking every answer against onnxruntime, until stop(). `mark()` splits the count:
    requests started after it are counted in `after_mark`."""

    def __init__(self, engine: FerryEngine, repo: Path, clients: int = 8, protocol: str = "http"):
        self.inputs = fh.make_inputs("add_sub", 2, seed=3)
        self.expected = fh.reference(repo, "add_sub", 1, self.inputs)
        self.failures: list[str] = []
        self.total = self.after_mark = 0
        self._engine = engine
        self._protocol = protocol
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._marked = threading.Event()
        self._threads = [threading.Thread(target=self._worker) for _ in range(clients)]
        for t in self._threads:
            t.start()

    def _client(self):
        if self._protocol == "grpc":
            import tritonclient.grpc as grpcclient

            return grpcclient.InferenceServerClient(self._engine.grpc_url)
        import tritonclient.http as httpclient

        return httpclient.InferenceServerClient(self._engine.url, network_timeout=fh.HTTP_TIMEOUT_S)

    def _worker(self) -> None:
        c = self._client()
        try:
            while not self._stop.is_set():
                marked = self._marked.is_set()
                try:
                    r = infer_add_sub(c, self.inputs)
                    fh.assert_outputs_match({n: r.as_numpy(n) for n in fh.MODEL_OUTPUTS["add_sub"]}, self.expected)
                except Exception as exc:  # noqa: BLE001 - every failure is the test's business
                    with self._lock:
                        self.failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                with self._lock:
                    self.total += 1
                    self.after_mark += marked
        finally:
            c.close()

    def mark(self) -> None:
        self._marked.set()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)


def kill_one_under_load(engine: FerryEngine, repo: Path, victim: int, protocol: str = "http") -> ClosedLoop:
    """8 closed-loop clients for 3 s; `victim` (a replica's pid) gets SIGKILL after 1 s.
    Asserts that no request failed and some ran after the kill; returns the load."""
    load = ClosedLoop(engine, repo, clients=8, protocol=protocol)
    try:
        time.sleep(1.0)
        os.kill(victim, signal.SIGKILL)
        load.mark()
        time.sleep(2.0)
    finally:
        load.stop()
    assert load.failures == [], \
        f"{len(load.failures)} of {load.total + len(load.failures)} requests failed: {load.failures[:5]}"
    assert load.after_mark > 0, "no request ran after the kill"
    return load
