"""Models and request bodies for bench/run_mlserver_bench.sh.

Run with the MLServer venv's python (it has scikit-learn and xgboost, the versions
MLServer's runtimes load with), so both servers read the very same files.

  mlserver_models.py repo OUT_DIR
      trains a scikit-learn LogisticRegression and an XGBoost classifier on one
      synthetic dataset (20 features, 2 classes) and writes an MLServer model
      repository: OUT_DIR/<model>/{model-settings.json, model file}, plus
      OUT_DIR/../<model>.json, a V2 request body with one FP64 row.
  mlserver_models.py check OUT_DIR MODEL URL
      posts the model's body to URL (a V2 infer endpoint) and checks the first
      output against the framework's own prediction for that row.
"""
from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path

import numpy as np

FEATURES = 20
SEED = 7
MODELS = {
    # name: (MLServer implementation, model file)
    "sklearn_lr": ("mlserver_sklearn.SKLearnModel", "model.joblib"),
    "xgboost_clf": ("mlserver_xgboost.XGBoostModel", "model.json"),
}


def dataset():
    from sklearn.datasets import make_classification
    return make_classification(n_samples=2000, n_features=FEATURES, n_informative=10, random_state=SEED)


def row() -> np.ndarray:
    return dataset()[0][:1]


def write_repo(out: Path) -> None:
    import joblib
    import xgboost as xgb
    from sklearn.linear_model import LogisticRegression

    x, y = dataset()
    out.mkdir(parents=True, exist_ok=True)
    for name, (implementation, filename) in MODELS.items():
        folder = out / name
        folder.mkdir(exist_ok=True)
        if name == "sklearn_lr":
            joblib.dump(LogisticRegression(max_iter=1000).fit(x, y), folder / filename)
        else:
            xgb.XGBClassifier(n_estimators=100, max_depth=6, random_state=SEED).fit(x, y).save_model(folder / filename)
        settings = {"name": name, "implementation": implementation,
                    "parameters": {"uri": f"./{filename}", "version": "1"},
                    # Declared so ferry's XGBoost runtime takes MLServer's input name too
                    # (both servers accept the declaration; MLServer ignores the name).
                    "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, FEATURES]}]}
        (folder / "model-settings.json").write_text(json.dumps(settings, indent=2) + "\n")
        body = {"inputs": [{"name": "input-0", "shape": [1, FEATURES], "datatype": "FP64",
                            "data": row().ravel().tolist()}]}
        (out.parent / f"{name}.json").write_text(json.dumps(body))


def reference(out: Path, name: str) -> np.ndarray:
    import joblib
    import xgboost as xgb
    if name == "sklearn_lr":
        return joblib.load(out / name / "model.joblib").predict(row())
    model = xgb.XGBClassifier()
    model.load_model(out / name / "model.json")
    return model.predict(row())


def check(out: Path, name: str, url: str) -> None:
    body = (out.parent / f"{name}.json").read_bytes()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.load(response)
    got = np.asarray(answer["outputs"][0]["data"]).ravel()
    want = np.asarray(reference(out, name)).ravel()
    name_out = answer["outputs"][0]["name"]
    # A server may answer class labels (predict) or per-class scores (predict_proba).
    if got.size == want.size:
        ok = np.allclose(got, want)
    else:
        ok = int(np.argmax(got)) == int(want[0])
    if not ok:
        sys.exit(f"{url}: {name} answered {name_out}={got.tolist()}, the framework predicts {want.tolist()}")
    print(f"check ok: {url} {name} -> {name_out}={got.tolist()} (framework: {want.tolist()})")


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "repo":
        write_repo(Path(sys.argv[2]))
    elif len(sys.argv) == 5 and sys.argv[1] == "check":
        check(Path(sys.argv[2]), sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)
