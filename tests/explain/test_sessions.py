"""Sessions past the server's limit: an evicted one is told it expired, never silently reset."""

import pytest
from starlette.testclient import TestClient

from kernelab.apps.explain import source
from kernelab.apps.explain.app import create_app

from .conftest import drawn_digit, pixels_b64

EXPIRED = "session expired (the server keeps 2 sessions); your kernel edits were lost"


@pytest.fixture
def client(run_dir):
    with TestClient(create_app(run_dir, session_limit=2)) as test_client:
        yield test_client


def tab(name: str) -> dict:
    return {"X-Kernelab-Session": f"tab-{name}-0000"}


def forward(client, session):
    return client.post("/api/forward", json={"pixels": pixels_b64(drawn_digit())}, headers=session)


def edit(client, session):
    return client.post(
        "/api/kernel", json={"layer": 0, "channel": 1, "spec": "sobel-x"}, headers=session
    )


def test_an_evicted_session_is_told_its_edits_were_lost(client):
    a = tab("a")
    assert edit(client, a).status_code == 200
    assert forward(client, a).json()["edits"] == 1
    for name in ("b", "c"):  # two newer sessions: a is the least recently used, evicted
        assert forward(client, tab(name)).status_code == 200
    for response in (forward(client, a), edit(client, a), client.get("/api/model", headers=a)):
        assert response.status_code == 410, response.text
        answer = response.json()
        assert answer["error"].startswith(EXPIRED)
        assert answer["error"].endswith("the model was reloaded")
        assert answer["expired"] is True
    assert forward(client, a).status_code == 410  # still expired: never the trained model as a
    fresh = forward(client, tab("a-again")).json()  # a new id carries on, with the trained model
    assert fresh["edits"] == 0
    assert fresh["logits"] == fresh["baseline_logits"]


def test_recently_used_sessions_stay_and_other_errors_keep_their_status(client):
    a, b = tab("a"), tab("b")
    edit(client, a)
    forward(client, b)
    forward(client, a)  # a used last: b is the one evicted next
    forward(client, tab("c"))
    assert forward(client, a).json()["edits"] == 1
    assert forward(client, b).status_code == 410
    malformed = client.get("/api/model", headers={"X-Kernelab-Session": "short"})
    assert malformed.status_code == 400 and "expired" not in malformed.json()


def test_the_memory_of_evicted_ids_is_bounded(client, monkeypatch):
    monkeypatch.setattr(source, "EXPIRED_MEMORY", 3)
    for k in range(7):  # evicts 5 sessions; the 3 evicted last are remembered
        assert forward(client, tab(str(k))).status_code == 200
    sessions = client.app.state.explainer.sessions
    assert len(sessions) == 2
    assert [forward(client, tab(str(k))).status_code for k in (2, 3, 4)] == [410] * 3
    assert forward(client, tab("0")).status_code == 200  # forgotten: a new session again
