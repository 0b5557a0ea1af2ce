"""Ready Python runtimes that ferry serves without a model.py: scikit-learn and LightGBM."""

from __future__ import annotations

from typing import Dict, List

import numpy as np

from ferry_sdk.model import InvalidInput


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
