"""The Chef domain: French-cuisine fix-it / diagnose-it / compare / technique prompts.

Every item carries a gold checklist of 3-5 required claims; an answer is correct iff its
checklist coverage is >= 0.5 (paper). Items come from a hand-written knowledge base
(`dispo/data/chef/<topic>.yaml`, one file per topic) through two independent generators
(`chef_generators`) on disjoint facts: `train` and `eval` from generator A, `fresh` from
generator B; the three splits share no fact and no checklist claim.

Knowledge-base file format::

    topic: sauces                      # must equal the file name
    title: Sauces and emulsions
    units:
      - unit: hollandaise              # slug, part of the item id
        name: hollandaise              # how prompts name it
        facets:
          - facet: broken              # slug; id = chef/<a|b>/<topic>/<unit>-<facet>
            kind: failure              # failure | technique | compare | question
            symptom: split into ...    # failure: past-tense phrase after "My hollandaise"
            # task: (technique) "make ..." | other: (compare) noun | ask: (question) noun phrase
            myth: a wrong belief       # optional; generator B may ask a student claim-check
            certainty: CERTAIN         # CERTAIN | UNCERTAIN | AMBIGUOUS
            reason: why                # required unless CERTAIN
            claims:                    # 3-5 short checkable statements
              - claim: Overheating breaks the emulsion
                keywords: [[overheat, too hot], [emulsi, split, break]]   # see chef_match

Bump `KB_VERSION` whenever a claim or keyword changes: scores are cached by version.
"""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from dispo.core.errors import ConfigError, InputFileError
from dispo.core.paths import DATA_DIR
from dispo.core.types import Item, Score
from dispo.domains import DOMAINS
from dispo.domains.base import Domain
from dispo.domains.chef_generators import CERTAINTY_LABELS, GENERATORS, KIND_SLOTS, Facet
from dispo.domains.chef_match import coverage_flags
from dispo.domains.prompt_pool import POOL_SPLITS, read_pool
from dispo.judges.base import JudgeRequest

KB_VERSION = "chef-kb-v1"
KB_DIR = DATA_DIR / "chef"
KEYWORD_SCORER = "keywords"
KEYWORD_VERSION = "match-v1"
CORRECT_AT = 0.5  # paper: correct iff coverage >= 0.5
MIN_CLAIMS, MAX_CLAIMS = 3, 5


def _bad(path: Path, where: str, problem: str) -> InputFileError:
    return InputFileError(f"{path}: {where}: {problem}; fix that entry of the Chef knowledge base")


def _keywords(path: Path, where: str, raw: Any) -> tuple[tuple[tuple[str, ...], ...], ...]:
    if not isinstance(raw, list) or not raw or not all(isinstance(g, list) and g for g in raw):
        raise _bad(path, where, "keywords must be a non-empty list of non-empty synonym lists")
    groups = []
    for g in raw:
        syns = []
        for s in g:
            # YAML reads bare 82 as a number and bare no/yes as booleans: numbers are safe to
            # stringify, booleans lost their spelling, so they must be quoted in the file.
            if isinstance(s, bool) or not isinstance(s, (str, int, float)) or not str(s).strip():
                raise _bad(path, where, f"synonym {s!r} must be a non-empty string (quote yes/no/on/off)")
            syns.append(str(s))
        groups.append(tuple(syns))
    return tuple(groups)


def _facet(path: Path, topic: str, title: str, unit: dict, raw: dict) -> Facet:
    where = f"unit '{unit.get('unit')}' facet '{raw.get('facet')}'"
    for key in ("facet", "kind", "certainty", "claims"):
        if key not in raw:
            raise _bad(path, where, f"missing '{key}'")
    kind = raw["kind"]
    if kind not in KIND_SLOTS:
        raise _bad(path, where, f"kind '{kind}' is not one of {', '.join(KIND_SLOTS)}")
    for slot in KIND_SLOTS[kind]:
        if not raw.get(slot):
            raise _bad(path, where, f"kind '{kind}' needs a '{slot}' field")
    if raw["certainty"] not in CERTAINTY_LABELS:
        raise _bad(path, where, f"certainty must be one of {', '.join(CERTAINTY_LABELS)}")
    if raw["certainty"] != "CERTAIN" and not raw.get("reason"):
        raise _bad(path, where, "an UNCERTAIN or AMBIGUOUS fact needs a 'reason'")
    claims = raw["claims"]
    if not isinstance(claims, list) or not MIN_CLAIMS <= len(claims) <= MAX_CLAIMS:
        raise _bad(path, where, f"needs {MIN_CLAIMS}-{MAX_CLAIMS} claims")
    texts, keywords = [], []
    for i, c in enumerate(claims):
        if not isinstance(c, dict) or not c.get("claim"):
            raise _bad(path, where, f"claim {i + 1} needs 'claim' and 'keywords'")
        texts.append(c["claim"])
        keywords.append(_keywords(path, f"{where} claim {i + 1}", c.get("keywords")))
    return Facet(
        topic=topic,
        unit=unit["unit"],
        facet=raw["facet"],
        kind=kind,
        name=unit["name"],
        certainty=raw["certainty"],
        reason=raw.get("reason") or "standard technique in the classical references",
        claims=tuple(texts),
        keywords=tuple(keywords),
        symptom=raw.get("symptom"),
        task=raw.get("task"),
        other=raw.get("other"),
        ask=raw.get("ask"),
        myth=raw.get("myth"),
        topic_title=title,
    )


