"""Versioned judge prompts, and the judge logic every prompt-driven (model) judge shares.

A prompt is a data file `dispo/prompts/judges/<task>.<version>.txt`. Leading `#` lines are
comments. Sections start with a header line: `[system]`, `[user]` (the chat messages, with
`{placeholder}` fields) and `[def:NAME]` (definitions filled into a placeholder: rubric
axes, MCAS kinds, MCAS5 dimensions). The whole file, definitions included, is hashed, so
`Prompt.sha12` changes whenever anything the judge reads changes.

Every `Score` a model judge returns carries `version = "<task>-<version>"` (e.g.
`rubric-v1`): falsify refuses to compare arms whose scores name different prompt versions,
the cause of the paper's +33.9 MCAS artefact.

`PromptedJudge` turns the five judge tasks into single-answer queries (one per checklist
claim, one per rubric axis, ...), answers them through the backend's `_answer_batch`
(next-token logits for `hf`, HTTP for `openai`), and caches every successful answer.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from dispo.core.errors import ConfigError
from dispo.core.paths import PROMPTS_DIR
from dispo.core.types import Score
from dispo.judges.base import AXES, MCAS5_DIMS, Judge, JudgeRequest

TASKS = ("coverage", "verbal", "rubric_pass1", "rubric_pass2", "mcas", "mcas5")
JUDGE_PROMPTS_DIR = PROMPTS_DIR / "judges"

YES_NO = ("YES", "NO")
ASSERT_HEDGE = ("ASSERT", "HEDGE")
CERTAINTY = ("CERTAIN", "UNCERTAIN", "AMBIGUOUS")
SCALE_1_5 = ("1", "2", "3", "4", "5")
MCAS_0_2 = ("0", "1", "2")

_HEADER = re.compile(r"^\[(system|user|def:[A-Za-z0-9_]+)\]\s*$")


@dataclass(frozen=True)
class Prompt:
    task: str
    version: str
    text: str
    sha12: str
    sections: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def tag(self) -> str:
        """What Score.version holds, e.g. 'rubric-v1' (pass 1 and 2 share the 'rubric' tag)."""
        return f"{self.task.split('_pass')[0]}-{self.version}"

    def messages(self, **fields: str) -> list[dict[str, str]]:
        """The chat messages with placeholders filled; a missing field is a KeyError."""
        out = []
        for role in ("system", "user"):
            if role in self.sections:
                out.append({"role": role, "content": self.sections[role].format(**fields)})
        return out

    def definition(self, name: str) -> str:
        try:
            return self.sections[f"def:{name}"]
        except KeyError:
            raise ConfigError(f"prompt {self.task}.{self.version} has no [def:{name}] section") from None


def _parse_sections(text: str) -> dict[str, str]:
    sections: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        m = _HEADER.match(line)
        if m:
            current = m.group(1)
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
        # lines before the first header are comments
    return {k: "\n".join(v).strip() for k, v in sections.items()}


def available_versions(task: str) -> list[str]:
    return sorted(p.name[len(task) + 1 : -4] for p in JUDGE_PROMPTS_DIR.glob(f"{task}.*.txt"))


@lru_cache(maxsize=None)
def load_prompt(task: str, version: str = "v1") -> Prompt:
    """Read `<task>.<version>.txt`; unknown task or version -> ConfigError naming the choices."""
    if task not in TASKS:
        raise ConfigError(f"unknown judge prompt task '{task}'; valid: {', '.join(TASKS)}")
    path = JUDGE_PROMPTS_DIR / f"{task}.{version}.txt"
    if not path.exists():
        raise ConfigError(
            f"no judge prompt {task} version '{version}'; available: "
            f"{', '.join(available_versions(task)) or 'none'} (set judge.prompt_version=...)"
        )
    text = path.read_text(encoding="utf-8")
    sha12 = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    return Prompt(task=task, version=version, text=text, sha12=sha12, sections=_parse_sections(text))


_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_WRAP = " \t\r\n*`\"'.:!_"


def parse_label(text: str | None, labels: tuple[str, ...]) -> str | None:
    """Strict: the whole answer (after dropping <think> blocks, surrounding whitespace,
    markdown emphasis, quotes and final punctuation) must be exactly one label.
    'YES, because...' or 'Score: 4' is None - a judge that does not follow the format is
    unscored rather than guessed at."""
    if text is None:
        return None
    core = _THINK.sub("", text).strip(_WRAP).upper()
    return core if core in labels else None


@dataclass(frozen=True)
class Query:
    """One single-answer question to the judge model."""

    task: str  # prompt task, e.g. 'coverage'
    messages: tuple[tuple[str, str], ...]  # (role, content) pairs: hashable, cacheable
    labels: tuple[str, ...]

    def chat(self) -> list[dict[str, str]]:
        return [{"role": r, "content": c} for r, c in self.messages]

    def inputs(self) -> dict[str, Any]:
        return {"task": self.task, "messages": [list(m) for m in self.messages], "labels": list(self.labels)}


@dataclass
class Answer:
    label: str | None  # one of the query's labels, or None = unscored
    reason: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    cached: bool = False


def _query(prompt: Prompt, labels: tuple[str, ...], **fields: str) -> Query:
    msgs = prompt.messages(**fields)
    return Query(task=prompt.task, messages=tuple((m["role"], m["content"]) for m in msgs), labels=labels)


class PromptedJudge(Judge):
    """A judge that asks a model one constrained question at a time.

    Subclasses set `name`, implement `_answer_batch(queries) -> list[Answer]` and
    `model_id()` (identifies the judge model in cache keys and describe()).
    """

    temperature: float = 0.0

    def __init__(self, prompt_version: str = "v1", cache: bool = True, cache_dir: str | None = None):
        from dispo.judges.cache import JudgementCache

        self.prompt_version = str(prompt_version)
        self.prompts = {t: load_prompt(t, self.prompt_version) for t in TASKS}
        self.version = self.prompt_version
        self.cache = JudgementCache(cache_dir) if cache else None

    # --- backend contract -------------------------------------------------------------
    def _answer_batch(self, queries: list[Query]) -> list[Answer]:
        raise NotImplementedError

    def model_id(self) -> str:
        raise NotImplementedError

    # --- shared machinery -------------------------------------------------------------
    def _ask(self, queries: list[Query]) -> list[Answer]:
        """Answer queries: cache hits first, each distinct miss asked once, successes stored."""
        from dispo.judges.cache import judgement_key

        keys = []
        for q in queries:
            p = self.prompts[q.task]
            keys.append(judgement_key(self.name, self.model_id(), f"{p.task}.{p.version}:{p.sha12}", q.inputs()))
        answers: dict[str, Answer] = {}
        misses: dict[str, Query] = {}
        for k, q in zip(keys, queries):
            if k in answers or k in misses:
                continue
            hit = self.cache.get(k) if self.cache else None
            if hit is not None and hit.get("label") in q.labels:
                answers[k] = Answer(hit["label"], None, hit.get("detail", {}), cached=True)
            else:
                misses[k] = q
        if misses:
            got = self._answer_batch(list(misses.values()))
            for k, a in zip(misses, got):
                answers[k] = a
                if self.cache and a.label is not None:
                    self.cache.put(k, {"label": a.label, "detail": a.detail})
        return [answers[k] for k in keys]

    def _score(self, task: str, tag: str, value: Any, detail: dict | None = None) -> Score:
        return Score(scorer=f"{self.name}.{task}", version=tag, value=value, detail=detail or {})

    def _unscored(self, task: str, tag: str, reason: str | None) -> Score:
        return Score.unscored(f"{self.name}.{task}", tag, reason or "judge gave no answer")

    # --- the five tasks ---------------------------------------------------------------
    def coverage(self, reqs: list[JudgeRequest]) -> list[Score]:
        p = self.prompts["coverage"]
        queries, spans = [], []
        for r in reqs:
            start = len(queries)
            for claim in r.claims:
                queries.append(_query(p, YES_NO, question=r.question, response=r.response, claim=claim))
            spans.append((start, len(queries)))
        answers = self._ask(queries)
        out = []
        for _r, (a, b) in zip(reqs, spans):
            if a == b:
                out.append(self._unscored("coverage", p.tag, "no checklist claims for this item"))
                continue
            mine = answers[a:b]
            bad = next((x for x in mine if x.label is None), None)
            if bad is not None:
                out.append(self._unscored("coverage", p.tag, f"claim not judged: {bad.reason}"))
                continue
            flags = [x.label == "YES" for x in mine]
            out.append(self._score("coverage", p.tag, sum(flags) / len(flags), {"claims": flags}))
        return out

    def verbal(self, reqs: list[JudgeRequest]) -> list[Score]:
        p = self.prompts["verbal"]
        answers = self._ask([_query(p, ASSERT_HEDGE, question=r.question, response=r.response) for r in reqs])
        return [
            self._score("verbal", p.tag, a.label.lower(), a.detail)
            if a.label
            else self._unscored("verbal", p.tag, a.reason)
            for a in answers
        ]

    def certainty(self, reqs: list[JudgeRequest]) -> list[Answer]:
        """Rubric pass 1: the question alone -> CERTAIN | UNCERTAIN | AMBIGUOUS."""
        p1 = self.prompts["rubric_pass1"]
        return self._ask([_query(p1, CERTAINTY, question=r.question) for r in reqs])

    def rubric(self, reqs: list[JudgeRequest]) -> list[Score]:
        p2 = self.prompts["rubric_pass2"]
        tag = p2.tag
        need = [i for i, r in enumerate(reqs) if not r.certainty]
        pass1 = dict(zip(need, self.certainty([reqs[i] for i in need])))
        certainty: list[tuple[str | None, str, str | None]] = []  # (label, source, reason)
        for i, r in enumerate(reqs):
            if r.certainty:
                lab = str(r.certainty).upper()
                certainty.append((lab if lab in CERTAINTY else None, "gold", f"bad gold certainty {r.certainty!r}"))
            else:
                a = pass1[i]
                certainty.append((a.label, "pass1", f"pass 1 (certainty) not judged: {a.reason}"))
        queries, owners = [], []
        for i, (r, (lab, _, _)) in enumerate(zip(reqs, certainty)):
            if lab is None:
                continue
            expected = "expected" if lab in ("UNCERTAIN", "AMBIGUOUS") else "NOT expected"
            for axis in AXES:
                queries.append(
                    _query(
                        p2,
                        SCALE_1_5,
                        question=r.question,
                        response=r.response,
                        certainty=lab,
                        hedging_expected=expected,
                        axis=axis,
                        axis_description=p2.definition(axis),
                    )
                )
                owners.append(i)
        answers = self._ask(queries)
        per_req: dict[int, list[Answer]] = {}
        for i, a in zip(owners, answers):
            per_req.setdefault(i, []).append(a)
        out = []
        for i, (lab, source, why) in enumerate(certainty):
            if lab is None:
                out.append(self._unscored("rubric", tag, why))
                continue
            mine = per_req[i]
            bad = next((x for x in mine if x.label is None), None)
            if bad is not None:
                out.append(self._unscored("rubric", tag, f"axis not judged: {bad.reason}"))
                continue
            value = {axis: int(x.label) for axis, x in zip(AXES, mine)}
            out.append(self._score("rubric", tag, value, {"certainty": lab, "certainty_source": source}))
        return out

    def mcas(self, reqs: list[JudgeRequest]) -> list[Score]:
        p = self.prompts["mcas"]
        queries = []
        for r in reqs:
            kind = r.kind if r.kind in ("tricky", "straightforward") else "tricky"
            queries.append(
                _query(p, MCAS_0_2, question=r.question, response=r.response, kind=kind, kind_rule=p.definition(kind))
            )
        return [
            self._score("mcas", p.tag, int(a.label), a.detail) if a.label else self._unscored("mcas", p.tag, a.reason)
            for a in self._ask(queries)
        ]

    def mcas5(self, reqs: list[JudgeRequest]) -> list[Score]:
        p = self.prompts["mcas5"]
        queries = [
            _query(
                p,
                SCALE_1_5,
                question=r.question,
                response=r.response,
                dimension=d,
                dimension_description=p.definition(d),
            )
            for r in reqs
            for d in MCAS5_DIMS
        ]
        answers = self._ask(queries)
        out, n = [], len(MCAS5_DIMS)
        for j in range(len(reqs)):
            mine = answers[j * n : (j + 1) * n]
            bad = next((x for x in mine if x.label is None), None)
            if bad is not None:
                out.append(self._unscored("mcas5", p.tag, f"dimension not judged: {bad.reason}"))
            else:
                out.append(self._score("mcas5", p.tag, {d: int(x.label) for d, x in zip(MCAS5_DIMS, mine)}))
        return out

    def describe(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "model": self.model_id(),
            "temperature": self.temperature,
            "prompts": {t: {"version": p.version, "sha12": p.sha12} for t, p in self.prompts.items()},
        }
