"""Teacher-generated Chef prompt pools: requests, parsing, de-duplication, checklists, items.

The paper trained and tested on prompts a teacher wrote, not on its evaluation set: arc 1 on
684 generated prompts, arc 3's "fresh" test on ~200 new troubleshooting scenarios from
deepseek-v3.2-exp at T 0.9, de-duplicated against the training pool (6-character-shingle
Jaccard > 0.35 dropped) and within themselves (> 0.5 dropped), each given a new 3-5 claim
checklist by a second call at T 0.2 (eval/scripts/v1_full.py:54-120; v1_full_v2.py:45-70).
This module is that stage; the teacher is injected (anything with `generate(chats, ids)` and
`describe()`, or a plain `messages -> text` callable), so it runs offline in tests.

Two pools, named as splits of the chef domain:

  train_generated   written from the KB's `train` facts (arc 1's training pool)
  fresh_generated   written from the KB's `fresh` facts (arc 3's fresh test)

Fact conditioning (a deliberate difference from the paper): the paper's generator saw six
pool prompts as style examples and no fact. dispo asks once per fact and shows that fact's own
knowledge-base questions as the examples, so every scenario carries the fact id it was written
from. That is what keeps the pools fact-disjoint: a `fresh_generated` item shares no fact with
train/eval by construction, and one whose new checklist repeats a claim of another split's
fact is dropped (tested).

Files, under `<pool dir>/chef/` (resumable: every teacher request is keyed by the teacher,
its decoding and the exact messages, so a re-run with the same settings sends nothing):

  <split>.jsonl               the items (Item records)
  <split>.generations.jsonl   every teacher answer, keyed
  <split>.report.json         counts, drop reasons, teacher, prompts (with sha256), dedup rule

Unparseable output never stops the stage: each dropped line or scenario is counted with its
reason in the report.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from dispo.core import atomic
from dispo.core.errors import ConfigError, DispoError
from dispo.core.paths import PROMPTS_DIR
from dispo.core.types import Item
from dispo.domains.chef_generators import Facet, facts_of, generator_a, generator_b
from dispo.domains.chef_match import fold

# pool split -> the knowledge-base fact split its scenarios are written from
POOL_SPLITS = {"train_generated": "train", "fresh_generated": "fresh"}
POOL_VERSION = "chef-pool-v1"
PROMPT_SOURCES = ("dispo", "paper")
# the four texts a pool needs: the paper's (instruments in dispo.core.paper_source) or dispo's own
# versioned files under dispo/prompts/pools/
PROMPT_NAMES = {
    "scenario_system": ("fresh.scenario_system", "chef_scenario_system"),
    "scenario": ("fresh.scenario", "chef_scenario"),
    "checklist_system": ("fresh.checklist_system", "chef_checklist_system"),
    "checklist": ("fresh.checklist", "chef_checklist"),
}


# --------------------------------------------------------------------------- de-duplication


@dataclass(frozen=True)
class DedupRule:
    """The paper's rule (v1_full.py:90-119); defaults = paper.yaml facts.arc3.fresh_dedup."""

    shingle: int = 6
    pool_jaccard: float = 0.35
    intra_jaccard: float = 0.5

    @classmethod
    def from_config(cls, raw: dict | None) -> "DedupRule":
        raw = dict(raw or {})
        unknown = set(raw) - {"shingle", "pool_jaccard", "intra_jaccard"}
        if unknown:
            raise ConfigError(
                f"pool.dedup has unknown keys {sorted(unknown)}; valid: shingle, pool_jaccard, intra_jaccard"
            )
        k = raw.get("shingle", cls.shingle)
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"pool.dedup.shingle must be a positive integer, got {k!r}")
        out = {"shingle": k}
        for name in ("pool_jaccard", "intra_jaccard"):
            v = raw.get(name, getattr(cls, name))
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
                raise ConfigError(f"pool.dedup.{name} must be a number in [0, 1], got {v!r}")
            out[name] = float(v)
        return cls(**out)


def shingles(text: str, k: int = 6) -> set[str]:
    """The set of k-character shingles of `text` lowercased with every whitespace run folded to
    one space (v1_full.py:86-88): {s[i:i+k] : 0 <= i <= len(s)-k}. Empty for texts shorter
    than k."""
    s = re.sub(r"\s+", " ", text.lower()).strip()
    return {s[i : i + k] for i in range(max(0, len(s) - k + 1))}


