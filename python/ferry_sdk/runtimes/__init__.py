"""Ready Python runtimes that ferry serves without a model.py: scikit-learn and LightGBM."""

from __future__ import annotations

from typing import Dict, List

import numpy as np

from ferry_sdk.model import InvalidInput, ModelContext


def feature_matrix(inputs: Dict[str, np.ndarray], order: List[str]) -> np.ndarray:
    """One 2-D feature matrix from the inputs: a single input as it is (a vector becomes
    one row), several inputs side by side as columns, in config order."""
    arrays = [inputs[n] for n in order if n in inputs] or list(inputs.values())
    if not arrays:
        raise InvalidInput("the request carries no input")
    cols = []
    for a in arrays:
        if a.dtype == object:
            raise InvalidInput("BYTES inputs are not features: send numbers")
        cols.append(a.reshape(1, -1) if a.ndim <= 1 and len(arrays) == 1 else a.reshape(a.shape[0], -1))
    rows = {c.shape[0] for c in cols}
    if len(rows) > 1:
        raise InvalidInput(f"inputs have different row counts: {sorted(rows)}")
    return cols[0] if len(cols) == 1 else np.hstack(cols)


def check_declared_width(context: ModelContext, n_features, what: str) -> None:
    """Refuses at load a config whose declared inputs cannot add up to the `n_features`
    columns the model was fitted on (raises ValueError naming the inputs). Inputs with a
    variable dimension are checked per request instead."""
    if n_features is None:
        return
    inputs = context.config.get("input", [])
    total = 0
    for t in inputs:
        dims = [int(d) for d in t.get("dims", [])]
        if context.max_batch_size == 0 and len(dims) > 1:
            dims = dims[1:]  # without batching the first dimension is the rows
        if not dims or any(d < 0 for d in dims):
            return
        total += int(np.prod(dims))
    if inputs and total != n_features:
        names = ", ".join(f"'{t['name']}'" for t in inputs)
        raise ValueError(f"input {names}: the config declares {total} features per row, {what} takes {n_features}")
