"""The Train view's API: a run per tab trained in a thread, its controls, caps and bad inputs,
its stream, and a stopped run continued by ``kernelab train --resume``.

Runs are tiny (the classic network with 4 and 8 kernels of 3x3 on 400 synthetic digits,
batches of 16: 25 steps an epoch) so each takes a second or two.
"""

import base64
import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from starlette.testclient import TestClient

from kernelab import cli
from kernelab.apps import runs, timeline
from kernelab.apps.explain import live_view
from kernelab.apps.explain.app import create_app
from kernelab.autograd import no_grad
from kernelab.core import serialization
from kernelab.core.tensor import Tensor
from kernelab.core.threads import set_num_threads

from .conftest import served

SMALL = {"kernel_size": 3, "kernels": 4, "kernels2": 8, "batch_size": 16, "epochs": 2}
STEPS = 2 * 25  # two epochs of 400 images in batches of 16


def headers(name: str) -> dict:
    return {"X-Kernelab-Session": f"live-test-{name}"}


@pytest.fixture
def app(tmp_path, mnist_dir):
    app = create_app(
        None, train=True, runs_dir=tmp_path / "runs", data_dir=str(mnist_dir), train_process=False
    )
    yield app
    app.state.live.stop_all()


@pytest.fixture
def client(app):
    with TestClient(app) as test_client:
        yield test_client


def state(app, name: str) -> dict:
    """The tab's latest published state."""
    return json.loads(app.state.live.page(f"live-test-{name}").latest()[1])


def wait_for(app, name: str, check, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = state(app, name)
        if check(now):
            return now
        time.sleep(0.02)
    raise AssertionError(f"timed out; last state {str(now)[:300]}")


def post(client, name: str, path: str, payload=None, status: int = 200) -> dict:
    response = client.post(f"/api/live/{path}", headers=headers(name), json=payload or {})
    assert response.status_code == status, response.text
    return response.json()


def test_new_model_page_offers_training(client):
    model = client.get("/api/model", headers=headers("a")).json()
    assert model["train"] is True and model["kind"] == "new"
    answer = client.get("/api/live", headers=headers("a")).json()
    assert answer["state"]["status"] == "idle"
    assert "sobel" in answer["options"]["init"] and "adam" in answer["options"]["optimizer"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"kernel_size": 0}, "kernel_size"),
        ({"kernel_size": "5"}, "kernel_size"),
        ({"kernels": 1000}, "kernels"),
        ({"symmetry": "diagonal"}, "symmetry"),
        ({"init": "nonsense"}, "init"),
        ({"arch": "conv3x4,wobble"}, "arch"),
        ({"lr": -1}, "lr"),
        ({"lr": 1e9}, "lr"),
        ({"batch_size": True}, "batch_size"),
        ({"optimizer": "lbfgs"}, "optimizer"),
        ({"epochs": 0}, "epochs"),
        ({"colour": "red"}, "colour"),
        ({"data": "imagenet"}, "data"),
    ],
)
def test_bad_choices_are_refused_naming_the_field(client, payload, field):
    answer = post(client, "bad", "start", dict(SMALL, **payload), status=400)
    assert repr(field) in answer["error"], answer


def test_caps_and_misplaced_controls(app, client):
    too_long = post(client, "cap", "start", dict(SMALL, epochs=100, batch_size=1), status=413)
    assert "20,000" in too_long["error"]
    app.state.live.max_memory = 10 * 1024**2
    too_big = post(client, "cap", "start", dict(SMALL, batch_size=1024), status=413)
    assert "MB" in too_big["error"]
    assert "no run" in post(client, "cap", "pause", status=409)["error"]
    assert "unknown control" in post(client, "cap", "jump", status=400)["error"]
    missing = post(client, "cap", "start", dict(SMALL, data="cifar10"), status=404)
    assert "'data'" in missing["error"]
    response = client.get("/api/live/stream?session=x")
    assert response.status_code == 400 and "session" in response.json()["error"]
    assert not list((Path(app.state.live.runs_dir)).glob("*/*"))  # nothing written


