"""``kl.explain`` in a notebook: the page served from a thread of this process, framed by
local pages only, shown as an IFrame, stopped on demand and with the process."""

import json
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import kernelab as kl
from kernelab.apps import arch
from kernelab.apps.explain.app import create_app, served_in_thread
from kernelab.apps.explain.source import load_source, model_source

from .conftest import SESSION

SOURCE = Path(kl.__file__).resolve().parents[1]


def get(url: str, path: str):
    request = urllib.request.Request(url + path, headers=SESSION)
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.headers, json.loads(response.read())


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
        from kernelab.apps import arch
        page = kl.explain(arch.build(arch.CLASSIC))
        print(page.url, flush=True)
        """
    )
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip()
    with pytest.raises(urllib.error.URLError):
        get(url, "api/model")
