"""The records every layer passes around: items to ask, generations, and scores.

A sample line in `samples/<arm>.jsonl` is `Sample.to_json()`: one per item, carrying the
exact decoding parameters and every score with its scorer's name and version, so any
number in `results.json` can be traced back to the lines it came from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Item:
    """One prompt of a domain.

    gold holds what scoring needs, by domain:
      code:     {"task_id", "prompt_code", "test", "entry_point", "canonical_solution"}
      chef:     {"checklist": [claim, ...], "keywords": [per claim: [[syn, ...] per synonym group]],
                 "certainty": "CERTAIN|UNCERTAIN|AMBIGUOUS"}
      mcas:     {"kind": "tricky|straightforward"}
    turns: earlier messages for multi-turn items (recovery), as chat dicts.
    """

    id: str
    prompt: str
    domain: str
    split: str = "eval"
    system: str | None = None
    gold: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    turns: list[dict[str, str]] | None = None

    def messages(self, system: str | None = None) -> list[dict[str, str]]:
        sys = system if system is not None else self.system
        msgs: list[dict[str, str]] = []
        if sys:
            msgs.append({"role": "system", "content": sys})
        msgs.extend(self.turns or [])
        msgs.append({"role": "user", "content": self.prompt})
        return msgs


@dataclass
class Score:
    """One scorer's verdict on one sample. status 'unscored' means the scorer failed; the
    value is then None and the sample is counted as unscored, never as 0 or 1."""

    scorer: str  # e.g. "lexical.verbal", "openai.rubric", "code.tests"
    version: str  # scorer + prompt version, e.g. "verbal-v1"
    value: Any
    status: str = "ok"  # ok | unscored
    reason: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def unscored(cls, scorer: str, version: str, reason: str) -> "Score":
        return cls(scorer=scorer, version=version, value=None, status="unscored", reason=reason)


@dataclass
class Generation:
    """What the engine produced for one prompt."""

    id: str
    prompt: str  # rendered prompt text (after chat template)
    output: str
    finish_reason: str  # stop | length
    n_tokens: int
    decoding: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    cached: bool = False
