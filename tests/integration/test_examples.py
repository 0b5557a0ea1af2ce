"""The main job's repository: scripts/serve-examples.sh serves what examples/generate_models.py
and examples/generate_runtime_models.py write, with the project's venv for Python workers and
the dev build's plugins folder. Here the same repository and flags, checked model by model
against each framework's own answer (scikit-learn in this venv; torch through Debian's
/usr/bin/python3, as the generator uses it).
"""

from __future__ import annotations

import json
import subprocess
import sys

import joblib
import numpy as np
import pytest
import tritonclient.http as httpclient

import ferry_helpers as fh

EXAMPLES = fh.REPO_ROOT / "examples"


@pytest.fixture(scope="module")
def server(ferry_module_factory, tmp_path_factory):
    repo = fh.generate_repo(tmp_path_factory.mktemp("examples") / "repo")
    proc = subprocess.run([sys.executable, str(EXAMPLES / "generate_runtime_models.py"), str(repo)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    plugins = fh.ferry_bin().parent / "plugins"
    assert plugins.is_dir(), f"{plugins} is missing: build the tests (FERRY_BUILD_TESTS=ON) to get the plugins"
    models = list(fh.MODEL_NAMES) + ["iris_sklearn", "add_one", "torch_linear"]
    return fh.start_with_models(ferry_module_factory, repo, models, name="examples", timeout=90,
                                args=["--python-executable", sys.executable, "--plugin-dir", str(plugins)])


def test_iris_sklearn_answers_as_scikit_learn(server, http):
    x = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 2.8, 4.3, 1.3]])
    inp = httpclient.InferInput("input-0", list(x.shape), "FP64")
    inp.set_data_from_numpy(x)
    result = http.infer("iris_sklearn", [inp])
    model = joblib.load(server.repos[0] / "iris_sklearn" / "model.joblib")
    np.testing.assert_array_equal(result.as_numpy("predict"), model.predict(x))
    np.testing.assert_allclose(result.as_numpy("predict_proba"), model.predict_proba(x), rtol=1e-6, atol=1e-9)


def test_torch_linear_answers_as_torch(server, http):
    x = np.random.default_rng(3).standard_normal((2, 4)).astype(np.float32)
    ref = subprocess.run(
        ["/usr/bin/python3", "-c",
         "import json, sys, torch; m = torch.jit.load(sys.argv[1]); "
         "print(json.dumps(m(torch.tensor(json.loads(sys.argv[2]))).tolist()))",
         str(server.repos[0] / "torch_linear" / "1" / "model.pt"), json.dumps(x.tolist())],
        capture_output=True, text=True, timeout=120)
    assert ref.returncode == 0, ref.stderr
    inp = httpclient.InferInput("INPUT__0", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    got = http.infer("torch_linear", [inp]).as_numpy("OUTPUT__0")
    np.testing.assert_allclose(got, np.array(json.loads(ref.stdout), np.float32), rtol=1e-5, atol=1e-6)



def test_every_example_model_is_ready(server, http):
    # The fixture waited for each; add_one's arithmetic is tested in test_plugin.py.
    index = {e["name"]: e.get("state") for e in http.get_model_repository_index()}
    assert index == {m: "READY" for m in index} and "add_one" in index and len(index) == 6, index