def jaccard(a: set[str], b: set[str]) -> float:
    """J(A, B) = |A & B| / |A | B|, and 0 when either set is empty (an empty text is similar to
    nothing; v1_full.py:96-97 skips empty sets)."""
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def dedup(candidates: Sequence[str], reference: Sequence[str], rule: DedupRule = DedupRule()) -> list[str | None]:
    """For each candidate, None if kept, else why it was dropped (v1_full.py:90-119).

    With S = shingles(., rule.shingle) and J the Jaccard index:
      1. against the pool: drop c if max_r J(S(c), S(r)) > rule.pool_jaccard over `reference`;
      2. within the new set, in order: drop c if J(S(c), S(k)) > rule.intra_jaccard for an
         earlier candidate k that survived both steps.
    Both comparisons are strict: a pair exactly at a threshold is kept.
    """
    ref = [s for s in (shingles(r, rule.shingle) for r in reference) if s]
    out: list[str | None] = []
    kept: list[set[str]] = []
    for c in candidates:
        s = shingles(c, rule.shingle)
        j_pool = max((jaccard(s, r) for r in ref), default=0.0)
        if j_pool > rule.pool_jaccard:
            out.append(f"near-duplicate of the existing pool (Jaccard > {rule.pool_jaccard})")
            continue
        if any(jaccard(s, k) > rule.intra_jaccard for k in kept):
            out.append(f"near-duplicate within the new set (Jaccard > {rule.intra_jaccard})")
            continue
        kept.append(s)
        out.append(None)
    return out


# --------------------------------------------------------------------------- parsing

_THINK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL)
_LEAD = re.compile(r"^(?:\s*(?:[-*\u2022>#]+|\(?\d+[.)\]:]))+\s*")
# v1_full.py:79-80: a scenario must ask something (a question mark or one of these words)
_ASK_WORDS = ("diagnose", "fix", "salvage", "recover", "correct", "adjust", "rescue", "propose", "how", "what", "why")


def parse_scenarios(text: str, min_chars: int = 40, cut_last: bool = False) -> tuple[list[str], Counter]:
    """Scenario lines of a teacher answer, and a Counter of why other lines were dropped.

    The release's rule (v1_full.py:76-80): one scenario per line, leading numbering removed,
    lines of <= 40 characters dropped, and a line must contain '?' or an asking word. dispo also
    drops think blocks, bullets and quotes, and (cut_last: the answer hit max tokens) the last
    line, which may be cut mid-sentence. Blank lines are ignored, not counted.
    """
    dropped: Counter = Counter()
    text = _THINK.sub("", text or "")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if cut_last and lines:
        lines.pop()
        dropped["cut off at max tokens"] += 1
    out = []
    for ln in lines:
        if ln.startswith("```"):
            continue
        if len(ln) <= min_chars:
            dropped[f"line of <= {min_chars} characters"] += 1
            continue
        s = _LEAD.sub("", ln).strip().strip('"').strip()
        if not ("?" in s or any(w in s.lower() for w in _ASK_WORDS)):
            dropped["asks nothing (no '?' or asking word)"] += 1
            continue
        out.append(s)
    return out, dropped


_CLAIM_LEAD = re.compile(r"^\s*[-*\d.]+\s*")


def parse_claims(text: str) -> tuple[list[str] | None, str | None]:
    """(claims, None) or (None, why): the release's checklist rule (v1_full_v2.py:60-79, 92-95).

    Lines lose leading bullets/numbers and quotes; a claim is 7-139 characters; 3-6 claims are
    kept as they are, more than 6 are cut to the first 5, fewer than 3 drop the scenario.
    """
    text = _THINK.sub("", text or "")
    lines = [_CLAIM_LEAD.sub("", ln).strip().strip('"') for ln in text.splitlines()]
    claims = [ln for ln in lines if 6 < len(ln) < 140]
    if len(claims) > 6:
        claims = claims[:5]
    if len(claims) < 3:
        return None, f"checklist with {len(claims)} usable claim(s) (needs 3)"
    return claims, None


_STOP = set(
    "a an and are as at be been but by can do does for from has have how if in into is it its must "
    "not of on or should so than that the their then there these they this to too use used using "
    "was were what when where which while will with without you your about after before more most "
    "very also only each other same such".split()
)