def test_pause_step_learning_rate_stop_and_resume(app, client, tmp_path):
    started = post(client, "run", "start", SMALL)
    run_dir = Path(started["run_dir"])
    assert run_dir.parent == tmp_path / "runs"
    post(client, "run", "pause")
    paused = wait_for(app, "run", lambda s: s["status"] == "paused")
    step = paused["step"]
    assert post(client, "run", "lr", {"lr": 0.0123})["lr"] == 0.0123
    post(client, "run", "step")
    stepped = wait_for(app, "run", lambda s: s["step"] == step + 1 and s["status"] == "paused")
    page = app.state.live.page("live-test-run")
    assert page.trainer.optimizer.param_groups[0]["lr"] == 0.0123  # applied at the next step
    assert stepped["lr"] == 0.0123
    shown = live_view.decode_kernels(stepped["kernels"][0])
    np.testing.assert_array_equal(shown, page.trainer.model[0].weight.array)
    assert post(client, "run", "step", status=200)["status"] == "paused"  # one more step
    wait_for(app, "run", lambda s: s["step"] == step + 2)
    post(client, "run", "resume")
    start = time.perf_counter()  # at once: the run's 50 steps can be over in 0.3 s
    stopped = post(client, "run", "stop")
    assert time.perf_counter() - start < 1.0
    assert stopped["status"] == "stopped" and stopped["step"] < STEPS
    saved = serialization.load(run_dir / "checkpoint.kl")
    assert saved["step"] == stopped["step"] and saved["config"]["lr"] == 0.0123
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [run_dir.name]
    # `kernelab train --resume` continues it to the planned end, with the same timeline
    config = runs.resume_config(run_dir)
    runs.train_run(config, run_dir, resume=True, progress=False, log=lambda line: None)
    assert serialization.load(run_dir / "checkpoint.kl")["step"] == STEPS
    recorded = timeline.load_timeline(run_dir)
    assert recorded.steps[0] == 0 and recorded.steps[-1] == STEPS


def test_stopped_run_resumes_from_the_page_and_matches_an_uninterrupted_one(app, client, tmp_path):
    first = post(client, "again", "start", SMALL)
    wait_for(app, "again", lambda s: s["step"] >= 5)
    post(client, "again", "stop")
    again = post(client, "again", "start", SMALL)
    assert again["run_dir"] == first["run_dir"]  # the same run, continued
    done = wait_for(app, "again", lambda s: s["status"] == "finished")
    assert done["step"] == STEPS and done["confusion"] is not None
    assert np.sum(done["confusion"]) == 120  # every test image, at the last validation
    # the same config trained in one go by `kernelab train`'s code gives the same weights
    config = dict(serialization.load(Path(first["run_dir"]) / "checkpoint.kl")["config"])
    config.pop("mean"), config.pop("std")
    set_num_threads(1)  # as the page's run: the same sums in the same order
    model, _ = runs.train_run(config, tmp_path / "straight", progress=False, log=lambda s: None)
    resumed = serialization.load(Path(first["run_dir"]) / "checkpoint.kl")["model"]
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(resumed[name], value.array, err_msg=name)


def test_architecture_change_starts_a_new_run(app, client):
    first = post(client, "arch", "start", SMALL)
    wait_for(app, "arch", lambda s: s["step"] >= 2)
    second = post(client, "arch", "start", dict(SMALL, symmetry="x", init="sobel"))
    assert second["run_dir"] != first["run_dir"]
    assert (Path(first["run_dir"]) / "checkpoint.kl").exists()  # the first one saved
    shown = wait_for(app, "arch", lambda s: "-symx" in s.get("arch", "") and s["step"])
    assert shown["run_dir"] == second["run_dir"]
    post(client, "arch", "reset")
    assert state(app, "arch")["status"] == "idle"


