"""scikit-learn models (model.joblib, model.pkl or model.pickle, read with joblib.load).

Each requested output is computed by the estimator method of the same name when that is
one of METHODS (so a request for "predict_proba" gets predict_proba, as MLServer does);
any other output name gets the config parameter ``method`` (default "predict").
"""

from __future__ import annotations

from typing import Any, Dict, List

import numpy as np

from ferry_sdk import _tensors
from ferry_sdk.model import InvalidInput, Model
from ferry_sdk.runtimes import check_declared_width, feature_matrix

METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function", "transform")


class SKLearnModel(Model):
    def load(self) -> None:
        import joblib

        try:
            self.estimator = joblib.load(self.context.model_file)
        except Exception as exc:  # joblib's own reasons can be cryptic ("pop from empty list")
            raise ValueError(f"joblib.load cannot read {self.context.model_file.name}: "
                             f"{type(exc).__name__}: {exc}") from exc
        self.method = self.context.parameters.get("method", "predict") or "predict"
        if self.method not in METHODS:
            raise ValueError(f"config parameter method is '{self.method}'; it must be one of {', '.join(METHODS)}")
        if not hasattr(self.estimator, self.method):
            raise ValueError(f"{type(self.estimator).__name__} has no method {self.method}")
        self.n_features = getattr(self.estimator, "n_features_in_", None)
        check_declared_width(self.context, self.n_features, type(self.estimator).__name__)

    def describe_outputs(self) -> List[Dict[str, Any]]:
        """The configured method (default predict) and, for a classifier, predict_proba,
        as outputs of those names (MLServer serves a method by the output's name); predict
        keeps the labels' own datatype. Other methods: declare them in the config."""
        est = self.estimator
        classes = getattr(est, "classes_", None)
        n_classes = len(classes) if classes is not None and np.ndim(classes) == 1 else -1
        out = []
        for method in dict.fromkeys([self.method, "predict_proba"]):
            if not hasattr(est, method):
                continue
            if method == "predict":
                if classes is not None and np.ndim(classes) == 1:
                    dtype = np.asarray(classes).dtype
                    datatype = "BYTES" if dtype.kind in "OUS" else _tensors.NP_TO_V2.get(dtype, "FP64")
                else:
                    datatype = "FP64"
                n_out = getattr(est, "n_outputs_", 1)
                shape = [-1] if n_out in (None, 1) else [-1, int(n_out)]
            elif method in ("predict_proba", "predict_log_proba"):
                datatype, shape = "FP64", [-1, n_classes]
            elif method == "decision_function":
                datatype, shape = "FP64", ([-1] if n_classes in (-1, 2) else [-1, n_classes])
            else:  # transform
                datatype, shape = "FP64", [-1, -1]
            out.append({"name": method, "datatype": datatype, "shape": shape})
        return out

    def execute(self, inputs: Dict[str, np.ndarray], outputs: List[str]) -> Dict[str, Any]:
        x = feature_matrix(inputs, self.context.input_names())
        if self.n_features is not None and x.shape[1] != self.n_features:
            raise InvalidInput(f"the request has {x.shape[1]} features per row, "
                               f"{type(self.estimator).__name__} takes {self.n_features}")
        result = {}
        for name in outputs:
            method = name if name in METHODS else self.method
            fn = getattr(self.estimator, method, None)
            if fn is None:
                raise InvalidInput(f"output '{name}': {type(self.estimator).__name__} has no method {method}")
            result[name] = fn(x)
        return result
