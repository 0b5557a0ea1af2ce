"""Models for bench/run_python_bench.sh: the same Python logic as a ferry model and as a
Triton Python-backend model.

Run with the benchmark venv's python (numpy < 2, scikit-learn; Triton's Python
backend runs its stub with that venv's packages and ferry runs its workers with that
interpreter), so both servers execute the very same code on the very same packages.

  python_bench_models.py repos OUT_DIR VENV [--no-batching]
      writes OUT_DIR/ferry and OUT_DIR/triton, two model repositories holding
        add_sub     OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1 (FP32 [4])
        sklearn_lr  PROBA = LogisticRegression.predict_proba(X) (X FP64 [20]), trained
                    here with a fixed seed and saved with joblib into both repositories
      Each model's config.pbtxt is the same file in both repositories (backend
      "python", one CPU instance, max_batch_size 64 and, unless --no-batching,
      dynamic_batching {}; the interpreter is VENV's, named for each server by its
      own parameter: EXECUTION_ENV_PATH for Triton, python_env for ferry). Each model.py holds the same setup()/compute() functions;
      only the wrapper differs: ferry_sdk.Model.predict calls compute() on the batch
      the server joined, TritonPythonModel.execute joins the requests it is handed
      along the first axis, calls compute() once and splits the outputs (the way a
      Triton Python model batches).
  python_bench_models.py check URL MODEL REPO [ANSWER_FILE]
      posts one V2 JSON request to URL (a server's base URL) and checks the outputs
      against compute() run here on the same inputs; saves the answer's bytes to
      ANSWER_FILE when given.
  python_bench_models.py body MODEL OUT_FILE
      writes the same request (seeded batch-1 inputs, V2 JSON) to OUT_FILE, for wrk.
"""
from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path

import numpy as np

FEATURES = 20
SEED = 7
MAX_BATCH = 64

# The model logic both servers run, word for word.
LOGIC = {
    "add_sub": '''
def setup(model, folder):
    pass


def compute(model, inputs):
    a, b = inputs["INPUT0"], inputs["INPUT1"]
    return {"OUTPUT0": a + b, "OUTPUT1": a - b}
''',
    "sklearn_lr": '''
def setup(model, folder):
    import joblib
    model.estimator = joblib.load(os.path.join(folder, "model.joblib"))


def compute(model, inputs):
    return {"PROBA": model.estimator.predict_proba(inputs["X"])}
''',
}

TENSORS = {  # name: (inputs, outputs) as (name, config type, dims)
    "add_sub": ([("INPUT0", "TYPE_FP32", 4), ("INPUT1", "TYPE_FP32", 4)],
                [("OUTPUT0", "TYPE_FP32", 4), ("OUTPUT1", "TYPE_FP32", 4)]),
    "sklearn_lr": ([("X", "TYPE_FP64", FEATURES)], [("PROBA", "TYPE_FP64", 2)]),
}

FERRY_WRAPPER = '''
from ferry_sdk import Model


class BenchModel(Model):
    def load(self):
        setup(self, str(self.context.version_dir))

    def predict(self, inputs):
        return compute(self, inputs)
'''

TRITON_WRAPPER = '''
import triton_python_backend_utils as pb_utils

INPUTS = {inputs!r}


class TritonPythonModel:
    def initialize(self, args):
        setup(self, os.path.join(args["model_repository"], args["model_version"]))

    def execute(self, requests):
        per_request = [[pb_utils.get_input_tensor_by_name(r, n).as_numpy() for n in INPUTS] for r in requests]
        if len(per_request) == 1:
            batch = dict(zip(INPUTS, per_request[0]))
        else:
            batch = {{n: np.concatenate([p[i] for p in per_request]) for i, n in enumerate(INPUTS)}}
        outputs = compute(self, batch)
        responses, start = [], 0
        for p in per_request:
            rows = p[0].shape[0]
            responses.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor(name, np.ascontiguousarray(value[start:start + rows]))
                for name, value in outputs.items()]))
            start += rows
        return responses
'''