def test_input_feature_maps_and_prediction(app, client):
    post(client, "input", "start", SMALL)
    post(client, "input", "pause")
    wait_for(app, "input", lambda s: s["status"] == "paused")
    pixels = np.zeros((1, 28, 28), np.uint8)
    pixels[0, 5:20, 12:15] = 255
    post(client, "input", "input", {"pixels": base64.b64encode(pixels.tobytes()).decode()})
    shown = wait_for(app, "input", lambda s: s["test_index"] is None)
    layers = shown["input"]["layers"]
    assert len(layers) == len(shown["input"]["structure"]) == 8
    model = app.state.live.page("live-test-input").trainer.model
    config = app.state.live.page("live-test-input").config
    x = (pixels.astype(np.float32) / 255 - np.float32(config["mean"])) / np.float32(config["std"])
    with no_grad():
        logits = model(Tensor(x[None])).array[0]
    np.testing.assert_allclose(shown["input"]["logits"], logits, rtol=1e-5, atol=1e-6)
    assert post(client, "input", "input", {"test_index": 10**6}, status=400)
    post(client, "input", "input", {"test_index": 3})
    assert wait_for(app, "input", lambda s: s["test_index"] == 3)


def read_events(response, count: int, timeout: float = 30.0) -> list[dict]:
    """``count`` data events of an open text/event-stream response."""
    events, buffer, deadline = [], b"", time.monotonic() + timeout
    while len(events) < count and time.monotonic() < deadline:
        buffer += response.readline()
        if buffer.endswith(b"\n\n"):
            text = buffer.decode()
            buffer = b""
            if text.startswith("data: "):
                events.append(json.loads(text[len("data: ") :]))
    return events


def test_stream_sends_coalesced_states_and_its_closing_stops_the_run(app, tmp_path):
    with served(app) as url:
        address = urlparse(url)
        connection = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
        connection.request("GET", "/api/live/stream?session=live-test-stream")
        response = connection.getresponse()
        assert response.status == 200
        assert response.getheader("content-type").startswith("text/event-stream")
        assert read_events(response, 1)[0]["status"] == "idle"
        control = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
        body = json.dumps(dict(SMALL, epochs=20))
        control.request("POST", "/api/live/start", body, headers("stream"))
        run_dir = Path(json.loads(control.getresponse().read())["run_dir"])
        events = read_events(response, 6)
        steps = [e["step"] for e in events]
        assert steps == sorted(steps) and steps[-1] > steps[0]
        last = events[-1]
        assert len(last["kernels"]) == 2 and last["kernels"][1]["shape"] == [8, 4, 3, 3]
        assert len(last["curves"]["loss"]) == len(last["curves"]["step"]) > 0
        # coalesced: a few states a second, not one per step
        assert last["step"] - events[1]["step"] >= len(events) - 2
        page = app.state.live.page("live-test-stream")
        connection.close()  # the tab closed
        deadline = time.monotonic() + 1.5
        while page.alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not page.alive() and page.status == "stopped"
        assert (run_dir / "checkpoint.kl").exists()


def test_requests_stay_quick_while_a_tab_trains(app, client):
    post(client, "busy", "start", dict(SMALL, epochs=20, kernels=16, kernels2=32))
    wait_for(app, "busy", lambda s: s["step"] >= 3)
    times = []
    for _ in range(20):
        start = time.perf_counter()
        assert client.get("/api/live", headers=headers("other")).status_code == 200
        times.append(time.perf_counter() - start)
        time.sleep(0.02)
    assert np.median(times) < 0.5  # generous: measured ~ms on 2 cores (see the bench script)
    post(client, "busy", "stop")


def test_explain_needs_a_run_unless_it_trains(capsys):
    assert cli.main(["explain"]) == 1
    assert "--train" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["studio", "--help"])
    text = capsys.readouterr().out
    assert "--runs-dir" in text and "explain --train" in text


