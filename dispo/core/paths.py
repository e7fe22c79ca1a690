"""Where dispo's own files live (configs, packaged data)."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = PACKAGE_DIR / "data"
PROMPTS_DIR = PACKAGE_DIR / "prompts"


def conf_dir() -> Path:
    env = os.environ.get("DISPO_CONF")
    return Path(env) if env else PACKAGE_DIR / "conf"


def runs_root() -> Path:
    return Path(os.environ.get("DISPO_RUNS", "runs"))
