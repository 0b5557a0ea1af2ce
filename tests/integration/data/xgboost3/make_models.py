"""Writes the XGBoost 3.x models that test_xgboost.py serves, and their reference outputs.

Not run by the tests: the test venv pins xgboost 1.7 (the C library's minor version), which
cannot write models the way 3.x does. Re-run by hand in a venv with xgboost 3.x:

    python -m venv /tmp/xgb3 && /tmp/xgb3/bin/pip install numpy==2.2.6 xgboost==3.2.0
    /tmp/xgb3/bin/python tests/integration/data/xgboost3/make_models.py

XGBoost >= 3.0 stores base_score as a vector string ("[...]"), per class for multi-class
models, which libxgboost 1.7 misreads silently; these files check ferry's rewrite of it.
"""

import json
from pathlib import Path

import numpy as np
import xgboost as xgb

HERE = Path(__file__).resolve().parent

rng = np.random.default_rng(7)
X = rng.standard_normal((120, 4)).astype(np.float32)
score = X[:, 0] * 2 + X[:, 1] - X[:, 2]
params = {"max_depth": 2, "eta": 0.5}

multi = xgb.train({**params, "objective": "multi:softprob", "num_class": 3},
                  xgb.DMatrix(X, label=np.digitize(score, [-1, 1])), 3)
multi.save_model(HERE / "multi_softprob.json")
reg = xgb.train({**params, "objective": "reg:squarederror"}, xgb.DMatrix(X, label=score + 3), 3)
reg.save_model(HERE / "regression.ubj")

queries = rng.standard_normal((5, 4)).astype(np.float32)
expected = {
    "xgboost_version": xgb.__version__,
    "inputs": queries.tolist(),
    "multi_softprob": multi.inplace_predict(queries).tolist(),
    "multi_softprob_margin": multi.inplace_predict(queries, predict_type="margin").tolist(),
    "regression": reg.inplace_predict(queries).tolist(),
}
(HERE / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
