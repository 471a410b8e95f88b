"""The server's limits: each refused before work starts with a one-line message naming it,
and a request just inside it answered; a model the page cannot serve refused at start-up."""

import io
import json
import logging
import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image
from starlette.testclient import TestClient

from kernelab import cli
from kernelab.apps import arch
from kernelab.apps.explain import compute, inputs, limits
from kernelab.apps.explain.app import create_app
from kernelab.apps.explain.source import Source

from .conftest import SESSION, drawn_digit, pixels_b64, served

DRAWING = {"pixels": pixels_b64(drawn_digit())}


@pytest.fixture
def client(run_dir):
    with TestClient(create_app(run_dir)) as test_client:
        yield test_client


def refused(response, status: int, words: str) -> str:
    """The error message, checked: the status, the words, one printable line under 300."""
    assert response.status_code == status, response.text
    message = response.json()["error"]
    assert words in message and len(message) < 300 and message.isprintable(), message
    return message


def forward(client, payload=DRAWING):
    return client.post("/api/forward", json=payload, headers=SESSION)


def padded(size: int) -> bytes:
    """A forward request of exactly ``size`` bytes (the drawing, and a field of padding)."""
    body = json.dumps({**DRAWING, "pad": ""})
    return body.replace('"pad": ""', '"pad": "' + "x" * (size - len(body)) + '"').encode()


def test_a_json_body_past_its_limit_is_refused_one_at_it_read(client, monkeypatch):
    monkeypatch.setattr(limits, "MAX_JSON_BYTES", 2000)
    post = lambda body: client.post("/api/forward", content=body, headers=SESSION)  # noqa: E731
    assert len(padded(2000)) == 2000 and post(padded(2000)).status_code == 200
    refused(post(padded(2001)), 413, "at most 2,000 are accepted (the JSON body limit)")
    # without Content-Length (chunked): reading stops at the limit
    refused(post(iter([padded(2001)[:1000], padded(2001)[1000:]])), 413, "the JSON body limit")


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height), 255).save(buffer, format="PNG")
    return buffer.getvalue()


def test_an_upload_past_its_byte_or_pixel_limit_is_refused(client, monkeypatch):
    upload = lambda body: client.post("/api/image", content=body, headers=SESSION)  # noqa: E731
    body = png(400, 300)
    monkeypatch.setattr(inputs, "MAX_UPLOAD_BYTES", len(body))
    assert upload(body).status_code == 200
    monkeypatch.setattr(inputs, "MAX_UPLOAD_BYTES", len(body) - 1)
    refused(upload(body), 413, "(the upload limit)")
    monkeypatch.setattr(inputs, "MAX_UPLOAD_BYTES", len(body))
    monkeypatch.setattr(inputs, "MAX_PIXELS", 400 * 300)
    assert upload(body).status_code == 200
    monkeypatch.setattr(inputs, "MAX_PIXELS", 400 * 300 - 1)
    refused(upload(body), 413, "the image is 400x300 pixels; at most 119,999")


def test_a_forward_pass_past_the_work_or_memory_limit_is_refused_before_it_runs(
    client, monkeypatch
):
    budget = client.app.state.explainer.budget
    work = budget.pass_work + budget.answer_bytes
    memory = budget.trace_bytes + budget.answer_bytes
    budget.max_work, budget.max_memory = work, memory
    assert forward(client).status_code == 200
    budget.max_work = work - 1
    with monkeypatch.context() as patched:  # nothing is computed for a refused request
        patched.setattr(compute, "trace", lambda *a: pytest.fail("traced past the limit"))
        message = refused(forward(client), 413, f"at most {work - 1:,} per request")
    assert message.startswith("a forward pass of this model (1 pass) needs about")
    assert message.endswith("(its work limit)")
    budget.max_work, budget.max_memory = work, memory - 1
    refused(forward(client), 413, "(its memory limit)")


def test_an_edited_model_needs_two_passes(client):
    budget = client.app.state.explainer.budget
    budget.max_work = 2 * budget.pass_work + budget.answer_bytes - 1
    assert forward(client).status_code == 200  # one pass: the trained model
    edit = {"layer": 0, "channel": 0, "spec": "sobel-x"}
    assert client.post("/api/kernel", json=edit, headers=SESSION).status_code == 200
    refused(forward(client), 413, "a forward pass of this model (2 passes)")
    budget.max_work += 1
    assert forward(client).json()["edits"] == 1


def test_the_kernels_of_a_larger_layer_are_refused(client):
    budget = client.app.state.explainer.budget
    small, large = 4 * 1 * (limits.fft(3, 3) + 9 * 24), 6 * 4 * (limits.fft(3, 3) + 9 * 24)
    budget.max_work = large - 1
    assert small < large - 1
    assert client.get("/api/kernels?layer=0", headers=SESSION).status_code == 200
    got = client.get("/api/kernels?layer=3", headers=SESSION)
    refused(got, 413, "the kernels of layer 3 (6x4x3x3) needs about")
    budget.max_work = large
    assert client.get("/api/kernels?layer=3", headers=SESSION).status_code == 200
    budget.max_work = 10_000  # a kernel's detail, and an edit, cost more than this
    refused(client.get("/api/kernel?layer=3&channel=0", headers=SESSION), 413, "a kernel of")
    edit = {"layer": 3, "channel": 0, "spec": "sobel-x"}
    refused(client.post("/api/kernel", json=edit, headers=SESSION), 413, "a kernel edit of")
    budget.max_work = limits.MAX_WORK
    assert client.post("/api/kernel", json=edit, headers=SESSION).status_code == 200


