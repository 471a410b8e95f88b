"""``kernelab explain`` from the shell, and an ONNX file as the source."""

import base64
import contextlib
import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest
from starlette.testclient import TestClient

from kernelab import cli
from kernelab.apps import runs
from kernelab.apps.explain.app import create_app
from kernelab.autograd import no_grad
from kernelab.core.tensor import Tensor

from .conftest import SESSION, drawn_digit, pixels_b64


def test_help_names_the_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["explain", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for word in ("--port", "--host", "--open", "127.0.0.1", ".onnx", "--sessions", "default 32"):
        assert word in text


@pytest.mark.parametrize("value", ["0", "-3", "two"])
def test_sessions_must_be_a_count(capsys, value):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["explain", "RUN", "--sessions", value])
    assert exit_info.value.code == 2
    assert "--sessions: expected a whole number" in capsys.readouterr().err


def test_a_missing_run_is_one_line_of_error(capsys, tmp_path):
    assert cli.main(["explain", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("kernelab explain: error: no run folder") and "\n" not in err


def test_a_busy_port_is_a_clear_error(capsys, run_dir):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert cli.main(["explain", str(run_dir), "--port", str(port)]) == 1
    assert "cannot listen on 127.0.0.1" in capsys.readouterr().err


@contextlib.contextmanager
def command(*args: str):
    """``kernelab explain ARGS`` in a process of its own; yields the address it prints."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "kernelab.cli", "explain", *args, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = process.stdout.readline()
        assert "http://127.0.0.1:" in line, (line, process.stderr.read() if process.poll() else "")
        yield line.split(" at ")[1].split()[0]
    finally:
        process.terminate()
        process.wait(timeout=10)


def status_of(url: str, tab: str) -> tuple[int, dict]:
    request = urllib.request.Request(url + "api/model", headers={"X-Kernelab-Session": tab})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_one_session_kept_evicts_the_other_tab(run_dir):
    with command(str(run_dir), "--sessions", "1") as url:
        assert status_of(url, "tab-a-0000")[0] == 200
        assert status_of(url, "tab-b-0000")[0] == 200  # a is evicted to make room
        status, answer = status_of(url, "tab-a-0000")
        assert status == 410 and answer["expired"] is True
        assert answer["error"].startswith("session expired (the server keeps 1 session); your")
        assert status_of(url, "tab-b-0000")[0] == 200


def test_the_command_prints_its_address_and_serves(run_dir):
    with command(str(run_dir)) as url:
        request = urllib.request.Request(url + "api/model", headers=SESSION)
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.loads(response.read())["name"] == run_dir.name
        with urllib.request.urlopen(url, timeout=10) as response:
            assert b"kernelab explain" in response.read()


def test_an_onnx_file_is_explained_like_a_run(run_dir, tmp_path):
    pytest.importorskip("onnx")
    from kernelab import onnx as kl_onnx

    model, config, _ = runs.load_run(run_dir)
    path = tmp_path / "tiny.onnx"
    kl_onnx.export(model, np.zeros((1, 1, 28, 28), np.float32), path)
    with TestClient(create_app(path)) as client:
        answer = client.get("/api/model", headers=SESSION).json()
        assert answer["kind"] == "onnx" and answer["input_shape"] == [1, 28, 28]
        assert not answer["can_save"] and "normalised" in answer["notes"][0]
        assert [layer["kind"] for layer in answer["layers"]][:3] == [
            "conv",
            "activation",
            "maxpool",
        ]
        view = client.post(
            "/api/forward", json={"pixels": pixels_b64(drawn_digit())}, headers=SESSION
        ).json()
        x = (drawn_digit().astype(np.float32) / 255 - np.float32(answer["mean"])) / np.float32(
            answer["std"]
        )
        with no_grad():
            expected = model(Tensor(x[None])).array[0]
        np.testing.assert_allclose(view["logits"], expected, rtol=1e-4, atol=1e-5)
        a = client.post(
            "/api/arithmetic",
            json={"pixels": pixels_b64(drawn_digit()), "layer": 0, "channel": 1, "y": 9, "x": 15},
            headers=SESSION,
        ).json()
        assert a["value"] == pytest.approx(a["engine"], abs=1e-5)
        refused = client.post("/api/save", json={}, headers=SESSION)
        assert refused.status_code == 400 and "ONNX" in refused.json()["error"]
        assert base64.b64decode(view["pixels"]) == drawn_digit().tobytes()
