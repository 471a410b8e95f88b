"""The timeline API: scrubbing a tab's model to a recorded step of training.

The references are the run's snapshots read with ``load_timeline`` and loaded into the run's
model rebuilt here; the server's answers must equal them (kernels exactly, feature maps
within their quantisation step), and other tabs keep the trained model.
"""

import shutil

import numpy as np
import pytest
from starlette.testclient import TestClient

from kernelab.apps import arch, runs
from kernelab.apps.explain.app import create_app
from kernelab.apps.timeline import TimelineRecorder, load_timeline

from .conftest import SESSION, drawn_digit
from .test_api import decoded, forward, layer_outputs, post

OTHER = {"X-Kernelab-Session": "test-session-timeline-b"}


@pytest.fixture(scope="module")
def client(run_dir):
    with TestClient(create_app(run_dir)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def timeline(run_dir):
    return load_timeline(run_dir)


def model_at(run_dir, snapshot):
    """The run's model with its convolutional part at a snapshot, and its config."""
    model, config, _ = runs.load_run(run_dir)
    model.load_state_dict(snapshot, strict=False)
    return model, config


def kernel(client, layer, channel, session=SESSION) -> dict:
    response = client.get(f"/api/kernel?layer={layer}&channel={channel}", headers=session)
    assert response.status_code == 200, response.text
    return response.json()


def show(client, step, session=SESSION):
    return post(client, "/api/timeline", {"step": step}, session)


def test_the_timeline_lists_the_recorded_steps(client, timeline):
    answer = client.get("/api/timeline", headers=SESSION).json()
    assert answer["available"] and answer["steps"] == timeline.steps
    assert answer["steps"][0] == 0 and len(answer["steps"]) == 15  # 2 epochs of 7 steps
    assert answer["losses"] == timeline.losses and answer["losses"][0] is None
    assert answer["epochs"][1:] == [1] * 7 + [2] * 7
    assert answer["layers"] == ["0.weight", "0.bias", "3.weight_free", "3.bias"]
    assert answer["current"] is None


def test_a_step_shows_its_recorded_kernels_and_feature_maps(client, run_dir, timeline):
    step = timeline.steps[4]
    answer = show(client, step)
    assert answer.status_code == 200, answer.text
    assert answer.json()["step"] == step and answer.json()["loss"] == timeline.loss(step)
    snapshot = timeline.snapshot(step)
    for channel in range(4):
        values = np.array(kernel(client, 0, channel)["values"])
        assert np.array_equal(values, snapshot["0.weight"][channel].astype(np.float64))
    reference, config = model_at(run_dir, snapshot)
    symmetric = kernel(client, 3, 2)  # a layer with symmetry x: its kernels from weight_free
    assert np.array_equal(symmetric["values"], reference[3].weight.array[2].astype(np.float64))
    assert not np.array_equal(symmetric["values"], symmetric["trained"])
    view = forward(client)
    outputs = layer_outputs(reference, config, drawn_digit())
    np.testing.assert_array_equal(view["logits"], outputs[-1].astype(np.float64))
    for encoded, output in zip(view["layers"], outputs[1:], strict=True):
        values, quantum = decoded(encoded)
        error = np.abs(values - output).reshape(len(quantum), -1)
        assert (error <= quantum[:, None] / 2 + 1e-6).all()
    trained, trained_config = runs.load_run(run_dir)[:2]
    baseline = layer_outputs(trained, trained_config, drawn_digit())[-1]
    np.testing.assert_array_equal(view["baseline_logits"], baseline.astype(np.float64))
    assert view["step"] == step
    assert client.get("/api/timeline", headers=SESSION).json()["current"] == step


def test_other_tabs_keep_the_trained_model_and_null_brings_it_back(client, run_dir, timeline):
    trained = runs.load_run(run_dir)[0][0].weight.array.astype(np.float64)
    assert show(client, timeline.steps[-1]).status_code == 200
    assert np.array_equal(kernel(client, 0, 1, OTHER)["values"], trained[1])
    assert show(client, None).status_code == 200
    assert np.array_equal(kernel(client, 0, 1)["values"], trained[1])
    assert forward(client)["step"] is None


def test_scrubbing_drops_the_tabs_kernel_edits(client, timeline):
    edit = {"layer": 0, "channel": 0, "spec": "sobel-x"}
    assert post(client, "/api/kernel", edit).status_code == 200
    assert forward(client)["edits"] == 1
    assert show(client, timeline.steps[2]).json()["edits"] == 0
    recorded = timeline.snapshot(timeline.steps[2])["0.weight"][0]
    assert np.array_equal(kernel(client, 0, 0)["values"], recorded.astype(np.float64))


def test_a_reset_at_a_step_returns_to_that_steps_kernels(client, run_dir, timeline):
    step = timeline.steps[5]
    snapshot = timeline.snapshot(step)
    assert show(client, step).status_code == 200
    for channel in (0, 1):
        edit = {"layer": 0, "channel": channel, "spec": "sobel-x"}
        assert post(client, "/api/kernel", edit).status_code == 200
    edit = {"layer": 3, "channel": 0, "spec": "box:3"}
    assert post(client, "/api/kernel", edit).status_code == 200
    assert post(client, "/api/kernel/reset", {"layer": 0, "channel": 0}).json()["edits"] == 2
    assert np.array_equal(kernel(client, 0, 0)["values"], snapshot["0.weight"][0])
    assert not np.array_equal(kernel(client, 0, 1)["values"], snapshot["0.weight"][1])
    assert post(client, "/api/kernel/reset", {}).json()["edits"] == 0
    assert np.array_equal(kernel(client, 0, 1)["values"], snapshot["0.weight"][1])
    reference = model_at(run_dir, snapshot)[0][3].weight.array[0]  # symmetric: weight_free
    assert np.array_equal(kernel(client, 3, 0)["values"], reference.astype(np.float64))


def test_a_tab_at_a_step_saves_a_run_that_says_so(client, run_dir, timeline):
    step = timeline.steps[6]
    assert show(client, step).status_code == 200
    answer = post(client, "/api/save", {"name": "tiny-at-a-step"})
    saved = run_dir.parent / "tiny-at-a-step"
    try:
        assert answer.status_code == 200, answer.text
        model, config, _ = runs.load_run(saved)
        assert config["timeline_step"] == step
        assert np.array_equal(model[0].weight.array, timeline.snapshot(step)["0.weight"])
    finally:
        shutil.rmtree(saved, ignore_errors=True)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"step": 10**6}, "step 1000000 was not recorded: the timeline has 15 steps from 0 to 14"),
        ({"step": -1}, "(the nearest is 0)"),
        ({"step": "3"}, "field 'step' must be int, received '3'"),
        ({"step": True}, "field 'step' must be int, received True"),
        ({"step": 2.5}, "field 'step' must be int"),
    ],
)
def test_a_bad_step_is_refused_with_a_clear_message(client, payload, message):
    answer = post(client, "/api/timeline", payload)
    assert answer.status_code == 400
    assert message in answer.json()["error"]


