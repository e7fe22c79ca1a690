"""Reliability suite fixtures; helpers live in relhelp.py (importlib import mode: the test
modules put this directory on sys.path)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from relhelp import make_cache  # noqa: E402


@pytest.fixture
def dispo_cache(tmp_path, monkeypatch) -> Path:
    """DISPO_CACHE for in-process calls (set in os.environ for the test's duration)."""
    root = make_cache(tmp_path / "cache")
    monkeypatch.setenv("DISPO_CACHE", str(root))
    monkeypatch.delenv("DISPO_RUNS", raising=False)
    return root
