"""The explain load test runs: a few tabs for a moment against a real server process.

The full run (64 tabs for a minute) is ``python bench/explain_load.py``; this one only keeps
the tool working, and checks that tabs past the server's limit hear their session expired.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root: ``bench``

pytest.importorskip("uvicorn")
pytest.importorskip("PIL")

from bench import explain_load  # noqa: E402


def test_tabs_past_the_limit_are_told_their_session_expired():
    status, text = explain_load.main(
        ["--sessions", "4", "--limit", "2", "--duration", "1.5", "--think", "0.02"]
        + ["--arch", "conv3x4-same,relu,maxpool2,flatten,linear10"]
    )
    assert "errors: 0" in text, text
    assert status == 0
    for endpoint in ("forward", "arithmetic", "edit", "410 session expired"):
        assert f"| {endpoint} |" in text
    assert "VmRSS" in text