def config_pbtxt(name: str, batching: bool, venv: str) -> str:
    inputs, outputs = TENSORS[name]
    tensors = lambda ts: ", ".join(f'{{ name: "{n}" data_type: {t} dims: [ {d} ] }}' for n, t, d in ts)  # noqa: E731
    return (f'name: "{name}"\nbackend: "python"\nmax_batch_size: {MAX_BATCH}\n'
            f"input [ {tensors(inputs)} ]\noutput [ {tensors(outputs)} ]\n"
            "instance_group [ { count: 1 kind: KIND_CPU } ]\n" + ("dynamic_batching { }\n" if batching else "") +
            "".join(f'parameters: {{ key: "{k}" value: {{ string_value: "{venv}" }} }}\n'
                    for k in ("EXECUTION_ENV_PATH", "python_env")))


def dataset():
    from sklearn.datasets import make_classification
    return make_classification(n_samples=2000, n_features=FEATURES, n_informative=10, random_state=SEED)


def write_repos(out: Path, venv: str, batching: bool) -> None:
    import joblib
    from sklearn.linear_model import LogisticRegression

    x, y = dataset()
    estimator = LogisticRegression(max_iter=1000).fit(x, y)
    for server, wrapper in (("ferry", FERRY_WRAPPER), ("triton", TRITON_WRAPPER)):
        for name, logic in LOGIC.items():
            version = out / server / name / "1"
            version.mkdir(parents=True, exist_ok=True)
            (version.parent / "config.pbtxt").write_text(config_pbtxt(name, batching, venv))
            inputs = [n for n, _, _ in TENSORS[name][0]]
            code = "import os\n\nimport numpy as np\n" + logic + wrapper.format(inputs=inputs)
            (version / "model.py").write_text(code)
            if name == "sklearn_lr":
                joblib.dump(estimator, version / "model.joblib")


class _Local:
    """compute() run here, as the servers run it."""


def local_outputs(name: str, inputs: dict, folder: Path) -> dict:
    scope: dict = {}
    exec("import os\nimport numpy as np\n" + LOGIC[name], scope)  # noqa: S102 - our own text above
    model = _Local()
    scope["setup"](model, str(folder))
    return scope["compute"](model, inputs)


def request_arrays(name: str) -> dict:
    """The seeded batch-1 inputs that check() sends and `body` writes."""
    rng = np.random.default_rng(SEED)
    arrays = {}
    for n, t, d in TENSORS[name][0]:
        dtype = np.float32 if t == "TYPE_FP32" else np.float64
        arrays[n] = rng.standard_normal((1, d)).astype(dtype)
    return arrays


def request_body(arrays: dict) -> bytes:
    return json.dumps({"inputs": [{"name": n, "shape": list(a.shape),
                                   "datatype": "FP32" if a.dtype == np.float32 else "FP64",
                                   "data": a.reshape(-1).tolist()} for n, a in arrays.items()]}).encode()


def check(base: str, name: str, repo: Path, answer_out: Path | None = None) -> None:
    outputs = TENSORS[name][1]
    arrays = request_arrays(name)
    body = request_body(arrays)
    req = urllib.request.Request(f"{base}/v2/models/{name}/infer", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        raw = r.read()
    got = {o["name"]: np.array(o["data"]).reshape(o["shape"]) for o in json.loads(raw)["outputs"]}
    want = local_outputs(name, arrays, repo / name / "1")
    for n, _, _ in outputs:
        np.testing.assert_allclose(got[n], want[n], rtol=1e-5, err_msg=f"{base} {name} {n}")
    if answer_out is not None:
        answer_out.write_bytes(raw)  # the checked answer, for wrk's per-response comparison
    print(f"{base} {name}: outputs match compute()", file=sys.stderr)


def main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[0] == "repos":
        write_repos(Path(argv[1]), argv[2], batching="--no-batching" not in argv)
        return 0
    if len(argv) == 3 and argv[0] == "body":
        Path(argv[2]).write_bytes(request_body(request_arrays(argv[1])))
        return 0
    if len(argv) in (4, 5) and argv[0] == "check":
        check(argv[1], argv[2], Path(argv[3]), Path(argv[4]) if len(argv) == 5 else None)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
