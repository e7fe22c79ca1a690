"""On-disk judgement cache: one small JSON file per judged query.

The key is sha256 over (judge name, judge model, prompt tag + sha, query inputs), so a
changed prompt file, a different judge model or different inputs never hit a stale entry.
Entries are written atomically (unique temp file in the same directory, then `os.replace`),
so concurrent writers - threads of one HTTP judge or several processes sharing the cache -
can only ever leave a complete file; the last writer wins, and both wrote the same answer.

Only successful answers are stored: an unscored query is retried on the next run.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from dispo.core import atomic


def default_cache_dir() -> Path:
    """`$DISPO_CACHE/judgements` (default ~/.cache/dispo/judgements)."""
    from dispo.models.embedded import cache_root

    return cache_root() / "judgements"


def judgement_key(judge: str, model: str, prompt: str, inputs: Any) -> str:
    """sha256 hex of the canonical JSON of everything that decides the answer."""
    blob = json.dumps(
        {"judge": judge, "model": model, "prompt": prompt, "inputs": inputs},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class JudgementCache:
    """get/put JSON-able answers by key under `root` (two-level fan-out by key prefix)."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root).expanduser() if root else default_cache_dir()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            with open(self.path(key), encoding="utf-8") as fh:
                return json.load(fh)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            # a corrupt entry (disk full, manual edit) is a miss, never a crash
            return None

    def put(self, key: str, value: dict[str, Any]) -> None:
        atomic.write_text(self.path(key), json.dumps(value, ensure_ascii=False, sort_keys=True))
