"""The MCAS domain: the paper's 500 Meta-Cognitive Awareness Score prompts.

Half are `tricky` (underspecified requests such as "Set up CI/CD for my project." where a good
answer asks or states its assumptions), half `straightforward`. There is no content scorer:
a judge gives each response 0/1/2 and MCAS = sum / (2N) * 100 (see `dispo.stats.metrics`).
Data: `dispo/data/mcas/prompts.jsonl` (tinmanlabsl/disposition-distillation ed3d921, MIT).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from dispo.core.errors import ConfigError, InputFileError
from dispo.core.paths import DATA_DIR
from dispo.core.types import Item, Score
from dispo.domains import DOMAINS
from dispo.domains.base import Domain

PROMPTS_FILE = DATA_DIR / "mcas" / "prompts.jsonl"
KINDS = ("tricky", "straightforward")


@lru_cache(maxsize=2)
def _load(path: str) -> tuple[Item, ...]:
    items = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            i, prompt, kind = int(row["i"]), str(row["prompt"]), row["type"]
        except (ValueError, KeyError, TypeError) as e:
            raise InputFileError(f"{path}:{lineno}: bad MCAS row ({e}); each line needs i, prompt, type") from e
        if kind not in KINDS:
            raise InputFileError(f"{path}:{lineno}: type '{kind}' must be one of {', '.join(KINDS)}")
        items.append(Item(id=f"mcas/{i}", prompt=prompt, domain="mcas", gold={"kind": kind}))
    return tuple(items)


@DOMAINS.register("mcas")
class McasDomain(Domain):
    """500 prompts, 250 tricky + 250 straightforward, scored only by a judge."""

    name = "mcas"
    version = "mcas-v1"
    splits = ("eval",)

    def __init__(self, path: Path | str | None = None):
        self.path = Path(path) if path else PROMPTS_FILE

    def items(self, split: str = "eval", limit: int | None = None) -> list[Item]:
        if split not in self.splits:
            raise ConfigError(f"unknown mcas split '{split}'; valid splits: {', '.join(self.splits)}")
        items = [Item(**{**vars(it), "gold": dict(it.gold), "meta": dict(it.meta)}) for it in _load(str(self.path))]
        if limit is None:
            return items
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ConfigError(f"limit must be a positive integer, got {limit!r}; pass e.g. limit=20 or omit it")
        # Alternate kinds so any limit keeps MCAS's tricky/straightforward balance.
        by_kind = [[n for n, it in enumerate(items) if it.gold["kind"] == k] for k in KINDS]
        chosen = [q[d] for d in range(max(map(len, by_kind))) for q in by_kind if d < len(q)][:limit]
        return [items[n] for n in sorted(chosen)]

    def content_score(self, item: Item, output: str, judge: Any | None = None) -> Score:
        return Score.unscored("mcas", "mcas-v1", "mcas has no content scorer; scored by a judge")