def test_studio_command_trains_and_leaves_a_resumable_run_when_stopped(tmp_path, mnist_dir):
    """`kernelab studio` in a process of its own; its run saved when the server stops."""
    runs_dir = tmp_path / "page-runs"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kernelab.cli",
            "studio",
            "--port",
            "0",
            "--runs-dir",
            str(runs_dir),
            "--data-dir",
            str(mnist_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
        cwd=tmp_path,
    )
    try:
        line = process.stdout.readline()
        assert "http://127.0.0.1:" in line, (line, process.stderr.read() if process.poll() else "")
        url = line.split(" at ")[1].split()[0]
        request = urllib.request.Request(url + "api/model", headers=headers("cli"))
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.loads(response.read())["train"] is True
        body = json.dumps(dict(SMALL, epochs=20)).encode()
        request = urllib.request.Request(url + "api/live/start", body, headers("cli"))
        with urllib.request.urlopen(request, timeout=60) as response:
            run_dir = Path(json.loads(response.read())["run_dir"])
        time.sleep(1.0)
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl+C
        process.wait(timeout=20)
    assert run_dir.parent == runs_dir
    saved = serialization.load(run_dir / "checkpoint.kl")
    assert 0 < saved["step"] < 20 * 25
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page-runs"]  # nothing else written


def test_timeline_of_a_paused_run(app, client):
    post(client, "history", "start", SMALL)
    wait_for(app, "history", lambda s: s["step"] >= 4)
    assert "paused" in post(client, "history", "timeline", {"step": 0}, status=409)["error"]
    post(client, "history", "pause")
    paused = wait_for(app, "history", lambda s: s["status"] == "paused")
    steps = post(client, "history", "timeline")["steps"]
    assert steps == list(range(paused["step"] + 1))  # every step of a run this small
    run_dir = app.state.live.page("live-test-history").run_dir
    recorded = timeline.load_timeline(run_dir)
    answer = post(client, "history", "timeline", {"step": 2})
    for layer, name in zip(answer["kernels"], ("0.weight", "3.weight"), strict=True):
        np.testing.assert_array_equal(live_view.decode_kernels(layer), recorded.snapshot(2)[name])
    bad = post(client, "history", "timeline", {"step": 10**6}, status=400)
    assert "'step'" in bad["error"]
    assert state(app, "history")["step"] == paused["step"]  # the run itself did not move


def test_a_run_given_with_train_sets_the_first_choices(run_dir, tmp_path, mnist_dir):
    from .conftest import TINY

    app = create_app(
        run_dir,
        train=True,
        runs_dir=tmp_path / "runs",
        data_dir=str(mnist_dir),
        train_process=False,
    )
    with TestClient(app) as client:
        answer = client.get("/api/live", headers=headers("given")).json()
        assert answer["options"]["defaults"]["arch"] == TINY
        started = post(client, "given", "start", {"arch": TINY, "epochs": 1, "batch_size": 40})
        done = wait_for(app, "given", lambda s: s["status"] == "finished")
        assert done["step"] == 10 and done["arch"] == TINY
        assert Path(started["run_dir"]).parent == tmp_path / "runs"
        assert not list(run_dir.parent.glob("live-*"))  # nothing next to the explained run


def test_runs_in_a_process_of_their_own_answer_alike(tmp_path, mnist_dir):
    """The server's default: the runs train in a child process; calls and errors cross it."""
    app = create_app(None, train=True, runs_dir=tmp_path / "runs", data_dir=str(mnist_dir))
    try:
        with TestClient(app) as client:
            assert (
                "'kernels'" in post(client, "child", "start", {"kernels": 0}, status=400)["error"]
            )
            post(client, "child", "start", dict(SMALL, epochs=100, batch_size=1), status=413)
            post(client, "child", "step", status=409)
            run_dir = Path(post(client, "child", "start", dict(SMALL, epochs=20))["run_dir"])
            post(client, "child", "pause")
            # the status turns "paused" before the paused state is built and published: the
            # page's stream (latest) says so a moment later
            deadline = time.monotonic() + 60
            while (
                json.loads(app.state.live.latest("live-test-child", -1)[1] or "{}").get("status")
                != "paused"
            ):
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert app.state.live.check("live-test-child")["status"] == "paused"
            version, _ = app.state.live.latest("live-test-child", -1)
            assert app.state.live.latest("live-test-child", version) == (version, None)
            stopped = post(client, "child", "stop")
            assert stopped["status"] == "stopped"
            assert serialization.load(run_dir / "checkpoint.kl")["step"] == stopped["step"]
    finally:
        app.state.live.stop_all()
