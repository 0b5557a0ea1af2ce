"""The label-free estimate benchmark (bench/run_cbpe_bench.sh): NannyML's CBPE and ferry's
on the same rows of NannyML's bundled synthetic car-loan set, against the realised value.

Two steps, because NannyML lives in its own venv and the ferry client in the project's:
  nannyml  (NannyML's venv)  write the analysis rows and NannyML's per-chunk estimates
  ferry    (.venv)           feed the same rows through a running ferry, read its estimate
                             per chunk, post the targets, read its realised values, and
                             print the Markdown report
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

CHUNK = 5000


def nannyml_step(work: Path) -> None:
    import nannyml as nml
    from sklearn.metrics import accuracy_score, roc_auc_score

    reference, analysis, targets = nml.load_synthetic_car_loan_dataset()
    analysis = analysis.merge(targets, on="id") if "id" in targets.columns else analysis.join(targets)
    estimator = nml.CBPE(y_pred_proba="y_pred_proba", y_pred="y_pred", y_true="repaid", problem_type="classification_binary",
                         metrics=["roc_auc", "accuracy"], chunk_size=CHUNK)
    estimator.fit(reference)
    result = estimator.estimate(analysis.drop(columns=["repaid"])).filter(period="analysis").to_df()
    est_auc = result[("roc_auc", "value")].to_numpy()
    est_acc = result[("accuracy", "value")].to_numpy()
    p = analysis["y_pred_proba"].to_numpy(np.float64)
    y = analysis["repaid"].to_numpy(np.int64)
    y_pred = analysis["y_pred"].to_numpy(np.int64)
    chunks = len(p) // CHUNK
    real_auc = [roc_auc_score(y[i * CHUNK:(i + 1) * CHUNK], p[i * CHUNK:(i + 1) * CHUNK]) for i in range(chunks)]
    real_acc = [accuracy_score(y[i * CHUNK:(i + 1) * CHUNK], y_pred[i * CHUNK:(i + 1) * CHUNK]) for i in range(chunks)]
    np.savez(work / "rows.npz", p=p, y=y, y_pred=y_pred)
    # ferry calibrates on the same labelled reference rows as NannyML (feedback.calibration).
    (work / "calibration.json").write_text(json.dumps({
        "probability": reference["y_pred_proba"].astype(float).tolist(),
        "label": reference["repaid"].astype(int).tolist()}))
    (work / "nannyml.json").write_text(json.dumps({
        "chunks": chunks, "nannyml_roc_auc": est_auc[:chunks].tolist(), "nannyml_accuracy": est_acc[:chunks].tolist(),
        "realised_roc_auc": real_auc, "realised_accuracy": real_acc,
        "reference_rows": len(reference), "analysis_rows": len(p),
        "nannyml_version": nml.__version__}))


def ferry_step(work: Path, url: str) -> None:
    import requests

    data = np.load(work / "rows.npz")
    nm = json.loads((work / "nannyml.json").read_text())
    p, y, y_pred = data["p"], data["y"], data["y_pred"]
    threshold = float(p[y_pred == 1].min())
    mismatch = int(((p >= threshold).astype(int) != y_pred).sum())
    session = requests.Session()
    base = f"http://{url}/v2/models/car_loan"

    def report() -> dict:
        r = session.get(f"{base}/monitoring")
        r.raise_for_status()
        return r.json()["versions"][0]

    est_auc, est_acc, real_auc, real_acc = [], [], [], []
    per_request = 500
    sent = 0
    for c in range(nm["chunks"]):
        items = []
        for start in range(c * CHUNK, (c + 1) * CHUNK, per_request):
            rows = p[start:start + per_request]
            rid = f"row-{start}"
            body = {"id": rid, "inputs": [{"name": "proba", "datatype": "FP64", "shape": [len(rows), 1],
                                           "data": rows.tolist()}]}
            session.post(f"{base}/infer", json=body).raise_for_status()
            items.append({"id": rid, "target": y[start:start + per_request].tolist()})
            sent += 1
        deadline = time.time() + 60
        while report()["feedback"]["predictions_total"] < sent:
            if time.time() > deadline:
                sys.exit("ferry did not take the chunk's predictions within 60 s")
            time.sleep(0.05)
        est = report()["quality"]["estimated"]
        assert est["rows"] == CHUNK, est
        calibration = est["calibration"]
        est_auc.append(est["roc_auc"])
        est_acc.append(est["accuracy"])
        r = session.post(f"{base}/feedback", json={"feedback": items})
        assert r.status_code == 200 and r.json()["joined"] == len(items), r.text
        q = report()["quality"]
        assert q["rows"] == CHUNK, q
        real_auc.append(q["realised"]["roc_auc"])
        real_acc.append(q["realised"]["accuracy"])

    def mae(a, b):
        return float(np.mean(np.abs(np.asarray(a) - np.asarray(b))))

    ra, rc = np.asarray(nm["realised_roc_auc"]), np.asarray(nm["realised_accuracy"])
    # ferry's realised values (from its own feedback join) must agree with sklearn's.
    assert mae(real_auc, ra) < 1e-9 and mae(real_acc, rc) < 1e-9, (real_auc, ra, real_acc, rc)
    print(f"NannyML {nm['nannyml_version']}; car-loan set: {nm['reference_rows']} reference rows (NannyML's "
          f"calibration and fit), {nm['analysis_rows']} analysis rows in {nm['chunks']} chunks of {CHUNK}; "
          f"ferry's decision p >= {threshold} (feedback.threshold) differs from the set's y_pred on {mismatch} rows; ferry's calibration on "
          f"the reference rows: {calibration}.\n")
    print("| chunk | realised ROC AUC | NannyML CBPE | ferry CBPE | realised accuracy | NannyML CBPE | ferry CBPE |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for i in range(nm["chunks"]):
        print(f"| {i} | {ra[i]:.4f} | {nm['nannyml_roc_auc'][i]:.4f} | {est_auc[i]:.4f} | "
              f"{rc[i]:.4f} | {nm['nannyml_accuracy'][i]:.4f} | {est_acc[i]:.4f} |")
    print(f"| **MAE vs realised** | | **{mae(nm['nannyml_roc_auc'], ra):.4f}** | **{mae(est_auc, ra):.4f}** | | "
          f"**{mae(nm['nannyml_accuracy'], rc):.4f}** | **{mae(est_acc, rc):.4f}** |")
    print(f"| max abs error | | {np.max(np.abs(np.asarray(nm['nannyml_roc_auc']) - ra)):.4f} | "
          f"{np.max(np.abs(np.asarray(est_auc) - ra)):.4f} | | "
          f"{np.max(np.abs(np.asarray(nm['nannyml_accuracy']) - rc)):.4f} | {np.max(np.abs(np.asarray(est_acc) - rc)):.4f} |")
    print(f"\nMAE to 6 places: ROC AUC NannyML {mae(nm['nannyml_roc_auc'], ra):.6f}, ferry {mae(est_auc, ra):.6f}; "
          f"accuracy NannyML {mae(nm['nannyml_accuracy'], rc):.6f}, ferry {mae(est_acc, rc):.6f}. Largest per-chunk "
          f"difference between the two estimates: ROC AUC {np.max(np.abs(np.asarray(est_auc) - nm['nannyml_roc_auc'])):.2e}, "
          f"accuracy {np.max(np.abs(np.asarray(est_acc) - nm['nannyml_accuracy'])):.2e}.")


def write_model(repo: Path) -> None:
    """An ONNX identity model answering its FP64 input `proba` [n, 1] as output `p`."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["proba"], ["p"])], "car_loan",
                              [helper.make_tensor_value_info("proba", TensorProto.DOUBLE, [None, 1])],
                              [helper.make_tensor_value_info("p", TensorProto.DOUBLE, [None, 1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    (repo / "car_loan" / "1").mkdir(parents=True)
    onnx.save(model, repo / "car_loan" / "1" / "model.onnx")
    # The set's y_pred is the model's decision: p >= 0.65 (its lowest positive score), not 0.5.
    rows = np.load(repo.parent / "rows.npz")
    threshold = float(rows["p"][rows["y_pred"] == 1].min())
    assert ((rows["p"] >= threshold).astype(int) == rows["y_pred"]).all()
    settings = {"feedback.threshold": repr(threshold), "feedback.enabled": "true", "feedback.task": "classification", "feedback.window": str(CHUNK),
                "feedback.max_pending": "100000", "feedback.calibration": "calibration.json"}
    (repo / "car_loan" / "calibration.json").write_bytes((repo.parent / "calibration.json").read_bytes())
    (repo / "car_loan" / "config.pbtxt").write_text(
        'name: "car_loan"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 0\n'
        'input [ { name: "proba" data_type: TYPE_FP64 dims: [ -1, 1 ] } ]\n'
        'output [ { name: "p" data_type: TYPE_FP64 dims: [ -1, 1 ] } ]\n'
        + "".join(f'parameters {{ key: "monitoring.{k}" value: {{ string_value: "{v}" }} }}\n'
                  for k, v in settings.items()))


if __name__ == "__main__":
    step, work = sys.argv[1], Path(sys.argv[2])
    if step == "nannyml":
        nannyml_step(work)
    elif step == "model":
        write_model(work)
    else:
        ferry_step(work, sys.argv[3])
