"""The page in a real browser (Chromium through Playwright): draw, click, edit, upload.

Skipped when the ``playwright`` package or ``/usr/bin/chromium`` is missing (CI installs
Debian's chromium; ``playwright install`` is never needed). Screenshots of each state go to
``$KERNELAB_SCREENSHOTS`` when set (the ones in ``docs/explain/`` were made with it, and with
``$KERNELAB_EXPLAIN_RUN`` pointing at the classic network trained by
``kernelab train --epochs 3 --run-dir classic``), else to a temporary folder.
"""

import io
import json
import os
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is missing")
CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip("no /usr/bin/chromium (apt-get install chromium)", allow_module_level=True)
pytest.importorskip("uvicorn")

from kernelab.apps.explain.app import create_app  # noqa: E402

from .conftest import served  # noqa: E402

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT = 15_000  # ms for any one thing to appear


@pytest.fixture(scope="module")
def url(run_dir):
    app = create_app(os.environ.get("KERNELAB_EXPLAIN_RUN") or run_dir, allowed_hosts=["127.0.0.1"])
    app.state.explainer.test_set.start()  # as `kernelab explain` does
    with served(app) as address:
        yield address


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def shots(tmp_path):
    folder = Path(os.environ.get("KERNELAB_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)

    def shot(page, name: str, full_page: bool = False) -> None:
        picture = Image.open(io.BytesIO(page.screenshot(full_page=full_page)))
        picture = picture.convert("RGB").quantize(256, dither=Image.Dither.NONE)
        picture.save(folder / f"{name}.png", optimize=True)

    return shot


def canvas_data(page, column: int, index: int) -> str:
    return page.evaluate(
        "([c, i]) => document.querySelectorAll('#network .column')[c]"
        ".querySelectorAll('canvas')[i].toDataURL()",
        [column, index],
    )


def draw_seven(page) -> None:
    page.locator("#draw").scroll_into_view_if_needed()  # an editor below may have scrolled it
    box = page.locator("#draw").bounding_box()
    x, y = box["x"], box["y"]
    page.mouse.move(x + 80, y + 60)
    page.mouse.down()
    page.mouse.move(x + 200, y + 60, steps=12)
    page.mouse.move(x + 120, y + 240, steps=16)
    page.mouse.up()


def open_page(browser, url, errors: list):
    page = browser.new_page(viewport={"width": 1360, "height": 860})
    page.set_default_timeout(TIMEOUT)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda m: (
            m.type == "error" and "Failed to load resource" not in m.text and errors.append(m.text)
        ),
    )
    page.goto(url)
    return page


def apply_preset(page, prefix: str) -> None:
    """Replace the kernel open in the editor by the hand-designed kernel named ``prefix...``."""
    page.wait_for_selector("#kernel-editor select option", state="attached")
    options = page.eval_on_selector_all(
        "#kernel-editor select option", "os => os.map(o => o.value)"
    )
    page.select_option("#kernel-editor select", next(o for o in options if o.startswith(prefix)))
    page.click("#apply-preset")


def prediction_rows(page) -> list[dict]:
    """Each class's row of the prediction: probability, logit and change as shown."""
    return page.eval_on_selector_all(
        "#probabilities li",
        "rows => rows.map(r => ({best: r.classList.contains('best'),"
        " probability: r.querySelector('.probability').innerText,"
        " logit: r.querySelector('.logit').innerText,"
        " change: r.querySelector('.change').innerText}))",
    )


def test_the_page_end_to_end(browser, url, shots):
    errors = []
    page = open_page(browser, url, errors)

    # A blank canvas predicts nothing.
    page.wait_for_selector("#probabilities[data-state=blank]")
    assert "no prediction" in page.inner_text("#prediction-note")
    rows = prediction_rows(page)
    assert not any(r["best"] or r["probability"] or r["logit"] or r["change"] for r in rows)

    # Drawing a stroke shows the probabilities and logits, the largest logit's class first.
    draw_seven(page)
    page.wait_for_selector("#probabilities[data-state=trained] li.best")
    rows = prediction_rows(page)
    logits = [float(r["logit"]) for r in rows]
    best = [i for i, r in enumerate(rows) if r["best"]]  # shown to 2 decimals: ties can show
    assert len(best) == 1 and logits[best[0]] == max(logits)
    assert all(r["probability"].endswith("%") and r["change"] == "" for r in rows)
    assert page.inner_text("#prediction-note") == ""
    shots(page, "1-draw")

    # A click on a feature-map pixel shows its arithmetic, equal to the engine's value.
    target = page.locator("#network .column").nth(1).locator(".map").nth(1)
    box = target.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.3)
    page.wait_for_selector("#arithmetic .equation .ok")
    assert "the same" in page.inner_text("#arithmetic")
    assert page.locator("#arithmetic table.grid").count() >= 3  # window, kernel, products
    assert page.locator("#network .mark.window").count() >= 1  # the window, on the input
    shots(page, "2-arithmetic")

    # The same for a deeper convolution (every input channel), and for the dense layer.
    target = page.locator("#network .column").nth(4).locator(".map").nth(2)
    box = target.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    page.wait_for_selector("#arithmetic h3:has-text('Layer 3') ~ .equation .ok")
    assert page.locator("#arithmetic details").count() > 1
    shots(page, "3-arithmetic-deep")
    box = page.locator("#network .column").nth(3).locator(".map").nth(0).bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    page.wait_for_selector("#arithmetic h3:has-text('MaxPool2d') ~ .equation .ok")
    assert page.locator("#arithmetic td.win").count() == 1  # the window's winner
    page.locator("#network .column").last.locator(".values > div").nth(7).click()
    page.wait_for_selector("#arithmetic table.terms")
    page.wait_for_selector("#arithmetic .equation .ok")
    shots(page, "4-dense")

    # Replacing a first-layer kernel by Sobel changes that layer's feature map, only that one.
    edited, other = canvas_data(page, 1, 0), canvas_data(page, 1, 1)
    trained = prediction_rows(page)
    page.click("#tabs button[data-tab=kernels]")
    page.locator("#kernel-grid .kernel").first.click()
    apply_preset(page, "sobel-x")
    page.wait_for_selector("#kernel-editor [role=status]:has-text('done: sobel-x')")
    page.wait_for_timeout(500)  # the grid redrawn after the edit keeps the editor and its status
    assert "done: sobel-x" in page.inner_text("#kernel-editor [role=status]")
    page.wait_for_function(
        "d => document.querySelectorAll('#network .column')[1].querySelectorAll('canvas')[0]"
        ".toDataURL() !== d",
        arg=edited,
    )
    assert canvas_data(page, 1, 1) == other
    assert "1 kernel edited" in page.inner_text("#edits")

    # The prediction shows what the edit changed: each logit against the trained model's.
    page.wait_for_selector("#probabilities[data-state=edited]")
    assert "trained model" in page.inner_text("#prediction-note")
    rows = prediction_rows(page)
    for before, after in zip(trained, rows, strict=True):
        change = float(after["change"].split()[0].replace("−", "-").replace("±", ""))
        assert change == pytest.approx(float(after["logit"]) - float(before["logit"]), abs=0.011)
        assert after["change"].endswith(" pp")
    assert any(not r["change"].startswith("±0") for r in rows)
    assert page.locator("#probabilities .bar > i:not([hidden])").count() == len(rows)
    shots(page, "5-kernel-sobel", full_page=True)
    page.click("#kernel-editor button:has-text('Reset this kernel')")
    page.wait_for_function(
        "d => document.querySelectorAll('#network .column')[1].querySelectorAll('canvas')[0]"
        ".toDataURL() === d",
        arg=edited,
    )
    assert page.locator("#edits").is_hidden()
    page.wait_for_selector("#probabilities[data-state=trained]")
    page.wait_for_selector("#kernel-editor h3:not(:has-text('edited'))")
    apply_preset(page, "sobel-x")  # again, for the pictures below
    page.wait_for_selector("#edits:has-text('1 kernel edited')")
    page.click("#tabs button[data-tab=network]")
    shots(page, "6-network-after-edit")

    # A file that is not an image gets a clear message; a real one a preview, and the label
    # of the test image shown before goes.
    page.wait_for_selector("#test-picker:not([hidden])")
    page.click("#test-load")
    page.wait_for_selector("#test-label:has-text('test image 0: label')")
    page.set_input_files(
        "#upload",
        files=[
            {
                "name": "notes.png",
                "mimeType": "image/png",
                "buffer": b"these are notes, not an image",
            }
        ],
    )
    page.wait_for_selector("#upload-error:has-text('not an image')")
    shots(page, "7-bad-upload")
    digit = Image.new("L", (120, 160), 255)
    digit.paste(0, (50, 20, 66, 140))
    buffer = io.BytesIO()
    digit.save(buffer, format="PNG")
    page.set_input_files(
        "#upload", files=[{"name": "one.png", "mimeType": "image/png", "buffer": buffer.getvalue()}]
    )
    page.wait_for_selector("#upload-preview:not([hidden])")
    assert page.inner_text("#upload-error") == ""
    assert page.inner_text("#test-label") == ""

    # Training: curves, confusion matrix, and a misclassified image loaded as the input.
    page.click("#tabs button[data-tab=training]")
    page.wait_for_selector("#curves svg")
    page.wait_for_selector("table.confusion", timeout=180_000)  # MNIST's 10,000 take a while
    shots(page, "8-training", full_page=True)
    if page.locator("#gallery figure").count():
        before = page.inner_text("#probabilities")
        page.locator("#gallery figure").first.click()
        page.wait_for_function(
            "b => document.querySelector('#probabilities').innerText !== b", arg=before
        )
    assert errors == []
    page.close()


