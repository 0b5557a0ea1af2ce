"""The base class every Python model served by ferry derives from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Any, Dict, List

import numpy as np


class InvalidInput(ValueError):
    """Raise from predict() when the request is wrong: the client gets HTTP 400.

    ValueError and TypeError (and so this class) are the client's fault; any other
    exception is the model's and answers HTTP 500. Either way the worker keeps serving.
    """


@dataclass
class ModelContext:
    """What the server tells a model about itself, available as ``self.context`` in load()."""

    name: str  # model name in the repository
    version: int
    version_dir: Path  # the version folder holding the model file
    model_file: Path  # model.py, model.joblib, model.txt, ...
    config: Dict[str, Any]  # the completed model config, as Triton's JSON form
    parameters: Dict[str, str] = field(default_factory=dict)  # config parameters, as strings
    instance: int = 0  # which worker of the model this is (0-based)
    max_batch_size: int = 0

    def input_names(self) -> List[str]:
        return [t["name"] for t in self.config.get("input", [])]

    def output_names(self) -> List[str]:
        return [t["name"] for t in self.config.get("output", [])]


class Model:
    """A model served by ferry. Subclass it and override load() and predict().

    - load() runs once per worker, before any request; ``self.context`` is set. An
      exception here leaves the model UNAVAILABLE with the exception's message.
    - predict(inputs) gets every input as a numpy array (keyed by name) and returns a
      dict of outputs (numpy arrays or anything np.asarray takes). BYTES tensors are
      object arrays of ``bytes``. With dynamic batching, one call may join several
      requests along the first axis; return outputs with the same first dimension.
    - execute(inputs, outputs) is what the worker calls; its default calls predict() and
      keeps the requested outputs. Override it instead of predict() to compute only the
      outputs asked for.

    Input arrays are views over shared memory valid only during the call: copy what
    you keep. Each worker runs one call at a time.
    """

    context: ModelContext

    def load(self) -> None:
        """Loads weights or other state. Default: nothing."""

    def predict(self, inputs: Dict[str, np.ndarray]) -> Dict[str, Any]:
        raise NotImplementedError(f"{type(self).__name__} does not define predict()")

    def execute(self, inputs: Dict[str, np.ndarray], outputs: List[str]) -> Dict[str, Any]:
        return self.predict(inputs)

    def explain(self, inputs: Dict[str, np.ndarray]) -> np.ndarray:
        """Per-feature attributions computed by the framework itself (POST .../explain,
        docs/explain.md): [rows, features + 1], or [rows, groups, features + 1] for
        several classes, the bias (expected value) last, so a row sums to the raw
        prediction. Default: none, and the server uses a model-agnostic method."""
        raise NotImplementedError(f"{type(self).__name__} has no explanations of its own")

    def describe_outputs(self) -> Optional[List[Dict[str, Any]]]:
        """After load(): the outputs this model answers, as [{"name", "datatype" (a
        protocol name such as "INT64"), "shape" (-1 for a variable dimension, the batch
        dimension included)}], the default one first; or None. The server asks only when
        the config declares no outputs and a built-in runtime guessed them."""
        return None
