"""``kl.explain`` in a notebook: the page served from a thread of this process, framed by
local pages only, shown as an IFrame, stopped on demand and with the process."""

import json
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import kernelab as kl
from kernelab.apps import arch
from kernelab.apps.explain.app import create_app, served_in_thread
from kernelab.apps.explain.source import load_source, model_source
from kernelab.core import serialization

from .conftest import SESSION

SOURCE = Path(kl.__file__).resolve().parents[1]


def get(url: str, path: str):
    request = urllib.request.Request(url + path, headers=SESSION)
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.headers, json.loads(response.read())


def post(url: str, path: str, payload: dict) -> dict:
    body = json.dumps(payload).encode()
    headers = dict(SESSION, **{"Content-Type": "application/json"})
    request = urllib.request.Request(url + path, body, headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def csp_frame_ancestors(headers) -> str:
    policy = dict(p.strip().split(" ", 1) for p in headers["content-security-policy"].split(";"))
    return policy["frame-ancestors"]


@pytest.fixture
def model():
    return arch.build(arch.CLASSIC, generator=0)


def test_a_model_in_memory_is_served_and_framed(model):
    page = kl.explain(model)
    try:
        assert page.url.startswith("http://127.0.0.1:") and page.running
        headers, answer = get(page.url, "api/model")
        assert answer["kind"] == "model" and answer["input_shape"] == [1, 28, 28]
        assert answer["params"] == sum(p.numel() for p in model.parameters())
        assert not answer["can_save"]
        ancestors = csp_frame_ancestors(headers)
        assert ancestors.split() == ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"]
        frame = page._repr_html_()
        assert "<iframe" in frame and f'src="{page.url}"' in frame
    finally:
        page.stop()
    assert not page.running
    with pytest.raises(urllib.error.URLError):
        get(page.url, "api/model")
    assert "stopped" in page._repr_html_() and "<iframe" not in page._repr_html_()
    page.stop()  # twice is harmless


def test_the_page_shows_the_model_as_it_was(model):
    source = model_source(model)
    before = model[0].weight.array.copy()
    model[0].weight.array[...] = 0
    np.testing.assert_array_equal(source.model[0].weight.array, before)
    assert source.model is not model and not source.model.training and model.training


def test_kernelab_explain_lets_no_page_frame_it(run_dir):
    with served_in_thread(create_app(load_source(run_dir))) as url:
        headers, _ = get(url, "api/model")
    assert csp_frame_ancestors(headers) == "'none'"


def test_a_run_folder_and_a_port(run_dir):
    page = kl.explain(str(run_dir))
    try:
        _, answer = get(page.url, "api/model")
        assert answer["kind"] == "run" and answer["name"] == run_dir.name
    finally:
        page.stop()


def test_a_model_that_takes_no_images_is_refused():
    with pytest.raises(ValueError, match="input_shape"):
        kl.explain(kl.nn.Linear(4, 2))


def run_python(code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"PYTHONPATH": str(SOURCE), "PATH": "/usr/bin:/bin"},
    )


def test_without_the_explain_extra_an_install_hint():
    done = run_python(
        """
        import sys
        sys.modules["starlette"] = sys.modules["uvicorn"] = None  # as if not installed
        import kernelab as kl
        from kernelab.apps import arch
        try:
            kl.explain(arch.build(arch.CLASSIC))
        except ImportError as error:
            print(error)
        """
    )
    assert 'pip install "kernelab[explain]"' in done.stdout, done.stderr


def test_import_kernelab_starts_no_web_server_and_the_server_ends_with_the_process():
    done = run_python(
        """
        import sys
        import kernelab as kl
        assert "starlette" not in sys.modules and "uvicorn" not in sys.modules
        assert "matplotlib" not in sys.modules  # kl.viz imports it when it draws
        from kernelab.apps import arch
        page = kl.explain(arch.build(arch.CLASSIC))
        print(page.url, flush=True)
        """
    )
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip()
    with pytest.raises(urllib.error.URLError):
        get(url, "api/model")


def test_train_opens_the_train_view_and_stop_saves_its_run(tmp_path, mnist_dir):
    runs_dir = tmp_path / "runs"
    page = kl.explain(train=True, runs_dir=runs_dir, data_dir=str(mnist_dir))
    try:
        headers, answer = get(page.url, "api/model")
        assert answer["train"] is True and answer["kind"] == "new"
        assert csp_frame_ancestors(headers).startswith("http://localhost:*")
        assert get(page.url, "api/live")[1]["state"]["status"] == "idle"
        small = {"kernel_size": 3, "kernels": 4, "kernels2": 8, "batch_size": 16, "epochs": 2}
        run_dir = Path(post(page.url, "api/live/start", small)["run_dir"])
        assert run_dir.parent == runs_dir
        deadline = time.monotonic() + 30
        while get(page.url, "api/live")[1]["state"]["step"] < 2:
            assert time.monotonic() < deadline, "the run made no steps"
            time.sleep(0.05)
    finally:
        page.stop(timeout=10)
    assert not page.running
    saved = serialization.load(run_dir / "checkpoint.kl")  # saved as the server stopped
    assert saved["step"] >= 2


def test_train_beside_a_model_in_memory(tmp_path, model):
    page = kl.explain(model, train=True, runs_dir=tmp_path / "runs")
    try:
        _, answer = get(page.url, "api/model")
        assert answer["train"] is True and answer["kind"] == "model"
        assert 'height="980"' in page._repr_html_()
    finally:
        page.stop()


def test_nothing_to_explain():
    with pytest.raises(ValueError, match="train=True"):
        kl.explain()
