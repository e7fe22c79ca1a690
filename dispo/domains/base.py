"""The domain contract."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from dispo.core.types import Item, Score


class Domain(ABC):
    """A set of items plus the content scorer for them.

    `content_score` is the domain's own correctness measure (tests for code, checklist coverage
    for chef) and must be identical for every arm of a run. Disposition is scored by judges.
    """

    name: str = ""
    version: str = "v1"
    splits: tuple[str, ...] = ("eval",)

    @abstractmethod
    def items(self, split: str = "eval", limit: int | None = None) -> list[Item]: ...

    @abstractmethod
    def content_score(self, item: Item, output: str, judge: Any | None = None) -> Score:
        """Score one output. `judge` is used by domains whose content needs one (chef coverage)."""

    def content_scores(self, items: list[Item], outputs: list[str], judge: Any | None = None) -> list[Score]:
        return [self.content_score(i, o, judge) for i, o in zip(items, outputs)]