def load_topic(path: Path) -> list[Facet]:
    """Parse and validate one knowledge-base file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        line = f"line {where.line + 1}" if where else "somewhere"
        raise _bad(path, line, f"not valid YAML ({getattr(e, 'problem', e)})") from e
    if not isinstance(data, dict) or not isinstance(data.get("units"), list):
        raise _bad(path, "top level", "expected a mapping with 'topic', 'title' and a 'units' list")
    topic = data.get("topic")
    if topic != path.stem:
        raise _bad(path, "top level", f"topic '{topic}' must equal the file name '{path.stem}'")
    facets = []
    for unit in data["units"]:
        if not isinstance(unit, dict) or not unit.get("unit") or not unit.get("name"):
            raise _bad(path, f"unit {unit!r:.40}", "each unit needs 'unit' and 'name'")
        for raw in unit.get("facets") or []:
            facets.append(_facet(path, topic, data.get("title", topic), unit, raw))
    return facets


@lru_cache(maxsize=4)
def _load_kb_cached(kb_dir: str) -> tuple[Facet, ...]:
    facets: list[Facet] = []
    for path in sorted(Path(kb_dir).glob("*.yaml")):
        facets.extend(load_topic(path))
    seen: set[str] = set()
    for f in facets:
        if f.key in seen:
            raise InputFileError(f"{kb_dir}: fact '{f.key}' is defined twice; give one facet a new name")
        seen.add(f.key)
    return tuple(facets)


def load_kb(kb_dir: Path | str = KB_DIR) -> list[Facet]:
    """All facts of the knowledge base, topic files in name order, entries in file order."""
    return list(_load_kb_cached(str(kb_dir)))


def stratified(items: list[Item], limit: int | None) -> list[Item]:
    """A deterministic subset of `limit` items, spread evenly over topics.

    Topics are visited round-robin (in order of first appearance), each contributing its items
    in order, so limit=k*n_topics takes the first k of every topic; the result keeps the
    original item order so ids line up across runs with different limits.
    """
    if limit is None:
        return items
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ConfigError(f"limit must be a positive integer, got {limit!r}; pass e.g. limit=20 or omit it")
    by_topic: dict[str, list[int]] = defaultdict(list)
    for idx, item in enumerate(items):
        by_topic[item.gold["topic"]].append(idx)
    queues = list(by_topic.values())
    chosen: list[int] = []
    depth = 0
    while len(chosen) < min(limit, len(items)):
        for q in queues:
            if depth < len(q) and len(chosen) < limit:
                chosen.append(q[depth])
        depth += 1
    return [items[i] for i in sorted(chosen)]


@DOMAINS.register("chef")
class ChefDomain(Domain):
    """French-cuisine prompts with gold checklists; content = checklist coverage."""

    name = "chef"
    version = KB_VERSION
    # train_generated / fresh_generated: teacher-written pools on the train / fresh facts, read
    # from pool_dir (dispo.domains.prompt_pool; `dispo pool` writes them)
    splits = ("train", "eval", "fresh", *POOL_SPLITS)

    def __init__(self, seed: int = 0, kb_dir: Path | str | None = None, pool_dir: Path | str | None = None):
        self.seed = seed
        self.kb_dir = Path(kb_dir) if kb_dir else KB_DIR
        self.pool_dir = pool_dir

    def items(self, split: str = "eval", limit: int | None = None) -> list[Item]:
        if split in POOL_SPLITS:
            return stratified(read_pool(self.pool_dir, split), limit)
        if split not in GENERATORS:
            raise ConfigError(f"unknown chef split '{split}'; valid splits: {', '.join(self.splits)}")
        items = GENERATORS[split](load_kb(self.kb_dir), seed=self.seed, split=split)
        return stratified(items, limit)

    def content_score(self, item: Item, output: str, judge: Any | None = None) -> Score:
        return self.content_scores([item], [output], judge)[0]

    def content_scores(self, items: list[Item], outputs: list[str], judge: Any | None = None) -> list[Score]:
        """Checklist coverage for every output; with a judge, one batched `judge.coverage` call."""
        if len(items) != len(outputs):
            raise ValueError(f"{len(items)} items but {len(outputs)} outputs")
        if judge is None:
            return [self._keyword_score(i, o) for i, o in zip(items, outputs)]
        reqs = [
            JudgeRequest(
                question=i.prompt,
                response=o,
                claims=list(i.gold["checklist"]),
                keywords=i.gold["keywords"],
                certainty=i.gold.get("certainty"),
            )
            for i, o in zip(items, outputs)
        ]
        scores = judge.coverage(reqs)
        if len(scores) != len(reqs):
            raise RuntimeError(f"judge '{judge.name}' returned {len(scores)} scores for {len(reqs)} requests")
        scorer, version = f"{judge.name}.coverage", f"{KB_VERSION}+{judge.version}"
        return [self._wrap(s, scorer, version) for s in scores]

    @staticmethod
    def _wrap(score: Score, scorer: str, version: str) -> Score:
        if score.status != "ok" or score.value is None:
            return Score.unscored(scorer, version, score.reason or "judge gave no coverage")
        value = float(score.value)
        return Score(
            scorer=scorer,
            version=version,
            value=value,
            detail={"claims": list(score.detail.get("claims", [])), "correct": value >= CORRECT_AT},
        )

    @staticmethod
    def _keyword_score(item: Item, output: str) -> Score:
        flags = coverage_flags(output, item.gold["keywords"])
        value = sum(flags) / len(flags)
        return Score(
            scorer=f"{KEYWORD_SCORER}.coverage",
            version=f"{KB_VERSION}+{KEYWORD_VERSION}",
            value=value,
            detail={"claims": flags, "correct": value >= CORRECT_AT},
        )