def test_an_expired_session_is_said_once_and_the_page_carries_on(browser, url, shots):
    errors = []
    page = open_page(browser, url, errors)
    draw_seven(page)
    page.click("#tabs button[data-tab=kernels]")
    page.locator("#kernel-grid .kernel").first.click()
    apply_preset(page, "gaussian")
    page.wait_for_selector("#edits:has-text('1 kernel edited')")
    page.wait_for_selector("#kernel-grid .kernel.edited")
    for k in range(32):  # 32 newer sessions: the page's is the least recently used, evicted
        request = urllib.request.Request(
            url + "api/model", headers={"X-Kernelab-Session": f"crowd-{k:04d}"}
        )
        with urllib.request.urlopen(request) as response:
            assert response.status == 200

    draw_seven(page)  # the next forward pass hears that the session expired
    page.wait_for_selector("#notice:not([hidden])")
    notice = page.inner_text("#notice-text")
    assert notice.startswith("session expired (the server keeps 32 sessions)")
    assert "your kernel edits were lost, the model was reloaded" in notice
    page.wait_for_selector("#probabilities[data-state=trained] li.best")
    assert page.locator("#edits").is_hidden()
    page.wait_for_function("() => !document.querySelector('#kernel-grid .kernel.edited')")
    page.wait_for_selector("#kernel-editor h3:not(:has-text('edited'))")
    shots(page, "9-session-expired")
    page.click("#notice-close")
    apply_preset(page, "gaussian")  # the fresh session takes edits, and says nothing again
    page.wait_for_selector("#edits:has-text('1 kernel edited')")
    page.wait_for_selector("#probabilities[data-state=edited]")
    assert page.locator("#notice").is_hidden()
    assert errors == []
    page.close()


