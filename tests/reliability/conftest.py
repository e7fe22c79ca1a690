"""Reliability suite fixtures; the helpers live in tests/helpers/relhelp.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.relhelp import make_cache


@pytest.fixture
def dispo_cache(tmp_path, monkeypatch) -> Path:
    """DISPO_CACHE for in-process calls (set in os.environ for the test's duration)."""
    root = make_cache(tmp_path / "cache")
    monkeypatch.setenv("DISPO_CACHE", str(root))
    monkeypatch.delenv("DISPO_RUNS", raising=False)
    return root
