"""LightGBM boosters (model.bst or model.txt, lightgbm.Booster(model_file=...)).

Every output is Booster.predict of the inputs' feature matrix; the config parameter
``raw_score: "true"`` asks for raw margins instead of transformed predictions.
"""

from __future__ import annotations

from typing import Any, Dict, List

import numpy as np

from ferry_sdk.model import InvalidInput, Model
from ferry_sdk.runtimes import check_declared_width, feature_matrix


class LightGBMModel(Model):
    def load(self) -> None:
        import lightgbm

        threads = self.context.parameters.get("num_threads", "")
        params = {"num_threads": int(threads)} if threads else {}
        self.booster = lightgbm.Booster(model_file=str(self.context.model_file), params=params)
        self.raw_score = self.context.parameters.get("raw_score", "").lower() in ("1", "true", "yes")
        self.n_features = self.booster.num_feature()
        check_declared_width(self.context, self.n_features, "the booster")

    def execute(self, inputs: Dict[str, np.ndarray], outputs: List[str]) -> Dict[str, Any]:
        x = feature_matrix(inputs, self.context.input_names())
        if x.shape[1] != self.n_features:
            raise InvalidInput(f"the request has {x.shape[1]} features per row, the booster takes {self.n_features}")
        y = self.booster.predict(x, raw_score=self.raw_score)
        return {name: y for name in outputs}

    def explain(self, inputs: Dict[str, np.ndarray]) -> np.ndarray:
        # LightGBM's own TreeSHAP: [rows, classes * (features + 1)], bias last per class.
        x = feature_matrix(inputs, self.context.input_names())
        if x.shape[1] != self.n_features:
            raise InvalidInput(f"the request has {x.shape[1]} features per row, the booster takes {self.n_features}")
        c = np.asarray(self.booster.predict(x, pred_contrib=True), dtype=np.float64)
        width = self.n_features + 1
        if c.shape[1] > width:
            c = c.reshape(c.shape[0], c.shape[1] // width, width)
        return c
