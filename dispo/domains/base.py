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

    def available_splits(self) -> tuple[str, ...]:
        """The splits whose items exist here (a domain whose splits are written by a command,
        e.g. chef's generated pools, leaves out the ones not written yet)."""
        return self.splits

    def items_by_id(self) -> dict[str, Item]:
        """Every item of every available split, by id: the gold a stored sample is re-scored
        or regenerated against."""
        out: dict[str, Item] = {}
        for split in self.available_splits():
            out.update({i.id: i for i in self.items(split)})
        return out

    def content_scores(self, items: list[Item], outputs: list[str], judge: Any | None = None) -> list[Score]:
        return [self.content_score(i, o, judge) for i, o in zip(items, outputs)]


def items_by_id(domain: Any) -> dict[str, Item]:
    """`domain.items_by_id()`, also for a duck-typed domain (tests' stand-ins) with only
    `items(split)` and `splits`."""
    if isinstance(domain, Domain):
        return domain.items_by_id()
    out: dict[str, Item] = {}
    for split in getattr(domain, "splits", ("eval",)):
        out.update({i.id: i for i in domain.items(split)})
    return out
