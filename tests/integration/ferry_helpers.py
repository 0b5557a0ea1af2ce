"""Shared helpers for ferry's integration tests: starting and stopping the server,
building requests by hand, reading responses, reference outputs and metrics.

Kept out of conftest.py so test modules can import it (`import ferry_helpers`).
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
GENERATOR = REPO_ROOT / "examples" / "generate_models.py"
DEFAULT_BIN = REPO_ROOT / "build" / "dev" / "ferry"

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
HTTP_TIMEOUT_S = 10.0
POLL_INTERVAL_S = 0.2

MODEL_NAMES = ("mlp_classifier", "add_sub", "int_ops")

# Output names of each example model, in the order the model declares them.
MODEL_OUTPUTS = {
    "mlp_classifier": ("probabilities", "label"),
    "add_sub": ("OUTPUT0", "OUTPUT1"),
    "int_ops": ("SUM", "PROD", "GREATER"),
}

# The example models' metadata: name -> (datatype, shape incl. the -1 batch dim).
EXPECTED_METADATA = {
    "mlp_classifier": {
        "inputs": {"input": ("FP32", [-1, 4])},
        "outputs": {"probabilities": ("FP32", [-1, 3]), "label": ("INT64", [-1, 1])},
    },
    "add_sub": {
        "inputs": {"INPUT0": ("FP32", [-1, 16]), "INPUT1": ("FP32", [-1, 16])},
        "outputs": {"OUTPUT0": ("FP32", [-1, 16]), "OUTPUT1": ("FP32", [-1, 16])},
    },
    "int_ops": {
        "inputs": {"X": ("INT64", [-1, 4]), "Y": ("INT64", [-1, 4])},
        "outputs": {"SUM": ("INT64", [-1, 4]), "PROD": ("INT64", [-1, 4]), "GREATER": ("BOOL", [-1, 4])},
    },
}

NP_TO_V2 = {
    np.dtype(np.bool_): "BOOL",
    np.dtype(np.uint8): "UINT8",
    np.dtype(np.uint16): "UINT16",
    np.dtype(np.uint32): "UINT32",
    np.dtype(np.uint64): "UINT64",
    np.dtype(np.int8): "INT8",
    np.dtype(np.int16): "INT16",
    np.dtype(np.int32): "INT32",
    np.dtype(np.int64): "INT64",
    np.dtype(np.float16): "FP16",
    np.dtype(np.float32): "FP32",
    np.dtype(np.float64): "FP64",
}
V2_TO_NP = {v: k for k, v in NP_TO_V2.items()}

IHCL = "Inference-Header-Content-Length"

# Every server started in this test session; conftest prints log tails from it on failures.
ALL_SERVERS: list["FerryServer"] = []


# --------------------------------------------------------------------------- misc


def ferry_bin() -> Path:
    return Path(os.environ.get("FERRY_BIN") or DEFAULT_BIN).resolve()


def missing_binary_message(path: Path) -> str:
    return (
        f"ferry server binary not found or not executable: {path}\n"
        "Build it first (the dev build writes build/dev/ferry) "
        "or point the FERRY_BIN environment variable at the binary."
    )


def wait_until(predicate: Callable[[], object], timeout: float, what: str,
               interval: float = POLL_INTERVAL_S, on_timeout: Callable[[], str] | None = None):
    """Call predicate until it returns a truthy value; fail with `what` after timeout."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - transient errors while polling
            last_exc = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_exc!r})" if last_exc else ""
            extra = ("\n" + on_timeout()) if on_timeout else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{detail}{extra}")
        time.sleep(interval)


@functools.cache
def under_address_sanitizer() -> bool:
    """Whether ferry_bin() is an AddressSanitizer build (its dynamic symbols hold the
    runtime's __asan_init)."""
    out = subprocess.run(["nm", "-D", str(ferry_bin())], capture_output=True, text=True, check=True).stdout
    return any(line.endswith(" __asan_init") for line in out.splitlines())


