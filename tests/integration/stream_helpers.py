"""`ferry stream` processes for the tests and bench/stream_bench.py: FerryStream starts one on
a KafkaBroker (kafka_helpers) with its output in a log file, waits until the group gave it
partitions, reads its metrics, and stops it with SIGTERM (checking the exit code) or SIGKILL.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import ferry_helpers as fh


class FerryStream:
    """One `ferry stream` process, output to a log file."""

    def __init__(self, binary: Path, repo: Path, broker, log_path: Path, args: list[str]):
        self.metrics_port = fh.free_ports(1)[0]
        self.cmd = [str(binary), "stream", "--model-repository", str(repo), "--brokers", broker.bootstrap,
                    "--metrics-address", "127.0.0.1", "--metrics-port", str(self.metrics_port),
                    "--statistics-interval-ms", "1000",
                    # A member that vanished is noticed within seconds, not the default 45.
                    "--kafka", "session.timeout.ms=6000", "--kafka", "heartbeat.interval.ms=500",
                    *args]
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self._log = None

    def start(self, wait_assigned: bool = True) -> "FerryStream":
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(fh._orphan_guard() + self.cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=fh.child_env())
        if wait_assigned:
            fh.wait_until(lambda: self._alive() and "partitions assigned" in self.log(), 90,
                          "ferry stream to get partitions", on_timeout=lambda: self.log()[-3000:])
        return self

    def _alive(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"ferry stream exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
        return True

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def metrics(self):
        return fh.parse_metrics(fh.http_request("GET", f"http://127.0.0.1:{self.metrics_port}/metrics").text)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM; returns the exit code (the stream commits its open transaction first)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"ferry stream did not stop within {timeout}s:\n{self.log()[-3000:]}")
        self._log.close()
        return self.proc.returncode

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self._log.close()