def test_snapshots_written_while_the_page_is_open_are_shown(bare_run, tmp_path):
    growing = tmp_path / "growing"
    shutil.copytree(bare_run, growing)
    model = runs.load_run(growing)[0]
    recorder = TimelineRecorder(growing, model, 100)
    recorder.start()
    with TestClient(create_app(growing)) as client:
        assert client.get("/api/timeline", headers=SESSION).json()["steps"] == [0]
        recorder.write(5, loss=0.25, epoch=1)
        answer = client.get("/api/timeline", headers=SESSION).json()
        assert answer["steps"] == [0, 5] and answer["losses"] == [None, 0.25]
        assert show(client, 5).status_code == 200


@pytest.fixture(scope="module")
def bare_run(run_dir, tmp_path_factory):
    """The run folder without its timeline, as runs trained before timelines existed."""
    bare = tmp_path_factory.mktemp("bare") / "run"
    shutil.copytree(run_dir, bare, ignore=shutil.ignore_patterns("timeline"))
    return bare


def test_a_run_without_a_timeline_says_so(bare_run):
    with TestClient(create_app(bare_run)) as bare:
        answer = bare.get("/api/timeline", headers=SESSION)
        assert answer.status_code == 200
        assert answer.json()["available"] is False and answer.json()["steps"] == []
        assert "has no kernel timeline" in answer.json()["message"]
        refused = show(bare, 0)
        assert refused.status_code == 404 and "has no kernel timeline" in refused.json()["error"]


def test_a_timeline_of_another_model_is_refused(bare_run, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(bare_run, other)
    model = arch.build("conv5x4-same,relu,flatten,linear10", (1, 28, 28), generator=0)
    TimelineRecorder(other, model, 10).write(0)
    with TestClient(create_app(other)) as client:
        answer = client.get("/api/timeline", headers=SESSION)
        assert answer.status_code == 409
        assert "does not match this run's model: '0.weight'" in answer.json()["error"]


def test_a_model_in_memory_says_it_has_no_timeline():
    from kernelab.apps.explain.source import model_source

    model = arch.build("conv5x4-same,relu,flatten,linear10", (1, 28, 28), generator=0)
    with TestClient(create_app(model_source(model, (1, 28, 28)))) as client:
        assert client.get("/api/timeline", headers=SESSION).json()["available"] is False
        refused = show(client, 0)
        assert refused.status_code == 404
        assert "this is a model in memory: only a run folder" in refused.json()["error"]
