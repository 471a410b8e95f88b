"""The Train view in a real browser (Chromium through Playwright): start a run from the page,
see the loss curve and the kernels change, pause, step, scrub the run's kernel timeline and
check the kernels shown at step k against the ones recorded at step k, stop, and continue the
stopped run.

Skipped like ``test_browser.py`` without playwright or /usr/bin/chromium. Screenshots go to
``$KERNELAB_SCREENSHOTS`` when set; with ``KERNELAB_LIVE_CLASSIC=1`` the page trains the
classic network on MNIST (the offline subset when nothing else is there), as the ones in
``docs/explain/`` were made, else a tiny network on synthetic digits.
"""

import os
import time
from pathlib import Path

import numpy as np
import pytest

from kernelab.apps import timeline
from kernelab.apps.explain.app import create_app

from .conftest import served
from .test_browser import TIMEOUT, browser, draw_seven, open_page, shots  # noqa: F401

pytest.importorskip("playwright.sync_api", reason="the playwright package is missing")
CLASSIC = os.environ.get("KERNELAB_LIVE_CLASSIC") == "1"


@pytest.fixture
def live_app(tmp_path, mnist_dir):
    data_dir = None if CLASSIC else str(mnist_dir)
    app = create_app(None, train=True, runs_dir=tmp_path / "runs", data_dir=data_dir)
    with served(app) as url:
        yield app, url
    app.state.live.stop_all()


def shown(page) -> dict:
    """The state the page received last, once drawn (at the next animation frame, which a
    loaded machine can delay past a message): step, status, and the kernels as float
    arrays."""
    wait_until(
        page,
        "() => { const s = window.kernelabLive.state; return !s || !s.kernels ||"
        " document.querySelector('#live-kernel-view').dataset.step == s.step }",
    )
    return page.evaluate(
        "() => { const s = window.kernelabLive.state; return {step: s.step, status: s.status,"
        " run_dir: s.run_dir, points: Number(document.querySelector('#live-curves')"
        ".dataset.points || 0), shapes: (s.kernels || []).map(k => [k.shown, ...k.shape.slice(1)]),"
        " kernels: window.kernelabLive.kernels.map(k => Array.from(k))} }"
    )


def kernels_of(state: dict) -> list[np.ndarray]:
    return [
        np.asarray(v, np.float32).reshape(shape)
        for v, shape in zip(state["kernels"], state["shapes"], strict=True)
    ]


def wait_until(page, condition: str, argument=None) -> None:
    page.wait_for_function(condition, arg=argument, timeout=TIMEOUT * 4)


def test_train_from_the_page(browser, live_app, shots):  # noqa: F811
    app, url = live_app
    errors = []
    page = open_page(browser, url, errors)
    page.wait_for_selector("#tab-train:not([hidden])")
    assert page.is_hidden("#side-prediction")  # the opened model's: the Train view has its own
    if not CLASSIC:  # a tiny network on the synthetic digits: two epochs of 25 steps
        for name, value in (
            ("kernel-size", "3"),
            ("kernels", "4"),
            ("kernels2", "8"),
            ("batch-size", "16"),
            ("epochs", "20"),
        ):
            page.fill(f"#live-{name}", value)
    page.click("#live-start")
    wait_until(page, "() => (window.kernelabLive.state || {}).step >= 2")
    first = shown(page)
    wait_until(page, "k => (window.kernelabLive.state || {}).step >= k", first["step"] + 6)
    later = shown(page)
    assert later["points"] > first["points"]  # the loss curve grew
    assert not np.array_equal(kernels_of(first)[0], kernels_of(later)[0])  # the kernels moved
    draw_seven(page)  # the feature maps and prediction follow the drawing
    page.wait_for_selector("#live-prediction li.best")
    page.wait_for_selector("#live-maps canvas")
    if CLASSIC:
        wait_until(page, "() => !!(window.kernelabLive.state || {}).confusion")
        shots(page, "9-train", full_page=True)

    # Pause: the kernels shown are those of the step shown, as the timeline recorded them
    page.click("#live-pause")
    wait_until(page, "() => window.kernelabLive.state.status === 'paused'")
    paused = shown(page)
    # Step: one step at a time, up to the next step the timeline records (the tiny run
    # records every step; the classic network's schedule thins out after its first steps)
    session = page.evaluate("() => window.kernelabLive.id")
    planned = app.state.live.timeline(session, {})["planned"]
    target = min(s for s in planned if s > paused["step"])
    for step in range(paused["step"] + 1, target + 1):
        page.click("#live-step")
        wait_until(page, "k => window.kernelabLive.state.step === k", step)
    stepped = shown(page)
    assert stepped["status"] == "paused"
    run_dir = Path(stepped["run_dir"])
    recorded = timeline.load_timeline(run_dir)
    for state in (paused, stepped)[CLASSIC:]:
        assert state["step"] in recorded.steps
        snapshot = recorded.snapshot(state["step"])
        shown_kernels = kernels_of(state)
        np.testing.assert_array_equal(shown_kernels[0], snapshot["0.weight"])
        np.testing.assert_array_equal(
            shown_kernels[1], snapshot["3.weight"][: len(shown_kernels[1])]
        )
    assert "paused" in page.inner_text("#live-status")

    # Scrub the timeline: the kernels shown at step k are those the run recorded at step k
    page.wait_for_selector("#live-timeline:not([hidden])")
    steps = page.evaluate(
        "() => Array.from({length: Number(document.querySelector("
        "'#live-timeline-slider').max) + 1}, (_, i) => i)"
    )
    recorded = timeline.load_timeline(run_dir)
    for index in (1, len(steps) // 2):
        k = recorded.steps[index]
        page.eval_on_selector(
            "#live-timeline-slider",
            "(e, v) => { e.value = v; e.dispatchEvent(new Event('input')); }",
            index,
        )
        wait_until(page, "k => document.querySelector('#live-kernel-view').dataset.step == k", k)
        scrubbed = page.evaluate("() => window.kernelabLive.kernels.map(k => Array.from(k))")
        snapshot = recorded.snapshot(k)
        for values, name in zip(scrubbed, ("0.weight", "3.weight"), strict=True):
            expected = snapshot[name]
            np.testing.assert_array_equal(np.reshape(values, expected.shape), expected)
    if CLASSIC:
        shots(page, "10-train-timeline")
    page.click("#live-timeline-now")
    wait_until(
        page, "k => document.querySelector('#live-kernel-view').dataset.step == k", stepped["step"]
    )

    # Stop: a resumable run folder; Start again continues it
    start = time.perf_counter()
    page.click("#live-stop")
    wait_until(page, "() => window.kernelabLive.state.status === 'stopped'")
    assert time.perf_counter() - start < 2.0
    assert (run_dir / "checkpoint.kl").exists()
    stopped_at = shown(page)["step"]
    page.click("#live-start")
    wait_until(page, "k => window.kernelabLive.state.step > k + 2", stopped_at)
    assert shown(page)["run_dir"] == str(run_dir)
    page.click("#live-stop")
    wait_until(page, "() => window.kernelabLive.state.status === 'stopped'")
    page.click("#tabs button[data-tab=network]")
    assert page.is_visible("#side-prediction")
    assert not errors, errors
