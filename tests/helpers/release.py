"""Where the tests find the paper's release checkout (paper.repo): $DISPO_PAPER_REPO, else
../shared beside the clone (CI), else this workspace's /work/shared."""

from __future__ import annotations

import os
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
PAPER_REPO = Path(os.environ.get("DISPO_PAPER_REPO") or _ROOT.parent / "shared" / "reference" / "tinman-dd")
if not PAPER_REPO.is_dir():
    PAPER_REPO = Path("/work/shared/reference/tinman-dd")
