"""Every explain JSON endpoint, fed any JSON, headers and uploads: a 2xx, or a 4xx whose
``{"error": ...}`` is one printable line under 300 characters; never a 500 or a traceback."""

import base64
import io
import json
from urllib.parse import quote

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

pytest.importorskip("starlette")
Image = pytest.importorskip("PIL.Image")

from starlette.testclient import TestClient  # noqa: E402

from kernelab.apps.explain.app import create_app  # noqa: E402

from .outcome import assert_clear, cut, flip  # noqa: E402

SESSION = {"X-Kernelab-Session": "fuzz-session-1"}
FIELDS = ["pixels", "centre", "layer", "channel", "in_channel", "y", "x", "values", "spec",
          "match_scale", "name", "step"]  # fmt: skip
GOOD_PIXELS = base64.b64encode(bytes(784)).decode()
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 12),
    st.integers(),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from([GOOD_PIXELS, GOOD_PIXELS[:-4], "sobel-x", "gaussian:5:1", "box:255",
                     "a" * 300, "run-1", "../x", ".", "x" * 65]),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=4), children)
    ),
    max_leaves=30,
)
payloads = st.dictionaries(st.sampled_from(FIELDS), values, max_size=6)
POSTS = ["/api/forward", "/api/arithmetic", "/api/kernel", "/api/kernel/reset", "/api/save",
         "/api/timeline"]  # fmt: skip
GETS = ["/api/model", "/api/kernels", "/api/kernel", "/api/training", "/api/testset",
        "/api/timeline"]  # fmt: skip


@pytest.fixture(scope="module")
def client(fuzz_run):
    with TestClient(create_app(fuzz_run), raise_server_exceptions=False) as test_client:
        yield test_client


def check(response) -> None:
    assert response.status_code < 500, response.text[:400]
    if response.status_code >= 400:
        assert_clear(ValueError(response.json()["error"]))


fuzz = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


@fuzz
@given(route=st.sampled_from(POSTS), payload=payloads)
@example(route="/api/kernel", payload={"layer": 0, "channel": 0, "spec": "a" * 5000})
@example(route="/api/kernel", payload={"layer": 0, "channel": 0, "values": [[1e308] * 3] * 3})
@example(route="/api/arithmetic", payload={"pixels": GOOD_PIXELS, "layer": 10**30})
@example(route="/api/save", payload={"name": "A" * 1000})  # quoted whole: 1,143 characters
@example(route="/api/kernel", payload={"layer": "a" * 1000, "channel": 0})
def test_json_bodies(client, route, payload):
    body = json.dumps(payload)  # NaN and Infinity included, as Python's json reads them
    check(client.post(route, content=body, headers=SESSION))


@fuzz
@given(route=st.sampled_from(POSTS), body=st.binary(max_size=200) | st.text(max_size=200))
@example(route="/api/forward", body="[" * 100_000)
@example(route="/api/forward", body='{"pixels": NaN}')
def test_bodies_that_are_not_json(client, route, body):
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    check(client.post(route, content=raw, headers=SESSION))


queries = st.dictionaries(
    st.sampled_from(["layer", "channel", "x"]),
    st.one_of(st.integers(-5, 12).map(str), st.integers().map(str), st.text(max_size=8)),
    max_size=3,
)


@fuzz
@given(
    route=st.sampled_from(GETS), query=queries, index=st.text(max_size=8) | st.integers().map(str)
)
def test_queries_and_indices(client, route, query, index):
    check(client.get(route, params=query, headers=SESSION))
    check(client.get(f"/api/testset/{quote(index, safe='')}", headers=SESSION))


@fuzz
@given(session=st.text(max_size=400).filter(lambda s: s.isascii() and "\n" not in s))
@example(session="s" * 5000)
def test_session_headers(client, session):
    check(client.get("/api/model", headers={"X-Kernelab-Session": session}))


def png(mode: str, size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format="PNG")
    return buffer.getvalue()


uploads = st.builds(png, st.sampled_from(["1", "L", "P", "RGB", "RGBA", "I;16", "LA"]),
                    st.tuples(st.integers(1, 60), st.integers(1, 60)))  # fmt: skip
flips = st.lists(st.tuples(st.integers(0, 10**4), st.integers(1, 255)), max_size=4)


@fuzz
@given(body=uploads, flips=flips, where=st.integers(0, 400) | st.just(10**6))
def test_uploads(client, body, flips, where):
    check(client.post("/api/image", content=cut(flip(body, flips), where), headers=SESSION))


def test_every_limit_is_a_4xx(client):
    """The body, depth and pixel limits answer 413/400 with their numbers."""
    deep = json.dumps({"pixels": [[[[[[[[[[0]]]]]]]]]]})
    check(client.post("/api/forward", content=deep, headers=SESSION))
    big = client.post("/api/forward", content=b" " * (2**20 + 1), headers=SESSION)
    assert big.status_code == 413
    side = int(np.sqrt(50_000_000)) + 1
    buffer = io.BytesIO()
    Image.new("1", (side, side)).save(buffer, format="PNG")
    bomb = client.post("/api/image", content=buffer.getvalue(), headers=SESSION)
    assert bomb.status_code == 413, bomb.text
    check(bomb)
