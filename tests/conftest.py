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
