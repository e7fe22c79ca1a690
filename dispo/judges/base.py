"""The judge contract: five tasks, batched, each answer a `Score` (possibly unscored).

Every task takes a list so model judges can batch and HTTP judges can run concurrently.
A judge never invents a score: a failure is `Score.unscored(...)` with the reason.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from dispo.core.types import Score
from dispo.stats.catalog import AXES, MCAS5_DIMS  # noqa: F401  (judges score these)


@dataclass
class JudgeRequest:
    question: str
    response: str
    claims: list[str] = field(default_factory=list)  # coverage only
    keywords: list[list[list[str]]] = field(default_factory=list)  # per claim: synonym groups (lexical)
    kind: str | None = None  # mcas: tricky | straightforward
    certainty: str | None = None  # known certainty label, if the domain has one


class Judge(ABC):
    name: str = ""
    version: str = "v1"

    @abstractmethod
    def coverage(self, reqs: list[JudgeRequest]) -> list[Score]:
        """value = fraction of claims present (0..1); detail['claims'] = per-claim bools."""

    @abstractmethod
    def verbal(self, reqs: list[JudgeRequest]) -> list[Score]:
        """value = 'assert' | 'hedge'."""

    @abstractmethod
    def rubric(self, reqs: list[JudgeRequest]) -> list[Score]:
        """Response-blind two-pass 5-axis rubric. value = {axis: 1..5};
        detail['certainty'] = pass-1 label (CERTAIN|UNCERTAIN|AMBIGUOUS)."""

    @abstractmethod
    def mcas(self, reqs: list[JudgeRequest]) -> list[Score]:
        """value = 0 | 1 | 2."""

    @abstractmethod
    def mcas5(self, reqs: list[JudgeRequest]) -> list[Score]:
        """value = {dim: 1..5} over MCAS5_DIMS (the /25 variant)."""

    def describe(self) -> dict:
        """What to record in the run dir so the judgement can be reproduced."""
        return {"name": self.name, "version": self.version}