def derived_keywords(claim: str, n: int = 2, prefix: int = 6) -> list[list[str]]:
    """Keyword groups for a generated claim, so the offline keyword scorer can score it:
    its `n` longest distinct content words (folded; stop words and words of < 4 letters out;
    numbers kept), each cut to a `prefix`-letter word prefix ("emulsion" -> "emulsi"), one group
    each. A rough proxy: a model judge (judge=openai/hf) reads the claim itself."""
    words: list[str] = []
    for w in fold(claim).split():
        if w not in words and w not in _STOP and (len(w) >= 4 or w.isdigit()):
            words.append(w)
    longest = sorted(words, key=lambda w: (-len(w), words.index(w)))  # stable: first occurrence wins ties
    groups: list[list[str]] = []
    for w in longest:
        p = w if w.isdigit() else w[:prefix]
        if [p] not in groups:
            groups.append([p])
    return groups[:n]


# --------------------------------------------------------------------------- prompts


@dataclass(frozen=True)
class PoolPrompts:
    """The scenario and checklist prompts (system + user template each), with where they came from."""

    texts: dict[str, str]
    tags: dict[str, str]  # name -> "<file stem>@sha12" or "paper:<instrument>@sha12"
    instruments: tuple = ()  # paper_source.Instrument records, for the run manifest

    @classmethod
    def load(cls, source: str = "dispo", paper_repo: str | None = None, version: str = "v1") -> "PoolPrompts":
        if source not in PROMPT_SOURCES:
            raise ConfigError(f"pool.prompts={source!r}; valid: {', '.join(PROMPT_SOURCES)}")
        texts, tags, used = {}, {}, []
        for name, (instrument, stem) in PROMPT_NAMES.items():
            if source == "paper":  # the release's own text, read at run time (never copied here)
                from dispo.core.paper_source import read_instrument

                ins = read_instrument(paper_repo, instrument)
                texts[name], tags[name] = ins.text, f"paper:{instrument}@{ins.sha256[:12]}"
                used.append(ins)
            else:
                p = PROMPTS_DIR / "pools" / f"{stem}.{version}.txt"
                if not p.is_file():
                    raise ConfigError(
                        f"pool prompt {p.name} not found in {p.parent}; pool.prompts_version={version!r}?"
                    )
                text = p.read_text(encoding="utf-8").strip()
                texts[name], tags[name] = text, f"{p.stem}@{hashlib.sha256(text.encode()).hexdigest()[:12]}"
        return cls(texts, tags, tuple(used))

    def scenario_messages(self, facet: Facet, n: int, examples: Sequence[str]) -> list[dict[str, str]]:
        from dispo.core.paper_source import fill

        block = "\n".join(f"{i + 1}. {e}" for i, e in enumerate(examples))  # as v1_full.py:58
        user = fill(
            self.texts["scenario"],
            n_target=str(n),
            example_block=block,
            name=facet.name,
            topic=facet.topic_title or facet.topic,
        )
        return [{"role": "system", "content": self.texts["scenario_system"]}, {"role": "user", "content": user}]

    def checklist_messages(self, question: str) -> list[dict[str, str]]:
        from dispo.core.paper_source import fill

        user = fill(self.texts["checklist"], q=question)
        return [{"role": "system", "content": self.texts["checklist_system"]}, {"role": "user", "content": user}]


# --------------------------------------------------------------------------- teachers


class CallableTeacher:
    """A plain `messages -> text` function as a teacher (tests, notebooks)."""

    def __init__(self, fn: Callable[[list[dict]], str], name: str = "callable"):
        self.fn, self.name = fn, name

    def generate(self, chats: list[list[dict]], ids: list[str]) -> list[dict]:
        return [{"output": str(self.fn(c)), "finish_reason": "stop"} for c in chats]

    def describe(self) -> dict:
        return {"backend": "callable", "model": self.name}


def as_teacher(obj: Any):
    if hasattr(obj, "generate") and hasattr(obj, "describe"):
        return obj
    if callable(obj):
        return CallableTeacher(obj, getattr(obj, "__name__", "callable"))
    raise ConfigError(f"a pool teacher must have generate()/describe() or be callable, got {type(obj).__name__}")


def _teacher_id(teacher) -> dict:
    d = teacher.describe()
    return {k: d.get(k) for k in ("backend", "model", "base_url", "decoding", "seed")}


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