def test_a_model_too_large_for_the_page_is_refused_at_start(run_dir, monkeypatch, capsys):
    budget = create_app(run_dir).state.explainer.budget
    work = 2 * budget.pass_work + budget.answer_bytes  # a forward pass of an edited model
    monkeypatch.setattr(limits, "MAX_WORK", work)
    create_app(run_dir)
    monkeypatch.setattr(limits, "MAX_WORK", work - 1)
    with pytest.raises(ValueError, match="too large for the page: a forward pass"):
        create_app(run_dir)
    assert cli.main(["explain", str(run_dir), "--port", "0"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("kernelab explain: error: the model is too large for the page")
    assert "\n" not in err and "(its work limit)" in err


def test_an_input_too_large_for_a_request_is_refused_at_start(run_dir, monkeypatch):
    request = 4 * 262 + 256  # 784 pixels in base64, and the other fields
    monkeypatch.setattr(limits, "MAX_JSON_BYTES", request)
    create_app(run_dir)
    monkeypatch.setattr(limits, "MAX_JSON_BYTES", request - 1)
    with pytest.raises(ValueError, match="input 1x28x28 needs requests of 1,304 bytes"):
        create_app(run_dir)


def test_sessions_past_the_memory_for_all_of_them_are_refused_at_start(run_dir, monkeypatch):
    each = create_app(run_dir).state.explainer.budget.session_bytes
    monkeypatch.setattr(limits, "MAX_SESSIONS_MEMORY", 3 * each)
    create_app(run_dir, session_limit=3)
    with pytest.raises(ValueError, match="4 sessions x .* use --sessions 3 or fewer"):
        create_app(run_dir, session_limit=4)


def post(url: str, path: str, payload: dict) -> tuple[int, dict, dict]:
    """(status, headers, JSON answer) of a POST to a real server; never waits past 20 s."""
    request = urllib.request.Request(
        url + path.lstrip("/"), data=json.dumps(payload).encode(), headers=SESSION, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def test_requests_past_the_slots_and_queue_get_503_and_the_server_stays_responsive(run_dir, caplog):
    app = create_app(run_dir, running=1, waiting=1)
    explainer, slots = app.state.explainer, app.state.slots
    gate, computing = threading.Event(), threading.Event()
    original = explainer.forward

    def held(*args):  # the first forward pass holds its slot until the gate opens
        computing.set()
        assert gate.wait(20)
        return original(*args)

    explainer.forward = held
    with caplog.at_level(logging.WARNING), served(app) as url, ThreadPoolExecutor(6) as pool:
        urllib.request.urlopen(urllib.request.Request(url + "api/model", headers=SESSION))
        admitted = [pool.submit(post, url, "/api/forward", DRAWING)]
        assert computing.wait(10)
        admitted.append(pool.submit(post, url, "/api/forward", DRAWING))
        while slots.admitted < 2:  # one computing, one queued: the limit
            time.sleep(0.01)
        start = time.monotonic()
        turned_away = [post(url, "/api/forward", DRAWING) for _ in range(4)]
        model = urllib.request.Request(url + "api/model", headers=SESSION)
        with urllib.request.urlopen(model, timeout=5) as response:  # not a computation
            assert response.status == 200
        assert time.monotonic() - start < 5  # answered at once, not queued
        for status, headers, answer in turned_away:
            assert status == 503 and headers["retry-after"] == "1"
            message = answer["error"]
            assert message.startswith("the server is busy: 1 request computing and 1 waiting")
            assert "limit of requests in flight" in message and len(message) < 300
        gate.set()
        assert [f.result(timeout=20)[0] for f in admitted] == [200, 200]
        assert post(url, "/api/forward", DRAWING)[0] == 200  # free again
        assert slots.admitted == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_body_cut_short_by_the_client_leaves_no_error_in_the_log(run_dir, caplog):
    app = create_app(run_dir)
    with caplog.at_level(logging.WARNING), served(app) as url:
        host, port = url.removeprefix("http://").rstrip("/").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            head = f"POST /api/forward HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1000\r\n"
            sock.sendall(
                f"{head}X-Kernelab-Session: {SESSION['X-Kernelab-Session']}\r\n\r\n{{".encode()
            )
            sock.shutdown(socket.SHUT_WR)  # 1 byte of the 1,000 announced, then gone
            sock.recv(1000)
        assert post(url, "/api/forward", DRAWING)[0] == 200
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_kernels_larger_than_the_spectrum_grid_are_shown_on_their_own_size(caplog):
    model = arch.build("conv33x2-same,relu,flatten,linear10", (1, 28, 28), generator=0).eval()
    source = Source(model, {}, Path("wide"), "run", (1, 28, 28), 0.13, 0.31, list("0123456789"))
    with caplog.at_level(logging.WARNING), TestClient(create_app(source)) as client:
        kernels = client.get("/api/kernels?layer=0", headers=SESSION)
        assert kernels.status_code == 200, kernels.text
        assert kernels.json()["spectra"]["shape"] == [2, 33, 33]
        kernel = client.get("/api/kernel?layer=0&channel=1", headers=SESSION)
        assert kernel.json()["spectrum"]["shape"] == [1, 33, 33]
        budget = client.app.state.explainer.budget
        budget.max_work = 2 * (limits.fft(33, 33) + 33 * 33 * 24) - 1
        refused(client.get("/api/kernels?layer=0", headers=SESSION), 413, "(2x1x33x33)")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
