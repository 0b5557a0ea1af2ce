"""A reload never drops a request: traffic keeps flowing, answered correctly, while
models are reloaded through the API (explicit mode) or change on disk (poll mode)."""

from __future__ import annotations

import shutil
import threading
import time

import requests

import ferry_helpers as fh

PATH = "/v2/models/add_sub/infer"  # no version: the latest ready one


class Traffic:
    """Sends add_sub requests back to back on one keep-alive connection and checks each
    answer against onnxruntime for the version the server says answered it."""

    def __init__(self, server, repo):
        self.server, self.repo = server, repo
        self.stop = threading.Event()
        self.ok = 0
        self.versions: set[str] = set()
        self.problems: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        session = requests.Session()
        seed = 0
        while not self.stop.is_set() and len(self.problems) < 5:
            seed += 1
            inputs = fh.make_inputs("add_sub", 1 + seed % 3, seed=seed)
            try:
                resp = session.post(f"{self.server.base}{PATH}", json=fh.json_request(inputs), timeout=10)
            except requests.RequestException as exc:
                self.problems.append(f"request {seed}: {exc!r}")
                continue
            if resp.status_code != 200:
                self.problems.append(f"request {seed}: status {resp.status_code} {resp.text[:200]}")
                continue
            header, outputs = fh.parse_infer_response(resp)
            version = header["model_version"]
            try:
                fh.assert_outputs_match(outputs, fh.reference(self.repo, "add_sub", version, inputs))
            except AssertionError as exc:
                self.problems.append(f"request {seed} (version {version}): {exc}")
                continue
            self.versions.add(version)
            self.ok += 1

    def __enter__(self):
        self.thread.start()
        fh.wait_until(lambda: self.ok >= 20 or self.problems, 10, "traffic to start")
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(15)


def test_explicit_reloads_under_traffic_drop_nothing(ferry_factory):
    repo = ferry_factory.new_repo("reload")
    server = ferry_factory.start(repos=repo, args=["--model-control-mode", "explicit"], name="reload")
    with Traffic(server, repo) as traffic:
        for _ in range(5):
            resp = server.post("/v2/repository/models/add_sub/load", timeout=30)
            assert resp.status_code == 200, resp.text
            before = traffic.ok
            fh.wait_until(lambda: traffic.ok > before + 5 or traffic.problems, 10, "traffic after reload")
    assert not traffic.problems, "\n".join(traffic.problems) + "\n" + server.describe()
    assert traffic.ok > 50
    assert traffic.versions == {"2"}


def test_new_version_on_disk_takes_over_without_errors(ferry_factory):
    repo = ferry_factory.new_repo("poll-reload")
    server = ferry_factory.start(repos=repo, args=["--model-control-mode", "poll", "--repository-poll-secs", "1"],
                                 name="poll-reload")
    with Traffic(server, repo) as traffic:
        # Version 3 is a copy of version 1's graph, so answers tell the versions apart.
        staging = repo / "add_sub" / ".staging3"
        shutil.copytree(repo / "add_sub" / "1", staging)
        staging.rename(repo / "add_sub" / "3")
        fh.wait_until(lambda: "3" in traffic.versions or traffic.problems, 15, "version 3 to serve traffic",
                      on_timeout=server.describe)
        served_by_3 = traffic.ok
        fh.wait_until(lambda: traffic.ok > served_by_3 + 20 or traffic.problems, 10, "more traffic on version 3")
    assert not traffic.problems, "\n".join(traffic.problems) + "\n" + server.describe()
    assert {"2", "3"} <= traffic.versions
