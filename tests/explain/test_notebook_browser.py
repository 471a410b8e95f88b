"""The page in a notebook's IFrame, in a real browser: a page served at localhost (as a local
Jupyter is) shows the page of ``kl.explain``, and cannot frame the page ``kernelab explain``
serves."""

import contextlib
import http.server
import threading
from pathlib import Path

import pytest

pytest.importorskip("playwright.sync_api", reason="the playwright package is missing")
if not Path("/usr/bin/chromium").exists():
    pytest.skip("no /usr/bin/chromium (apt-get install chromium)", allow_module_level=True)
pytest.importorskip("uvicorn")

import kernelab as kl  # noqa: E402
from kernelab.apps import arch  # noqa: E402
from kernelab.apps.explain.app import create_app, served_in_thread  # noqa: E402
from kernelab.apps.explain.source import model_source  # noqa: E402

from .test_browser import TIMEOUT, browser  # noqa: E402, F401


def notebook_like(frame_html: str):
    """A server at http://localhost:PORT/ whose page holds ``frame_html``; yields its address."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = f"<!doctype html><title>notebook</title>{frame_html}".encode()
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://localhost:{server.server_address[1]}/"


@contextlib.contextmanager
def framed(chromium, page_server):
    """A tab on a notebook-like localhost page holding ``page_server``'s IFrame: yields the
    tab and the frame; closes the tab and that page's server after."""
    notebook, address = notebook_like(page_server._repr_html_())
    tab = chromium.new_page()
    try:
        tab.set_default_timeout(TIMEOUT)
        tab.goto(address)
        yield tab, tab.frame_locator("iframe")
    finally:
        tab.close()
        notebook.shutdown()


def test_a_local_notebook_shows_the_page_kl_explain_serves(browser):  # noqa: F811
    page_server = kl.explain(arch.build(arch.CLASSIC, generator=0))
    try:
        with framed(browser, page_server) as (_, frame):
            frame.locator("#draw").wait_for()  # the page's drawing canvas, inside the frame
            assert frame.locator("#network").count() == 1
    finally:
        page_server.stop()


def test_no_page_may_frame_kernelab_explain(browser):  # noqa: F811
    app = create_app(model_source(arch.build(arch.CLASSIC, generator=0)))
    with served_in_thread(app) as url:
        notebook, address = notebook_like(f'<iframe src="{url}"></iframe>')
        try:
            tab = browser.new_page()
            with tab.expect_console_message(
                lambda m: "frame-ancestors 'none'" in m.text, timeout=TIMEOUT
            ):
                tab.goto(address)
            assert tab.frame_locator("iframe").locator("#draw").count() == 0
            tab.close()
        finally:
            notebook.shutdown()


def test_the_train_view_trains_inside_the_notebook_frame(browser, tmp_path, mnist_dir):  # noqa: F811
    runs_dir = tmp_path / "runs"
    model = arch.build(arch.CLASSIC, generator=0)
    page_server = kl.explain(model, train=True, runs_dir=runs_dir, data_dir=str(mnist_dir))
    try:
        with framed(browser, page_server) as (tab, frame):
            frame.locator("#tab-button-train:not([hidden])").click()
            for name, value in (("kernel-size", "3"), ("kernels", "4"), ("kernels2", "8")):
                frame.locator(f"#live-{name}").fill(value)
            frame.locator("#live-start").click()
            # the stream reaches the framed page: the run's steps count up there
            page = next(f for f in tab.frames if f.url.startswith(page_server.url))
            page.wait_for_function(
                "() => Number(document.querySelector('#live-status').dataset.step) >= 3",
                timeout=TIMEOUT * 2,
            )
    finally:
        page_server.stop(timeout=10)
    assert [p.name for p in runs_dir.iterdir()] and all(
        (p / "checkpoint.kl").exists() for p in runs_dir.iterdir()
    )