def rss_growth_bound(bytes_: int) -> int:
    """A bound on a process's RSS growth for a test that expects about `bytes_`: under
    AddressSanitizer, its quarantine keeps up to 256 MiB of freed memory resident too."""
    return bytes_ + (256 << 20 if under_address_sanitizer() else 0)


def vm_rss_bytes(pid: int) -> int:
    """The resident set size of process `pid`, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS line")


def free_ports(count: int) -> list[int]:
    """Distinct free TCP ports on 127.0.0.1 (held open together so they differ)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def generate_repo(dest: Path) -> Path:
    """Run examples/generate_models.py into dest and return dest."""
    proc = subprocess.run([sys.executable, str(GENERATOR), str(dest)],
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"generate_models.py failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return dest


def copy_repo(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


def http_request(method: str, url: str, **kw) -> requests.Response:
    """requests.request that reads the whole answer and then closes the connection.

    A bare requests.get/post leaves its keep-alive connection open for as long as the
    Response object lives (which, inside reference cycles, is until the next garbage
    collection), so a server's shutdown would depend on the test runner's GC.
    """
    kw.setdefault("timeout", HTTP_TIMEOUT_S)
    resp = requests.request(method, url, **kw)
    resp.close()
    return resp


def child_env() -> dict[str, str]:
    """The test process's environment without FERRY_* variables, so only flags configure the server."""
    return {k: v for k, v in os.environ.items() if not k.startswith("FERRY_")}


def _orphan_guard() -> list[str]:
    """A command prefix that has the server killed if the test runner dies.

    setpriv (util-linux) sets PR_SET_PDEATHSIG and execs the server. This replaces a
    Python preexec_fn on purpose: a preexec_fn forces a real fork() of this process,
    and with grpcio loaded its fork handlers can abort the child before exec (seen as
    a SIGABRT "Epoll1Poller ... epoll_wait error: Bad file descriptor" that looked like
    a server crash). Without it, subprocess spawns with vfork and no fork handlers run.
    """
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--"] if setpriv and sys.platform.startswith("linux") else []


# --------------------------------------------------------------------------- server


class FerryServer:
    """One ferry process on 127.0.0.1 with its output captured to a log file."""

    def __init__(self, binary: Path, repos: Iterable[Path], extra_args: Iterable[str], log_path: Path):
        self.binary = Path(binary)
        self.repos = [Path(r) for r in repos]
        self.extra_args = [str(a) for a in extra_args]
        self.log_path = Path(log_path)
        self.proc: subprocess.Popen | None = None
        self.http_port = self.grpc_port = self.metrics_port = 0
        self.started_at: float | None = None
        self.stopped_at: float | None = None
        self.returncode: int | None = None
        self.failure_reported = False  # a failed stop was already raised to a test
        self._log_file = None
        ALL_SERVERS.append(self)

    # addresses ------------------------------------------------------------
    @property
    def repo(self) -> Path:
        return self.repos[0]

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def base(self) -> str:
        return f"http://{self.url}"

    @property
    def metrics_url(self) -> str:
        return f"127.0.0.1:{self.metrics_port}"

    @property
    def command(self) -> list[str]:
        cmd = [str(self.binary), "serve"]
        for repo in self.repos:
            cmd += ["--model-repository", str(repo)]
        cmd += [
            "--http-address", "127.0.0.1",
            "--http-port", str(self.http_port),
            "--grpc-port", str(self.grpc_port),
            "--metrics-port", str(self.metrics_port),
            "--log-level", "info",
        ]
        # FERRY_GRPC_TRANSPORT=grpc++ (or native) runs every server of the session on that gRPC
        # transport (unless a test picks one itself); the child never sees FERRY_* variables.
        transport = os.environ.get("FERRY_GRPC_TRANSPORT")
        if transport and "--grpc-transport" not in self.extra_args:
            cmd += ["--grpc-transport", transport]
        return cmd + self.extra_args

    # lifecycle ------------------------------------------------------------
    def start(self, wait: str = "ready", timeout: float = START_TIMEOUT_S) -> "FerryServer":
        """Start the process and wait until GET /v2/health/<wait> answers 200.

        wait is "ready" (the default), "live" (for repositories where some model is
        meant to fail, which may keep the server from reporting ready) or "none".
        A start that dies because a picked port was taken meanwhile is retried.
        """
        for attempt in range(3):
            self._pick_ports()
            self._spawn()
            try:
                if wait != "none":
                    self._wait_health(wait, timeout)
                return self
            except AssertionError:
                died_on_port = self.proc.poll() is not None and re.search(
                    r"address already in use|EADDRINUSE", self.log_tail(40), re.IGNORECASE)
                if died_on_port and attempt < 2:
                    self._close_log()
                    continue
                self.kill()
                raise
        raise AssertionError("unreachable")

    def _pick_ports(self) -> None:
        self.http_port, self.grpc_port, self.metrics_port = free_ports(3)

    def _spawn(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self.log_path, "ab")
        self._log_file.write(("$ " + " ".join(self.command) + "\n").encode())
        self._log_file.flush()
        self.started_at = time.time()
        self.stopped_at = None
        self.returncode = None
        self.proc = subprocess.Popen(
            _orphan_guard() + self.command,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=child_env(),
            cwd=str(self.log_path.parent),
        )

    def _wait_health(self, which: str, timeout: float) -> None:
        def healthy():
            rc = self.proc.poll()
            if rc is not None:
                raise AssertionError(
                    f"ferry exited with code {rc} during startup\n{self.describe()}")
            try:
                return http_request("GET", f"{self.base}/v2/health/{which}", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        deadline = time.monotonic() + timeout
        while True:
            if healthy():
                return
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"ferry did not answer 200 on /v2/health/{which} within {timeout:.0f}s\n{self.describe()}")
            time.sleep(POLL_INTERVAL_S)

    def restart_on_same_ports(self, wait: str = "ready", timeout: float = START_TIMEOUT_S) -> "FerryServer":
        """Start the process again (after kill or stop) on the ports it had, as a restarted
        server would come back for its clients."""
        self._spawn()
        if wait != "none":
            self._wait_health(wait, timeout)
        return self

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self) -> None:
        if self.is_running():
            self.proc.send_signal(signal.SIGTERM)

    def wait_exit(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """Wait for the process to end; kill it and fail if it takes longer than timeout."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.failure_reported = True
            raise AssertionError(
                f"ferry did not exit within {timeout:.0f}s of SIGTERM (killed it)\n{self.describe()}")
        self.returncode = rc
        self.stopped_at = time.time()
        self._close_log()
        return rc

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM and wait; returns the exit code (also when it had already exited)."""
        if self.proc is None:
            return 0
        if self.returncode is not None:
            return self.returncode
        self.terminate()
        return self.wait_exit(timeout)

    def stop_and_check(self, timeout: float = STOP_TIMEOUT_S) -> None:
        rc = self.stop(timeout)
        assert rc == 0, f"ferry exited with code {rc} after SIGTERM (expected 0)\n{self.describe()}"

    def kill(self) -> None:
        if self.is_running():
            self.proc.kill()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if self.proc is not None and self.proc.poll() is not None and self.returncode is None:
            self.returncode = self.proc.returncode
            self.stopped_at = time.time()
        self._close_log()

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    # diagnostics ----------------------------------------------------------
    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"<no log: {exc}>"
        all_lines = text.splitlines()
        tail = all_lines[-lines:]
        # A sanitizer report's stacks come before its shadow-byte dump, which fills any
        # short tail: show the report from its start instead.
        for i, line in enumerate(all_lines):
            if "ERROR: AddressSanitizer" in line or "ERROR: LeakSanitizer" in line:
                tail = all_lines[i:i + max(lines, 120)]
                break
        return "\n".join(tail)

    def describe(self, lines: int = 60) -> str:
        return (f"command: {' '.join(self.command)}\nlog: {self.log_path}\n"
                f"--- last {lines} log lines ---\n{self.log_tail(lines)}\n--- end of log ---")

    # convenience ----------------------------------------------------------
    def get(self, path: str, **kw) -> requests.Response:
        return http_request("GET", self.base + path, **kw)

    def post(self, path: str, **kw) -> requests.Response:
        return http_request("POST", self.base + path, **kw)

    def accepted_peer_ports(self) -> set[int]:
        """Client ports of the TCP connections on the HTTP port that the server process has
        accepted (holds a descriptor for), read from Linux /proc."""
        inodes = set()
        for entry in Path(f"/proc/{self.proc.pid}/fd").iterdir():
            try:
                target = os.readlink(entry)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:["):-1])
        ports = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                lines = Path(table).read_text().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if local_port == self.http_port and fields[9] in inodes:
                    ports.add(remote_port)
        return ports


class ServerPool:
    """Starts extra servers on demand and stops them (expecting exit code 0) at teardown."""

    def __init__(self, binary: Path, default_repo: Path, work_dir: Path):
        self.binary = binary
        self.default_repo = default_repo
        self.work_dir = work_dir
        self.servers: list[FerryServer] = []
        self._repo_count = 0

    def start(self, repos: Iterable[Path] | Path | None = None, args: Iterable[str] = (),
              wait: str = "ready", name: str = "extra") -> FerryServer:
        if repos is None:
            repos = [self.default_repo]
        elif isinstance(repos, (str, Path)):
            repos = [repos]
        log = self.work_dir / f"ferry-{name}-{len(self.servers)}.log"
        server = FerryServer(self.binary, repos, args, log)
        self.servers.append(server)
        return server.start(wait=wait)

    def new_repo(self, name: str = "repo") -> Path:
        """A private copy of the example repository that a test may change."""
        self._repo_count += 1
        return copy_repo(self.default_repo, self.work_dir / f"{name}-{self._repo_count}")

    def close(self) -> list[str]:
        problems = []
        for server in self.servers:
            try:
                rc = server.stop()
            except AssertionError as exc:
                problems.append(str(exc))
                continue
            if rc != 0 and not server.failure_reported:
                problems.append(f"ferry exited with code {rc} after SIGTERM (expected 0)\n{server.describe()}")
        return problems


def start_with_models(pool: ServerPool, repo: Path, ready: Iterable[str], name: str, args: Iterable[str] = (),
                      timeout: float = 60.0) -> FerryServer:
    """Start a server on `repo` (where some models may be meant to fail, so it waits for
    live) and wait until every model in `ready` is ready."""
    srv = pool.start(repos=repo, args=args, wait="live", name=name)
    wait_models_ready(srv, ready, timeout)
    return srv


# --------------------------------------------------------------------------- models and reference


def make_inputs(model: str, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    if model == "mlp_classifier":
        return {"input": rng.standard_normal((batch, 4)).astype(np.float32)}
    if model == "add_sub":
        return {
            "INPUT0": rng.standard_normal((batch, 16)).astype(np.float32),
            "INPUT1": rng.standard_normal((batch, 16)).astype(np.float32),
        }
    if model == "int_ops":
        x = rng.integers(-1000, 1000, size=(batch, 4), dtype=np.int64)
        y = rng.integers(-1000, 1000, size=(batch, 4), dtype=np.int64)
        y[:, 0] = x[:, 0]  # equal elements: GREATER must be false there
        x[:, 3] = 3_000_000_000  # beyond int32, so a server narrowing to 32 bits gets caught
        return {"X": x, "Y": y}
    raise ValueError(model)


@functools.lru_cache(maxsize=None)
def _session(path: str):
    import onnxruntime as ort

    return ort.InferenceSession(path, providers=["CPUExecutionProvider"])


def reference(repo: Path, model: str, version: int | str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Outputs of onnxruntime on the same model file and inputs."""
    sess = _session(str(Path(repo) / model / str(version) / "model.onnx"))
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, inputs)))


def assert_tensor_equal(actual: np.ndarray, expected: np.ndarray, name: str = "") -> None:
    actual = np.asarray(actual)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != expected {expected.shape}"
    if expected.dtype.kind == "f":
        assert actual.dtype.kind == "f", f"{name}: dtype {actual.dtype}, expected {expected.dtype}"
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-6, err_msg=name)
    else:
        assert actual.dtype == expected.dtype, f"{name}: dtype {actual.dtype}, expected {expected.dtype}"
        np.testing.assert_array_equal(actual, expected, err_msg=name)


def assert_outputs_match(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray],
                         names: Iterable[str] | None = None) -> None:
    names = list(names) if names is not None else list(expected)
    assert sorted(actual) == sorted(names), f"outputs {sorted(actual)}, expected {sorted(names)}"
    for name in names:
        assert_tensor_equal(actual[name], expected[name], name)


# --------------------------------------------------------------------------- raw HTTP requests


def json_tensor(name: str, arr: np.ndarray, nested: bool = False) -> dict:
    arr = np.asarray(arr)
    return {
        "name": name,
        "shape": list(arr.shape),
        "datatype": NP_TO_V2[arr.dtype],
        "data": arr.tolist() if nested else arr.reshape(-1).tolist(),
    }


def json_request(inputs: dict[str, np.ndarray], outputs: Iterable[str] | None = None,
                 request_id: str | None = None, nested: bool = False) -> dict:
    body: dict = {"inputs": [json_tensor(n, a, nested) for n, a in inputs.items()]}
    if outputs is not None:
        body["outputs"] = [{"name": n} for n in outputs]
    if request_id is not None:
        body["id"] = request_id
    return body


def binary_request(inputs: dict[str, np.ndarray], binary_inputs: Iterable[str] | None = None,
                   outputs: dict[str, bool] | None = None, parameters: dict | None = None,
                   request_id: str | None = None) -> tuple[bytes, dict[str, str]]:
    """Body and headers for a binary_tensor_data request.

    binary_inputs: names sent in the binary tail (default: all); the rest go as JSON data.
    outputs: requested outputs mapped to their binary_data flag (None: list none).
    """
    binary_inputs = set(inputs if binary_inputs is None else binary_inputs)
    header: dict = {"inputs": []}
    tail = b""
    for name, arr in inputs.items():
        arr = np.ascontiguousarray(arr)
        if name in binary_inputs:
            raw = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
            header["inputs"].append({"name": name, "shape": list(arr.shape),
                                     "datatype": NP_TO_V2[arr.dtype],
                                     "parameters": {"binary_data_size": len(raw)}})
            tail += raw
        else:
            header["inputs"].append(json_tensor(name, arr))
    if outputs is not None:
        header["outputs"] = [{"name": n, "parameters": {"binary_data": b}} for n, b in outputs.items()]
    if parameters:
        header["parameters"] = parameters
    if request_id is not None:
        header["id"] = request_id
    head = json.dumps(header).encode()
    return head + tail, {IHCL: str(len(head))}


def parse_infer_body(body: bytes, header_length: int | None) -> tuple[dict, dict[str, np.ndarray]]:
    """Split an infer response body (already decompressed) into its JSON and numpy outputs."""
    if header_length is None:
        head, tail = body, b""
    else:
        head, tail = body[:header_length], body[header_length:]
    doc = json.loads(head)
    outputs: dict[str, np.ndarray] = {}
    offset = 0
    for out in doc.get("outputs", []):
        dtype = V2_TO_NP[out["datatype"]]
        shape = tuple(out["shape"])
        size = (out.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            assert "data" not in out, f"binary output {out['name']} also carries JSON data"
            chunk = tail[offset:offset + size]
            assert len(chunk) == size, f"binary tail too short for {out['name']}"
            offset += size
            outputs[out["name"]] = np.frombuffer(chunk, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(shape)
        else:
            outputs[out["name"]] = np.array(out["data"], dtype=dtype).reshape(shape)
    assert offset == len(tail), f"{len(tail) - offset} unexplained bytes after the binary outputs"
    return doc, outputs


def parse_infer_response(resp: requests.Response) -> tuple[dict, dict[str, np.ndarray]]:
    hl = resp.headers.get(IHCL)
    return parse_infer_body(resp.content, int(hl) if hl is not None else None)


def error_message(resp: requests.Response) -> str:
    """The message of a `{"error": "..."}` body; fails if the body has another shape."""
    try:
        doc = resp.json()
    except ValueError:
        raise AssertionError(f"error body is not JSON: status {resp.status_code}, body {resp.content[:300]!r}")
    assert isinstance(doc, dict) and isinstance(doc.get("error"), str) and doc["error"], \
        f"error body is not {{\"error\": \"...\"}}: {doc!r}"
    return doc["error"]


def assert_error(resp: requests.Response, status: int | Iterable[int], *mentions: str | tuple[str, ...]) -> str:
    """Assert status and a JSON error body whose message contains each mention.

    A tuple mention passes when any one of its strings is in the message.
    """
    statuses = (status,) if isinstance(status, int) else tuple(status)
    assert resp.status_code in statuses, \
        f"status {resp.status_code}, expected {statuses}; body {resp.content[:500]!r}"
    msg = error_message(resp)
    for mention in mentions:
        options = mention if isinstance(mention, tuple) else (mention,)
        assert any(o in msg for o in options), f"error message {msg!r} does not mention {' or '.join(options)!r}"
    return msg


# --------------------------------------------------------------------------- metrics


_SAMPLE_RE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)(?:\s+\S+)?\s*$")
_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Prometheus text to (sample name, labels, value) triples."""
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        text_string_to_metric_families = None
    if text_string_to_metric_families is not None:
        return [(s.name, dict(s.labels), float(s.value))
                for fam in text_string_to_metric_families(text) for s in fam.samples]
    samples = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE_RE.match(line)
        assert m, f"unparseable metrics line: {line!r}"
        labels = {k: bytes(v, "utf-8").decode("unicode_escape") for k, v in _LABEL_RE.findall(m["labels"] or "")}
        samples.append((m["name"], labels, float(m["value"])))
    return samples


def metric_sum(samples, name: str, **labels: str) -> float:
    return sum(v for n, l, v in samples if n == name and all(l.get(k) == val for k, val in labels.items()))


def metric_samples(samples, name: str, **labels: str):
    return [(n, l, v) for n, l, v in samples if n == name and all(l.get(k) == val for k, val in labels.items())]


# --------------------------------------------------------------------------- gRPC


def assert_repository_index(client, ready: Iterable[str], unavailable: dict[str, Iterable[str]],
                            absent_from_reason: dict[str, str] | None = None) -> None:
    """Checks a tritonclient.http client's repository index: every model in `ready` is
    READY; every model in `unavailable` is UNAVAILABLE with each given text in its
    reason; `absent_from_reason` maps a model to text its reason must NOT hold (such as
    a framework's stack trace)."""
    by_name = {e["name"]: e for e in client.get_model_repository_index()}
    for name in ready:
        assert by_name.get(name, {}).get("state") == "READY", by_name.get(name)
    for name, mentions in unavailable.items():
        entry = by_name.get(name)
        assert entry is not None and entry.get("state") == "UNAVAILABLE", entry
        for text in mentions:
            assert text in entry.get("reason", ""), f"{name}: {text!r} not in {entry.get('reason')!r}"
    for name, text in (absent_from_reason or {}).items():
        assert text not in by_name[name].get("reason", ""), by_name[name]


def concurrent_http_clients(server: FerryServer, clients: int, requests_each: int,
                            check: Callable[[object, int, int], None]) -> list[str]:
    """Runs check(client, i, j) for request j of client i, each client a thread with its
    own tritonclient.http connection, all at once; returns what failed (assertion
    messages, other exceptions) for the caller to assert empty."""
    import threading

    import tritonclient.http as httpclient

    failures: list[str] = []

    def worker(i: int) -> None:
        c = httpclient.InferenceServerClient(server.url, network_timeout=HTTP_TIMEOUT_S)
        try:
            for j in range(requests_each):
                try:
                    check(c, i, j)
                except AssertionError as exc:
                    failures.append(str(exc))
        except Exception as exc:  # noqa: BLE001 - reported to the caller
            failures.append(repr(exc))
        finally:
            c.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return failures


def grpc_url(server: FerryServer) -> str:
    """host:port of a server's gRPC endpoint (GRPCInferenceService, health, reflection)."""
    return f"127.0.0.1:{server.grpc_port}"


if not hasattr(FerryServer, "grpc_url"):
    FerryServer.grpc_url = property(grpc_url)


# --------------------------------------------------------------------------- readiness


def wait_models_ready(server: "FerryServer", models: Iterable[str], timeout: float = START_TIMEOUT_S) -> None:
    """Wait until every named model answers ready; for servers started with wait="live"
    because their repository also holds models that are meant to fail."""
    names = list(models)
    wait_until(lambda: all(server.get(f"/v2/models/{m}/ready").status_code == 200 for m in names), timeout,
               f"model(s) {', '.join(names)} to be ready", on_timeout=server.describe)


# --------------------------------------------------------------------------- plugins


def plugin_abi_version() -> tuple[int, int]:
    """FERRY_PLUGIN_API_VERSION_MAJOR/MINOR as include/ferry/plugin.h defines them."""
    text = (REPO_ROOT / "include" / "ferry" / "plugin.h").read_text()
    major = re.search(r"#define FERRY_PLUGIN_API_VERSION_MAJOR (\d+)", text)
    minor = re.search(r"#define FERRY_PLUGIN_API_VERSION_MINOR (\d+)", text)
    return int(major.group(1)), int(minor.group(1))


# --------------------------------------------------------------------------- a slow model

SLOW_MODEL_N = 1024  # the `slow` model takes x: FP32 [N, N] and gives y: FP32 [N, N]


def _slow_onnx(path: Path, repeats: int) -> None:
    import onnx
    from onnx import TensorProto, helper

    n = SLOW_MODEL_N
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((n, n)) / np.sqrt(n)).astype(np.float32)
    nodes, inits = [], [helper.make_tensor("W", TensorProto.FLOAT, [n, n], w.flatten().tolist())]
    prev = "x"
    for i in range(repeats):
        nodes.append(helper.make_node("MatMul", [prev, "W"], [f"h{i}"]))
        prev = f"h{i}"
    nodes.append(helper.make_node("Identity", [prev], ["y"]))
    graph = helper.make_graph(nodes, "slow", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n, n])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, n])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def write_slow_model(repo: Path, seconds: float = 2.5) -> float:
    """Writes `repo/slow`: a chain of large matrix products, sized on this machine to take
    about `seconds` (at least 8 products) on one thread. Returns the expected time."""
    import onnxruntime as ort

    probe = repo / "probe.onnx"
    _slow_onnx(probe, 4)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(probe), opts, providers=["CPUExecutionProvider"])
    x = np.ones((SLOW_MODEL_N, SLOW_MODEL_N), np.float32)
    t0 = time.monotonic()
    sess.run(None, {"x": x})
    per_matmul = max((time.monotonic() - t0) / 4, 1e-3)
    repeats = int(min(400, max(8, seconds / per_matmul)))
    probe.unlink()
    _slow_onnx(repo / "slow" / "1" / "model.onnx", repeats)
    (repo / "slow" / "config.pbtxt").write_text('parameters { key: "intra_op_thread_count" value: { string_value: "1" } }\n')
    return repeats * per_matmul
