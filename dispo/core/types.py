"""The records every layer passes around: items to ask, generations, and scores.

A sample line in `samples/<arm>.jsonl` is `Sample.to_json()`: one per item, carrying the
exact decoding parameters and every score with its scorer's name and version, so any
number in `results.json` can be traced back to the lines it came from. A claim in
`results.json` is `Claim.to_json()`.

The run directory is a public contract: `X.from_json(d).to_json() == d` for every record an
older dispo wrote (same keys, same order; fields this version does not know are kept in
`extra`), and a record built in code writes exactly the keys dispo has always written.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar


def _default(f) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return MISSING


class JsonRecord:
    """to_json/from_json for the dataclasses below.

    from_json remembers the key order it read (`_keys`) so a record read from an old run
    writes back unchanged. A field listed in `_OMIT_NONE` is left out of a freshly built
    record while it is None (it only exists for some records, e.g. a claim's flips)."""

    _OMIT_NONE: ClassVar[frozenset[str]] = frozenset()

    def _field_json(self, name: str, value: Any) -> Any:
        return value

    @classmethod
    def _field_from_json(cls, name: str, value: Any) -> Any:
        return value

    def to_json(self) -> dict[str, Any]:
        fs = [f for f in fields(self) if f.name not in ("extra", "_keys")]
        names = [f.name for f in fs]
        vals = {n: self._field_json(n, getattr(self, n)) for n in names}
        vals.update(self.extra)
        keys = self._keys
        if keys is None:
            order = [n for n in names if not (n in self._OMIT_NONE and vals[n] is None)] + list(self.extra)
        else:  # as read, plus anything set since that is not at its default
            order = [k for k in keys if k in vals]
            order += [f.name for f in fs if f.name not in keys and getattr(self, f.name) != _default(f)]
        return {k: vals[k] for k in order}

    @classmethod
    def from_json(cls, d: dict[str, Any]):
        if not isinstance(d, dict):
            raise TypeError(f"{cls.__name__}.from_json needs a JSON object, got {type(d).__name__}")
        names = {f.name for f in fields(cls)} - {"extra", "_keys"}
        known = {k: cls._field_from_json(k, v) for k, v in d.items() if k in names}
        obj = cls(**known, extra={k: v for k, v in d.items() if k not in names})
        obj._keys = tuple(d)
        return obj


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


@dataclass(frozen=True)
class ScoreKey:
    """The key of a score in a sample's `scores`: "task:source", e.g. "verbal:lexical",
    "correct:code" (task = what was scored, source = the judge or domain that scored it)."""

    task: str
    source: str

    def __str__(self) -> str:
        return f"{self.task}:{self.source}"

    @classmethod
    def parse(cls, key: str) -> "ScoreKey":
        task, _, source = key.partition(":")
        return cls(task, source)

    @staticmethod
    def of(task: str, source: str) -> str:
        """The key string, e.g. ScoreKey.of("verbal", judge.name)."""
        return f"{task}:{source}"


@dataclass
class Score(JsonRecord):
    """One scorer's verdict on one sample. status 'unscored' means the scorer failed; the
    value is then None and the sample is counted as unscored, never as 0 or 1."""

    scorer: str  # e.g. "lexical.verbal", "openai.rubric", "code.tests"
    version: str  # scorer + prompt version, e.g. "verbal-v1"
    value: Any
    status: str = "ok"  # ok | unscored
    reason: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict, repr=False)
    _keys: tuple[str, ...] | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.value is not None

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


@dataclass
class Sample(JsonRecord):
    """One line of `samples/<arm>.jsonl`: the item, what the model wrote, how, and every
    score keyed by ScoreKey ("task:source")."""

    id: str
    prompt: str | None = None  # the rendered prompt (after the chat template)
    messages: list[dict[str, str]] | None = None
    output: str | None = None
    finish_reason: str | None = None  # stop | length
    n_tokens: int | None = None
    decoding: dict[str, Any] | None = None
    seed: int | None = None
    scores: dict[str, Score] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict, repr=False)
    _keys: tuple[str, ...] | None = field(default=None, repr=False, compare=False)

    def _field_json(self, name: str, value: Any) -> Any:
        if name == "scores":
            return {str(k): (v.to_json() if isinstance(v, Score) else v) for k, v in value.items()}
        return value

    @classmethod
    def _field_from_json(cls, name: str, value: Any) -> Any:
        if name == "scores" and isinstance(value, dict):
            return {k: Score.from_json(v) if isinstance(v, dict) and "scorer" in v else v for k, v in value.items()}
        return value

    def score(self, task: str, source: str) -> Score | None:
        return self.scores.get(ScoreKey.of(task, source))


@dataclass
class Claim(JsonRecord):
    """One treatment-vs-baseline delta a run asserts (`results.json` "claims"): the metric's
    value in each arm on the paired items, the delta, its CI and p-value, and which scorers
    produced both sides (same_scorers False flags the judge-asymmetry artefact)."""

    _OMIT_NONE: ClassVar[frozenset[str]] = frozenset({"flips"})

    arm: str
    baseline: str
    metric: str
    n_pairs: int | None = None
    n_unpaired: int | None = None
    source: dict[str, Any] | None = None
    scorers: dict[str, Any] | None = None
    same_scorers: bool | None = None
    flips: dict[str, int] | None = None  # binary metrics: {"up": false->true, "down": true->false}
    base: float | None = None
    treat: float | None = None
    delta: float | None = None
    ci: list[float | None] | None = None
    p: float | None = None
    test: str | None = None
    p_holm: float | None = None
    significant: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)
    _keys: tuple[str, ...] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def build(cls, arm: str, baseline: str, paired: dict[str, Any]) -> "Claim":
        """A new claim from a paired comparison (stats.summary.paired_claim's dict)."""
        names = {f.name for f in fields(cls)} - {"extra", "_keys"}
        return cls(
            arm=arm,
            baseline=baseline,
            **{k: v for k, v in paired.items() if k in names},
            extra={k: v for k, v in paired.items() if k not in names},
        )
