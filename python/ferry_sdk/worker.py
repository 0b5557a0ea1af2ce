"""The worker process ferry starts for each instance of a Python model.

Started as ``python -m ferry_sdk.worker --sock-fd 3 --shm-fd 4 --parent-pid PID``: fd 3
is a Unix SOCK_SEQPACKET socket to the server (one message per packet), fd 4 the
shared-memory file holding tensors. The first message (JSON) loads the model; then each
binary infer packet (_wire.py) names inputs in the region and gets a binary reply
naming outputs there.
Ends when the server closes the socket or dies (the worker watches its parent pid,
since PR_SET_PDEATHSIG follows the spawning thread, not the server process).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.util
import inspect
import json
import os
import socket
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Dict

from ferry_sdk import _tensors, _wire
from ferry_sdk.model import Model, ModelContext

MAX_MESSAGE = 1 << 20
MAX_ERROR = 16 << 10  # error text sent back; the full traceback goes to the log


def _watch_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(0)  # the server is gone: leave no orphan
        time.sleep(0.5)


def _last_line(exc: BaseException) -> str:
    lines = traceback.format_exception_only(type(exc), exc)
    text = lines[-1].strip() if lines else type(exc).__name__
    return text[:MAX_ERROR]


def _load_user_class(path: Path, wanted: str) -> type:
    spec = importlib.util.spec_from_file_location("ferry_user_model", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["ferry_user_model"] = module
    sys.path.insert(0, str(path.parent))  # model.py may import helpers beside it
    spec.loader.exec_module(module)
    if wanted:
        cls = getattr(module, wanted, None)
        if not inspect.isclass(cls) or not issubclass(cls, Model):
            raise ImportError(f"{path.name} defines no ferry_sdk.Model subclass '{wanted}' (config parameter model_class)")
        return cls
    found = [c for c in vars(module).values()
             if inspect.isclass(c) and issubclass(c, Model) and c is not Model and c.__module__ == module.__name__]
    if len(found) == 1:
        return found[0]
    if not found and inspect.isclass(getattr(module, "TritonPythonModel", None)):
        raise ImportError(f"{path.name} defines TritonPythonModel (Triton's pb_utils API), which ferry does not run: "
                          "derive the class from ferry_sdk.Model and define load() and predict(inputs)")
    if not found:
        raise ImportError(f"{path.name} defines no subclass of ferry_sdk.Model")
    names = ", ".join(sorted(c.__name__ for c in found))
    raise ImportError(f"{path.name} defines several ferry_sdk.Model classes ({names}): "
                      "name one with the config parameter model_class")


def _import_class(qualified: str) -> type:
    module, _, name = qualified.partition(":")
    return getattr(importlib.import_module(module), name)


def _load(msg: Dict[str, Any]) -> Model:
    config = msg["config"]
    params = {k: v.get("string_value", "") for k, v in config.get("parameters", {}).items()}
    ctx = ModelContext(name=msg["model"], version=int(msg["version"]), version_dir=Path(msg["version_dir"]),
                       model_file=Path(msg["model_file"]), config=config, parameters=params,
                       instance=int(msg.get("instance", 0)), max_batch_size=int(config.get("max_batch_size", 0)))
    cls = _import_class(msg["class"]) if msg.get("class") else _load_user_class(ctx.model_file, params.get("model_class", ""))
    model = cls()
    model.context = ctx
    model.load()
    return model


class Worker:
    def __init__(self, sock: socket.socket, shm_fd: int):
        self.sock = sock
        self.region = _tensors.Region(shm_fd)
        self.model: Model | None = None
        self.declared: Dict[str, str] = {}

    def send(self, obj: Dict[str, Any]) -> None:
        self.sock.sendall(json.dumps(obj, separators=(",", ":")).encode())

    def serve(self) -> int:
        buf = bytearray(MAX_MESSAGE)  # one receive buffer for the worker's life
        view = memoryview(buf)
        recv_into, send = self.sock.recv_into, self.sock.send
        while True:
            n = recv_into(buf)
            if not n:
                return 0  # the server closed the socket: unload
            packet = view[:n]
            if _wire.is_request(packet):
                send(self.infer(packet))
                continue
            msg = json.loads(bytes(packet))
            op = msg.get("op")
            if op == "load":
                try:
                    self.model = _load(msg)
                except BaseException as exc:  # noqa: BLE001 - every load failure goes back to the server
                    traceback.print_exc()
                    self.send({"ok": False, "error": _last_line(exc)})
                    return 1
                # What load() built lives as long as the worker: keep the cyclic GC from
                # walking it again on every collection of the per-request garbage.
                gc.collect()
                gc.freeze()
                reply: Dict[str, Any] = {"ok": True, "wire": _wire.WIRE_VERSION}
                described = self.model.describe_outputs() if msg.get("describe") else None
                if described:
                    # The config's outputs were a guess made before loading: the model's
                    # own datatypes win (integer labels stay integers).
                    reply["described_outputs"] = described
                    self.declared = {d["name"]: d["datatype"] for d in described}
                else:
                    for t in msg["config"].get("output", []):
                        self.declared[t["name"]] = _tensors.CONFIG_TO_V2.get(t.get("data_type", ""), "")
                self.send(reply)
            else:
                self.send({"ok": False, "error": f"unknown message op {op!r}"})

    def infer(self, packet) -> bytes:
        rid = 0
        try:
            req = _wire.parse_request(packet)
            rid = req.id
            self.region.ensure(req.shm_size)
            inputs = _tensors.read_inputs(self.region, req.inputs)
            wanted = req.outputs
        except Exception as exc:  # noqa: BLE001 - a malformed message is the server's bug
            return _wire.encode_error(rid, _wire.MODEL_ERROR, f"bad request message: {_last_line(exc)}")
        try:
            if wanted == [_wire.EXPLAIN_OUTPUT]:
                result = {_wire.EXPLAIN_OUTPUT: self.model.explain(inputs)}
            else:
                result = self.model.execute(inputs, wanted)
        except NotImplementedError as exc:
            return _wire.encode_error(rid, _wire.UNSUPPORTED, _last_line(exc))
        except (ValueError, TypeError) as exc:  # the request's fault, by the SDK's rule
            return _wire.encode_error(rid, _wire.USER_ERROR, _last_line(exc))
        except Exception as exc:  # noqa: BLE001 - the model's failure; the worker keeps serving
            traceback.print_exc()
            return _wire.encode_error(rid, _wire.MODEL_ERROR, _last_line(exc))
        finally:
            inputs = None  # noqa: F841 - drop views of the region before it may be remapped
        try:
            if not isinstance(result, dict):
                raise _tensors.OutputError(f"{type(self.model).__name__}.predict returned "
                                           f"{type(result).__name__}, not a dict of outputs")
            arrays = []
            declared = self.declared
            for name in wanted:
                if name not in result:
                    have = ", ".join(map(str, result)) or "nothing"
                    raise _tensors.OutputError(f"the model returned no output '{name}' (it returned: {have})")
                arr, dt = _tensors.to_output_array(name, result[name], declared.get(name) or None)
                arrays.append((name, arr, dt))
            specs = _tensors.write_outputs(self.region, req.output_offset, arrays)
        except Exception as exc:  # noqa: BLE001
            return _wire.encode_error(rid, _wire.MODEL_ERROR, _last_line(exc))
        return _wire.encode_reply(rid, self.region.size, specs)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="ferry_sdk.worker")
    p.add_argument("--sock-fd", type=int, required=True)
    p.add_argument("--shm-fd", type=int, required=True)
    p.add_argument("--parent-pid", type=int, required=True)
    args = p.parse_args(argv)
    threading.Thread(target=_watch_parent, args=(args.parent_pid,), daemon=True).start()
    sock = socket.socket(fileno=args.sock_fd)
    try:
        return Worker(sock, args.shm_fd).serve()
    except (ConnectionError, OSError) as exc:
        print(f"ferry worker: connection to the server lost: {exc}", file=sys.stderr)
        return 0


if __name__ == "__main__":
    sys.exit(main())