class _Generations:
    """Teacher answers keyed by (teacher, decoding, messages), persisted after every batch."""

    def __init__(self, path: Path):
        self.path = path
        self.rows: dict[str, dict] = {}
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    r = json.loads(line)
                    self.rows[r["key"]] = r
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue  # a damaged line is just asked again
        self.sent = 0

    def answer(self, teacher, chats: list[list[dict]], ids: list[str]) -> list[dict]:
        tid = _teacher_id(teacher)
        keys = [_key(tid, c) for c in chats]
        todo = [i for i, k in enumerate(keys) if k not in self.rows]
        if todo:
            outs = teacher.generate([chats[i] for i in todo], [ids[i] for i in todo])
            if len(outs) != len(todo):
                raise DispoError(f"pool teacher returned {len(outs)} answers for {len(todo)} requests")
            for i, o in zip(todo, outs):
                self.rows[keys[i]] = {
                    "key": keys[i],
                    "id": ids[i],
                    "output": o.get("output") or "",
                    "finish_reason": o.get("finish_reason", "stop"),
                }
            self.sent += len(todo)
            atomic.write_jsonl(self.path, list(self.rows.values()))
        return [self.rows[k] for k in keys]


# --------------------------------------------------------------------------- the pool


@dataclass(frozen=True)
class PoolSettings:
    split: str = "fresh_generated"
    per_fact: int = 6  # scenarios asked per fact (36 fresh facts x 6 ~ the paper's ~200)
    max_facts: int | None = None  # first N facts of the split, spread over topics
    min_chars: int = 40  # v1_full.py:79
    dedup: DedupRule = field(default_factory=DedupRule)

    def __post_init__(self):
        if self.split not in POOL_SPLITS:
            raise ConfigError(f"pool split {self.split!r}; valid: {', '.join(POOL_SPLITS)}")
        for name in ("per_fact", "min_chars") + (("max_facts",) if self.max_facts is not None else ()):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < (0 if name == "min_chars" else 1):
                raise ConfigError(f"pool.{name} must be a positive integer, got {v!r}")


@dataclass
class PoolReport:
    split: str
    facts: int
    requests: dict[str, int]  # scenario / checklist requests this call sent (0 on a full resume)
    candidates: int
    items: int
    dropped: dict[str, int]
    teacher: dict
    checklist_teacher: dict
    prompts: dict[str, str]
    dedup: dict
    settings: dict
    version: str = POOL_VERSION

    def to_json(self) -> dict:
        return asdict(self)


def pool_paths(pool_dir: str | Path, split: str) -> dict[str, Path]:
    d = Path(pool_dir) / "chef"
    return {
        "items": d / f"{split}.jsonl",
        "generations": d / f"{split}.generations.jsonl",
        "report": d / f"{split}.report.json",
    }


def item_from_json(r: dict) -> Item:
    return Item(
        id=r["id"], prompt=r["prompt"], domain="chef", split=r["split"], gold=r["gold"], meta=r.get("meta") or {}
    )


def read_pool(pool_dir: str | Path | None, split: str) -> list[Item]:
    """The items of a generated pool, or one ConfigError line saying how to generate it."""
    path = pool_paths(pool_dir or ".", split)["items"]
    if not pool_dir or not path.is_file():
        raise ConfigError(
            f"no generated chef pool '{split}' in {Path(pool_dir or '.') / 'chef'}; generate it with "
            f"`dispo pool domain=chef split={split}` (pool.teacher.model=..., see docs/fidelity.md) or set domain.pool_dir"
        )
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(item_from_json(json.loads(line)))
            except (json.JSONDecodeError, KeyError, TypeError):
                raise ConfigError(
                    f"{path}:{n} is not a pool item; delete the file and generate the pool again"
                ) from None
    return rows


def _norm_claim(c: str) -> str:
    return fold(c)


def _spread(facets: list[Facet], n: int) -> list[Facet]:
    """The first `n` facts taken round-robin over topics (as chef.stratified does for items),
    in knowledge-base order."""
    by_topic: dict[str, list[int]] = {}
    for i, f in enumerate(facets):
        by_topic.setdefault(f.topic, []).append(i)
    chosen: list[int] = []
    depth = 0
    while len(chosen) < min(n, len(facets)):
        for q in by_topic.values():
            if depth < len(q) and len(chosen) < n:
                chosen.append(q[depth])
        depth += 1
    return [facets[i] for i in sorted(chosen)]