def test_a_busy_server_is_said_and_the_next_stroke_goes_through(browser, url):
    errors = []
    page = open_page(browser, url, errors)
    busy = "the server is busy: 2 requests computing and 16 waiting, its limit of requests"

    def turn_away(route):  # what the server answers when its slots and queue are full
        route.fulfill(
            status=503,
            headers={"retry-after": "1"},
            content_type="application/json",
            body=json.dumps({"error": f"{busy} in flight; try again in 1 s"}),
        )

    page.route("**/api/forward", turn_away)
    draw_seven(page)
    page.wait_for_selector("#notice:not([hidden])")
    assert page.inner_text("#notice-text").startswith(busy)
    assert page.inner_text("#forward-error").startswith(busy)
    page.unroute("**/api/forward")
    page.click("#notice-close")
    draw_seven(page)
    page.wait_for_selector("#probabilities[data-state=trained] li.best")
    assert page.inner_text("#forward-error") == ""

    # A GET (here a layer's kernels) is asked again after Retry-After.
    asked = []

    def busy_once(route):
        asked.append(route.request.url)
        turn_away(route) if len(asked) == 1 else route.continue_()

    page.route("**/api/kernels?*", busy_once)
    page.click("#tabs button[data-tab=kernels]")
    page.wait_for_selector("#kernel-grid .kernel")
    assert len(asked) == 2 and page.inner_text("#notice-text").startswith(busy)
    assert errors == []
    page.close()
