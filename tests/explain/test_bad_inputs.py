"""Bad requests get a clear 4xx message: uploads, indices, fields, paths, sessions, hosts."""

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image
from starlette.testclient import TestClient

from kernelab.apps.explain import inputs
from kernelab.apps.explain.app import create_app

from .conftest import SESSION, drawn_digit, pixels_b64


@pytest.fixture(scope="module")
def client(run_dir):
    with TestClient(create_app(run_dir)) as test_client:
        yield test_client


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def upload(client, body: bytes):
    return client.post("/api/image", content=body, headers=SESSION)


def refused(response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    assert words in response.json()["error"]


def test_a_good_upload_is_converted_like_mnist(client):
    picture = Image.new("RGB", (300, 200), "white")  # dark ink on light paper, in colour
    for x in range(140, 160):
        for y in range(30, 170):
            picture.putpixel((x, y), (20, 20, 90))
    answer = upload(client, png(picture))
    assert answer.status_code == 200, answer.text
    assert answer.json()["shape"] == [1, 28, 28]
    pixels = np.frombuffer(base64.b64decode(answer.json()["pixels"]), np.uint8).reshape(28, 28)
    assert pixels.max() == 255 and pixels[0].max() == 0  # inverted: bright ink, black paper
    rows, cols = np.nonzero(pixels > 128)
    assert rows.max() - rows.min() >= 18 and abs(cols.mean() - 13.5) < 2  # 20/28 tall, centred


def test_uploads_that_are_not_images(client):
    refused(upload(client, b""), 400, "empty")
    refused(upload(client, b"print('hello')\n" * 20), 415, "not an image")
    refused(upload(client, b"%PDF-1.4 a document"), 415, "not an image")


def test_a_truncated_image_is_called_corrupt(client):
    noise = np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)
    whole = png(Image.fromarray(noise))
    refused(upload(client, whole[: len(whole) // 2]), 400, "corrupt or truncated")


def test_too_many_pixels(client, monkeypatch):
    monkeypatch.setattr(inputs, "MAX_PIXELS", 1_000_000)
    refused(upload(client, png(Image.new("L", (2000, 1000)))), 413, "2000x1000 pixels")


def test_too_many_bytes(client, monkeypatch):
    monkeypatch.setattr(inputs, "MAX_UPLOAD_BYTES", 1000)
    refused(upload(client, png(Image.new("L", (28, 28))) + b"\0" * 2000), 413, "at most 1,000")


def test_static_files_cannot_escape_the_asset_folder(client):
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/").headers["content-type"].startswith("text/html")
    for path in [
        "/static/../app.py",
        "/static/..%2fapp.py",
        "/static/%2e%2e%2fsource.py",
        "/static/..%5c..%5csource.py",
        "/static/%2e%2e/%2e%2e/explain/app.py",
        "/static/app.js%00.py",
        "/static/.%2e/__init__.py",
        "/static/style.css/..",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
        "/../../etc/passwd",
    ]:
        response = client.get(path)
        assert response.status_code == 404, path
        assert "import" not in response.text and "root:" not in response.text


def test_every_api_response_carries_a_content_security_policy(client):
    response = client.get("/api/model", headers=SESSION)
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "payload,words",
    [
        ({"layer": 99, "channel": 0}, "layer 99 is out of range"),
        ({"layer": -1, "channel": 0}, "layer -1 is out of range"),
        ({"layer": 0, "channel": 4}, "(channel 4, y 0, x 0) is out of range"),
        ({"layer": 0, "channel": 0, "y": 28}, "(channel 0, y 28, x 0) is out of range"),
        ({"layer": 0, "channel": 0, "x": -1}, "(channel 0, y 0, x -1) is out of range"),
        ({"layer": 7, "channel": 10}, "(channel 10, y 0, x 0) is out of range"),
        ({"layer": 7, "channel": 0, "y": 1}, "out of range"),
        ({"layer": "0", "channel": 0}, "field 'layer' must be int"),
        ({"layer": True, "channel": 0}, "field 'layer' must be int"),
        ({"layer": 0, "channel": 1.5}, "field 'channel' must be int"),
        ({"channel": 0}, "missing field 'layer'"),
    ],
)
def test_arithmetic_out_of_range(client, payload, words):
    body = {"pixels": pixels_b64(drawn_digit()), **payload}
    refused(client.post("/api/arithmetic", json=body, headers=SESSION), 400, words)


@pytest.mark.parametrize(
    "query,words",
    [
        ("/api/kernels?layer=1", "has no kernels"),
        ("/api/kernels?layer=40", "out of range"),
        ("/api/kernels?layer=x", "must be an integer"),
        ("/api/kernels", "missing query parameter 'layer'"),
        ("/api/kernel?layer=0&channel=4", "kernel 4 is out of range"),
        ("/api/testset/999", "out of range"),
        ("/api/testset/abc", "is an integer"),
    ],
)
def test_kernel_and_test_set_indices(client, query, words):
    response = client.get(query, headers=SESSION)
    assert response.status_code in (400, 404), response.text
    assert words in response.json()["error"]


@pytest.mark.parametrize(
    "payload,words",
    [
        ({"layer": 0, "channel": 0}, "either 'values'"),
        ({"layer": 0, "channel": 0, "spec": "sobel-x", "values": [[0]]}, "either 'values'"),
        ({"layer": 0, "channel": 0, "spec": "unknown"}, "unknown kernel"),
        ({"layer": 0, "channel": 0, "spec": "sobel-x:5"}, "is 5x5; this layer's kernels are 3x3"),
        ({"layer": 0, "channel": 0, "spec": "gaussian:201:1"}, "is 201x201; this layer's"),
        ({"layer": 0, "channel": 0, "spec": "gaussian:15000:1"}, "at most 255"),
        ({"layer": 0, "channel": 0, "spec": "gaussian:3:1e400"}, "a number within"),
        ({"layer": 0, "channel": 0, "values": [[1, 2], [3, 4]]}, "must be 3x3"),
        ({"layer": 0, "channel": 0, "values": [["a", 0, 0]] * 3}, "rows of numbers"),
        ({"layer": 0, "channel": 0, "values": [[1e9, 0, 0]] * 3}, "magnitude"),
        ({"layer": 3, "channel": 0, "in_channel": 4, "spec": "box:3"}, "input channel 4"),
        ({"layer": 2, "channel": 0, "spec": "box:3"}, "has no kernels"),
    ],
)
def test_bad_kernel_edits(client, payload, words):
    refused(client.post("/api/kernel", json=payload, headers=SESSION), 400, words)


def test_not_a_number_in_a_kernel(client):
    body = '{"layer": 0, "channel": 0, "values": [[NaN, 0, 0], [0, 0, 0], [0, 0, 0]]}'
    response = client.post("/api/kernel", content=body, headers=SESSION)
    refused(response, 400, "finite")


def test_deeply_nested_json_is_refused_before_any_work(client):
    for depth in (9, 100_000):  # past the limit, and past what the JSON parser can recurse
        body = '{"layer": ' + "[" * depth + "]" * depth + "}"
        refused(client.post("/api/kernel", content=body, headers=SESSION), 400, "deeper than")


def test_bad_bodies_and_pixels(client, monkeypatch):
    refused(client.post("/api/forward", content=b"{not json", headers=SESSION), 400, "not valid")
    refused(client.post("/api/forward", json=[1, 2], headers=SESSION), 400, "JSON object")
    refused(client.post("/api/forward", json={"pixels": "%%%"}, headers=SESSION), 400, "base64")
    refused(
        client.post("/api/forward", json={"pixels": pixels_b64(np.zeros(10))}, headers=SESSION),
        400,
        "must hold 784 bytes",
    )
    big = json.dumps({"pixels": "A" * (2 * 1024 * 1024)})
    refused(client.post("/api/forward", content=big, headers=SESSION), 413, "at most")


def test_sessions_are_required_and_checked(client):
    refused(client.get("/api/model"), 400, "X-Kernelab-Session")
    refused(client.get("/api/model", headers={"X-Kernelab-Session": "short"}), 400, "malformed")
    refused(
        client.get("/api/model", headers={"X-Kernelab-Session": "../../etc/passwd"}),
        400,
        "malformed",
    )


def test_save_refuses_bad_names(client):
    for name in ["../escape", ".hidden", "a/b", "x" * 65]:
        refused(client.post("/api/save", json={"name": name}, headers=SESSION), 400, "run name")


def test_unknown_hosts_are_refused_when_bound_to_loopback(run_dir):
    app = create_app(run_dir, allowed_hosts=["127.0.0.1", "localhost"])
    with TestClient(app, base_url="http://127.0.0.1:8000") as local:
        assert local.get("/api/model", headers=SESSION).status_code == 200
        evil = local.get("/api/model", headers={**SESSION, "host": "evil.example:8000"})
        assert evil.status_code == 400
