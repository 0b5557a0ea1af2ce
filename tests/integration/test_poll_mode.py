"""--model-control-mode poll: the server follows changes to the repository folder.

Every change is made atomically (built in a staging folder beside the repository,
then renamed into place) so the poller never sees a half-written model.
"""

from __future__ import annotations

import shutil

import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

import ferry_helpers as fh

CHANGE_TIMEOUT_S = 10


@pytest.fixture(scope="module")
def poll_server(ferry_module_factory):
    repo = ferry_module_factory.new_repo("poll-repo")
    server = ferry_module_factory.start(
        repos=repo, args=["--model-control-mode", "poll", "--repository-poll-secs", "1"], name="poll")
    staging = repo.parent / (repo.name + "-staging")
    staging.mkdir()
    server.staging = staging
    return server


@pytest.fixture
def client(poll_server):
    c = httpclient.InferenceServerClient(poll_server.url, connection_timeout=fh.HTTP_TIMEOUT_S,
                                         network_timeout=fh.HTTP_TIMEOUT_S)
    yield c
    c.close()


def infer_numpy(client, model, inputs, version=""):
    infer_inputs = []
    for name, arr in inputs.items():
        inp = httpclient.InferInput(name, list(arr.shape), fh.NP_TO_V2[arr.dtype])
        inp.set_data_from_numpy(arr)
        infer_inputs.append(inp)
    result = client.infer(model, infer_inputs, model_version=version)
    return {o["name"]: result.as_numpy(o["name"]) for o in result.get_response()["outputs"]}


def wait_ready(client, server, model, version="", ready=True):
    state = "ready" if ready else "not ready"
    fh.wait_until(lambda: client.is_model_ready(model, version) == ready, CHANGE_TIMEOUT_S,
                  f"{model} {('version ' + version) if version else ''} to become {state}",
                  on_timeout=server.describe)


def test_all_models_ready_at_start(client):
    for model in fh.MODEL_NAMES:
        assert client.is_model_ready(model), model


def test_new_model_folder_is_loaded(client, poll_server):
    repo = poll_server.repo
    staged = poll_server.staging / "mlp_copy"
    shutil.copytree(repo / "mlp_classifier", staged)
    staged.rename(repo / "mlp_copy")

    wait_ready(client, poll_server, "mlp_copy")
    inputs = fh.make_inputs("mlp_classifier", 2, seed=40)
    fh.assert_outputs_match(infer_numpy(client, "mlp_copy", inputs),
                            fh.reference(repo, "mlp_classifier", 1, inputs))
    states = {e["name"]: e.get("state") for e in client.get_model_repository_index()}
    assert states.get("mlp_copy") == "READY", states


def test_deleted_model_folder_is_unloaded(client, poll_server):
    repo = poll_server.repo
    assert client.is_model_ready("int_ops")
    gone = poll_server.staging / "int_ops-removed"
    (repo / "int_ops").rename(gone)
    shutil.rmtree(gone)

    wait_ready(client, poll_server, "int_ops", ready=False)
    with pytest.raises(InferenceServerException):
        infer_numpy(client, "int_ops", fh.make_inputs("int_ops", 1))
    assert client.is_model_ready("add_sub")  # other models untouched


def test_new_version_is_loaded(client, poll_server):
    repo = poll_server.repo
    staged = poll_server.staging / "3"
    staged.mkdir()
    shutil.copy2(repo / "add_sub" / "2" / "model.onnx", staged / "model.onnx")
    staged.rename(repo / "add_sub" / "3")

    wait_ready(client, poll_server, "add_sub", "3")
    # version_policy is `all`: the older versions stay
    assert client.is_model_ready("add_sub", "1")
    assert client.is_model_ready("add_sub", "2")
    inputs = fh.make_inputs("add_sub", 1, seed=41)
    fh.assert_outputs_match(infer_numpy(client, "add_sub", inputs, version="3"),
                            fh.reference(repo, "add_sub", 3, inputs))


def test_explicit_load_rejected_in_poll_mode(client):
    with pytest.raises(InferenceServerException):
        client.load_model("add_sub")
    with pytest.raises(InferenceServerException):
        client.unload_model("add_sub")


def test_unchanged_models_kept_serving(client, poll_server):
    assert client.is_model_ready("mlp_classifier")
    inputs = fh.make_inputs("mlp_classifier", 3, seed=42)
    fh.assert_outputs_match(infer_numpy(client, "mlp_classifier", inputs),
                            fh.reference(poll_server.repo, "mlp_classifier", 1, inputs))
    assert poll_server.is_running()