def generate_chef_pool(
    facets: list[Facet],
    settings: PoolSettings,
    teacher: Any,
    prompts: PoolPrompts,
    pool_dir: str | Path,
    checklist_teacher: Any | None = None,
    seed: int = 0,
) -> PoolReport:
    """Write `settings.split` under `pool_dir` from the KB `facets` with `teacher`; see the module doc.

    Reference for the pool de-duplication: every knowledge-base prompt (generators A and B) of
    the facts OUTSIDE the target fact split, the other generated pool if it exists, and the
    examples shown to the teacher (a copy of an example is not new). Foreign claims: the KB
    claims of those facts and the other pool's claims; a new checklist repeating one is dropped.
    """
    teacher = as_teacher(teacher)
    checklist_teacher = as_teacher(checklist_teacher) if checklist_teacher is not None else teacher
    fact_split = POOL_SPLITS[settings.split]
    mine = facts_of(facets, fact_split)
    if settings.max_facts is not None:
        mine = _spread(mine, settings.max_facts)
    if not mine:
        raise ConfigError(f"the chef knowledge base has no '{fact_split}' facts to write pool {settings.split} from")
    others = [f for f in facets if f.key not in {m.key for m in facts_of(facets, fact_split)}]
    reference = [it.prompt for it in generator_a(others, seed) + generator_b(others, seed)]
    foreign = {_norm_claim(c) for f in others for c in f.claims}
    paths = pool_paths(pool_dir, settings.split)
    for other in POOL_SPLITS:
        if other != settings.split and pool_paths(pool_dir, other)["items"].is_file():
            for it in read_pool(pool_dir, other):
                reference.append(it.prompt)
                foreign |= {_norm_claim(c) for c in it.gold.get("checklist", [])}
    gens = _Generations(paths["generations"])
    dropped: Counter = Counter()

    # 1. one scenario request per fact, its own KB questions as the examples
    examples = {f.key: [generator_a([f], seed)[0].prompt, generator_b([f], seed)[0].prompt] for f in mine}
    chats = [prompts.scenario_messages(f, settings.per_fact, examples[f.key]) for f in mine]
    answers = gens.answer(teacher, chats, [f"scenario:{f.key}" for f in mine])
    sent_scen = gens.sent
    cands: list[tuple[Facet, str]] = []
    for f, a in zip(mine, answers):
        lines, why = parse_scenarios(a["output"], settings.min_chars, cut_last=a["finish_reason"] == "length")
        dropped.update(why)
        if not lines:
            dropped["fact with no usable scenario"] += 1
        if len(lines) > settings.per_fact:
            dropped["more lines than requested"] += len(lines) - settings.per_fact
            lines = lines[: settings.per_fact]
        cands += [(f, s) for s in lines]

    # 2. the paper's shingle-Jaccard de-duplication
    ref = reference + [e for ex in examples.values() for e in ex]
    verdicts = dedup([s for _, s in cands], ref, settings.dedup)
    kept = []
    for c, v in zip(cands, verdicts):
        if v is None:
            kept.append(c)
        else:
            dropped[v] += 1

    # 3. a new checklist per kept scenario
    chats = [prompts.checklist_messages(s) for _, s in kept]
    answers = gens.answer(checklist_teacher, chats, [f"checklist:{f.key}:{i}" for i, (f, _) in enumerate(kept)])
    items = []
    for (f, s), a in zip(kept, answers):
        claims, why = parse_claims(a["output"])
        if claims is None:
            dropped[why] += 1
            continue
        if any(_norm_claim(c) in foreign for c in claims):
            dropped["checklist repeats a claim of another split"] += 1
            continue
        items.append(
            {
                "id": f"chef/gen/{f.key}/{hashlib.sha256(s.encode()).hexdigest()[:8]}",
                "prompt": s,
                "split": settings.split,
                "gold": {
                    "checklist": claims,
                    "keywords": [derived_keywords(c) for c in claims],
                    "checklist_source": "generated",
                    "certainty": f.certainty,
                    "certainty_reason": f.reason,
                    "topic": f.topic,
                    "unit": f.unit,
                    "facet": f.facet,
                    "fact_id": f.key,
                },
                "meta": {
                    "generator": f"pool:{teacher.describe().get('model')}",
                    "task_type": "scenario",
                    "fact_id": f.key,
                    "pool_version": POOL_VERSION,
                },
            }
        )
    atomic.write_jsonl(paths["items"], items)
    report = PoolReport(
        split=settings.split,
        facts=len(mine),
        requests={"scenario": sent_scen, "checklist": gens.sent - sent_scen},
        candidates=len(cands),
        items=len(items),
        dropped=dict(sorted(dropped.items())),
        teacher=teacher.describe(),
        checklist_teacher=checklist_teacher.describe(),
        prompts=dict(prompts.tags),
        dedup=asdict(settings.dedup),
        settings={k: v for k, v in asdict(settings).items() if k != "dedup"},
    )
    atomic.write_json(paths["report"], report.to_json())
    return report
