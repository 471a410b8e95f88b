"""The timeline slider in a real browser: scrubbing shows the kernels recorded at each step.

Runs with the browser and server of test_browser.py (skipped where that one is).
"""

import os

import numpy as np

from kernelab.apps.timeline import load_timeline

from .test_browser import browser, canvas_data, draw_seven, open_page, shots, url  # noqa: F401

SHOWN = "() => document.getElementById('timeline').dataset.step"


def editor_values(page) -> list[float]:
    """The values of the kernel slice open in the editor, as the page shows them."""
    return page.eval_on_selector_all(
        "#kernel-editor .cells input", "inputs => inputs.map(i => Number(i.value))"
    )


def wait_for_kernel(page, expected: np.ndarray) -> None:
    """Wait until the editor shows ``expected`` (kH, kW), then check it value for value."""
    values = expected.astype(np.float64).ravel().tolist()
    page.wait_for_function(
        "values => { const shown = Array.from(document.querySelectorAll("
        "'#kernel-editor .cells input'), i => Number(i.value));"
        " return shown.length === values.length && shown.every((v, k) => v === values[k]); }",
        arg=values,
    )
    assert editor_values(page) == values  # float32 values, exact through JSON and the page


def scrub_to(page, key: str, step: int) -> None:
    page.focus("#timeline-slider")
    page.keyboard.press(key)
    page.wait_for_function(f"() => ({SHOWN})() === '{step}'")


def test_scrubbing_shows_the_kernels_recorded_at_each_step(browser, url, run_dir, shots):  # noqa: F811
    timeline = load_timeline(os.environ.get("KERNELAB_EXPLAIN_RUN") or run_dir)
    errors = []
    page = open_page(browser, url, errors)
    page.wait_for_selector("#timeline:not([hidden])")
    assert page.evaluate(SHOWN) == "trained"
    assert f"{len(timeline)} recorded steps" in page.inner_text("#timeline-label")
    draw_seven(page)
    page.wait_for_function("() => document.querySelector('#probabilities li.best')")
    trained_map = canvas_data(page, 1, 0)
    page.click("#tabs button[data-tab=kernels]")
    page.locator("#kernel-grid .kernel").nth(1).click()
    page.wait_for_selector("#kernel-editor .cells input")
    trained = editor_values(page)

    scrub_to(page, "Home", 0)  # the initial kernels
    wait_for_kernel(page, timeline.snapshot(0)["0.weight"][1, 0])
    assert "initial kernels" in page.inner_text("#timeline-label")
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    step = timeline.steps[3]
    page.wait_for_function(f"() => ({SHOWN})() === '{step}'")
    wait_for_kernel(page, timeline.snapshot(step)["0.weight"][1, 0])
    assert f"step {step} of {timeline.steps[-1]}" in page.inner_text("#timeline-label")
    shots(page, "timeline")

    page.click("#tabs button[data-tab=network]")  # the feature maps are step 3's too
    page.wait_for_function(
        "([before]) => document.querySelectorAll('#network .column')[1]"
        ".querySelectorAll('canvas')[0].toDataURL() !== before",
        arg=[trained_map],
    )
    assert page.inner_text("#probabilities li.best .change")  # compared with the trained model

    page.click("#tabs button[data-tab=kernels]")
    page.click("#timeline-trained")
    page.wait_for_function(f"() => ({SHOWN})() === 'trained'")
    page.wait_for_function(
        "values => Array.from(document.querySelectorAll('#kernel-editor .cells input'),"
        " i => Number(i.value)).every((v, k) => v === values[k])",
        arg=trained,
    )
    assert errors == []
    page.close()
