"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def _reference_candidates() -> list[Path]:
    env = os.environ.get("DISPO_REFERENCE")
    if env:
        return [Path(env)]
    # CI runs in a fresh clone with shared/ beside it; this workspace keeps it at /work/shared.
    return [REPO_ROOT.parent / "shared" / "reference" / "tinman-dd", Path("/work/shared/reference/tinman-dd")]


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The paper's released reference data (read-only); skips the test when absent."""
    for p in _reference_candidates():
        if p.is_dir():
            return p
    pytest.skip("reference data not found; set DISPO_REFERENCE to the tinman-dd directory")


@pytest.fixture
def dispo_cache(tmp_path, monkeypatch) -> Path:
    """An isolated DISPO_CACHE (models/ symlinked to the user's fetched models; skips when the
    embedded model is not fetched), set in os.environ for the test's duration; DISPO_RUNS unset."""
    from tests.helpers.relhelp import make_cache

    root = make_cache(tmp_path / "cache")
    monkeypatch.setenv("DISPO_CACHE", str(root))
    monkeypatch.delenv("DISPO_RUNS", raising=False)
    return root


@pytest.fixture
def server():
    """A scripted OpenAI-compatible server on 127.0.0.1 (tests.helpers.openai_server)."""
    from tests.helpers.openai_server import ScriptedServer

    s = ScriptedServer()
    s.thread.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


@pytest.fixture
def cache_dir(tmp_path):
    return str(tmp_path / "judgements")
