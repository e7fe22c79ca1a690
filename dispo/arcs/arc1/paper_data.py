"""Arc 1's data types 2-4 built as the paper's release built them (`arc.data.construction=paper`).

  failure_trace   a student answer the release's rules call a failure is critiqued against the
                  gold answer by one teacher (CRITIQUE_PROMPT), rewritten by another
                  (CORRECTION_PROMPT), re-scored, and kept by clean_type2.py's rules; the SFT
                  example is single-turn: question -> rewrite (training/train_sft.py:32-34)
  counterexample  a teacher fabricates an authoritative answer with planted errors
                  (WRONG_RESPONSE_PROMPT); DPO chosen = the gold answer, rejected = the
                  fabrication, filtered by step12's quality check and clean_type3.py (a judge
                  decides the pairs the scorer ranks the wrong way round)
  boundary        a teacher writes NEW deferral questions in the release's 6 categories
                  (GENERATE_PROMPTS_SYSTEM), another answers them (DEFERRAL_RESPONSE_PROMPT);
                  no filter (train_sft.py:17,35-36 trains on every one)

"Gold" is the type-1 answer of the item (the Synthesizer's fresh target), as the release used
type1_gold.jsonl; the release's verifier score is dispo's content score of the domain.
The prompts are the release's, read at run time (dispo.core.paper_source); each role's
answers are cached in the run (`data/paper/<role>.jsonl`, keyed by everything that decides the
answer), so a resumed run regenerates nothing. The filter rules below are re-implemented from
the release scripts; each cites the line it follows.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from dispo.core import atomic
from dispo.core.errors import ConfigError
from dispo.core.types import Item, Score

ROLES = ("critic", "rewriter", "fabricator", "pair_judge", "boundary_writer", "boundary_answerer")
ROLES_FOR = {
    "failure_trace": ("critic", "rewriter"),
    "counterexample": ("fabricator", "pair_judge"),
    "boundary": ("boundary_writer", "boundary_answerer"),
}
# the release instrument each role fills in (dispo.core.paper_source.INSTRUMENTS)
INSTRUMENT_OF = {
    "critic": "data.failure_critique",
    "rewriter": "data.failure_correction",
    "fabricator": "data.counterexample",
    "pair_judge": "data.pair_judge",
    "boundary_writer": "data.boundary_prompts",
    "boundary_answerer": "data.boundary_answer",
}
PAPER_TYPES = tuple(ROLES_FOR)


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class RoleConfig:
    """One data teacher (arc.data_teachers.<role>)."""

    role: str
    backend: str
    model: str
    temperature: float
    max_tokens: int
    base_url: str | None = None
    api_key_env: str | None = None
    extra: dict | None = None

    def stage_cfg(self) -> dict:
        """The stage config `teachers.build_teacher` (and a teacher_factory) takes."""
        out: dict[str, Any] = {
            "backend": self.backend,
            "model": self.model,
            "decoding": {"temperature": self.temperature, "max_new_tokens": self.max_tokens},
        }
        if self.backend == "openai":
            out.update(base_url=self.base_url, api_key_env=self.api_key_env, extra=self.extra)
        return out


def role_configs(acfg: dict, types: Sequence[str], require_endpoint: bool = True) -> dict[str, RoleConfig]:
    """The roles the enabled types need, validated: one ConfigError line naming the key to set
    (require_endpoint=False: an injected teacher factory answers, no endpoint is called)."""
    dt = dict(acfg.get("data_teachers") or {})
    shared_url = dt.get("base_url") or (acfg.get("teachers") or {}).get("base_url")
    out: dict[str, RoleConfig] = {}
    for t in types:
        for role in ROLES_FOR.get(t, ()):
            r = dict(dt.get(role) or {})
            key = f"arc.data_teachers.{role}"
            backend = r.get("backend") or "openai"
            if backend not in ("hf", "openai"):
                raise ConfigError(f"{key}.backend={backend!r}; valid: hf, openai")
            for k in ("model", "temperature", "max_tokens"):
                if r.get(k) is None:
                    raise ConfigError(f"{key}.{k} is not set (protocol=paper sets the release's; or set {key}.{k}=...)")
            url = r.get("base_url") or shared_url
            if backend == "openai" and not url and require_endpoint:
                raise ConfigError(
                    f"{key} ({r['model']}) needs an OpenAI-compatible endpoint: set arc.data_teachers.base_url=URL "
                    f"(e.g. https://openrouter.ai/api/v1) or {key}.base_url=URL; offline: {key}.backend=hf "
                    f"{key}.model=smollm2-135m"
                )
            out[role] = RoleConfig(
                role,
                backend,
                str(r["model"]),
                float(r["temperature"]),
                int(r["max_tokens"]),
                url if backend == "openai" else None,
                r.get("api_key_env"),
                dict(r["extra"]) if r.get("extra") else None,
            )
    return out


@dataclass(frozen=True)
class PaperRules:
    """The release's thresholds (arc.data.paper; protocol=paper sets each from its facts)."""

    failure_score_gap: float
    failure_low_score: float
    failure_length_ratio: float
    failure_gold_min_chars: int
    trace_still_bad_below: float
    trace_shrunk_ratio: float
    counter_min_chars: int
    counter_min_gold_ratio: float
    counter_min_chosen_ratio: float
    boundary_seeds: bool = True
    boundary_per_category: int | None = None

    @classmethod
    def from_config(cls, pc: dict | None) -> "PaperRules":
        pc = dict(pc or {})
        vals = {}
        for f in cls.__dataclass_fields__.values():
            v = pc.get(f.name)
            if v is None and f.name not in ("boundary_seeds", "boundary_per_category"):
                raise ConfigError(
                    f"arc.data.paper.{f.name} is not set; arc.data.construction=paper takes the release's "
                    f"numbers from protocol=paper (or set arc.data.paper.{f.name}=...)"
                )
            vals[f.name] = v
        if vals["boundary_seeds"] is None:
            vals["boundary_seeds"] = True
        cap = vals["boundary_per_category"]
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 0):
            raise ConfigError(f"arc.data.paper.boundary_per_category must be null or an integer >= 0, got {cap!r}")
        return cls(**vals)


# --------------------------------------------------------------------------- the release's rules


def detect_failure(
    student_score: float, gold_score: float, student_chars: int, gold_chars: int, rules: PaperRules
) -> list[str]:
    """Why a student answer is a failure (empty: it is not one). step11b_failure_traces.py:216-246:
    any one of a score gap, a low score, or a much shorter answer than the gold. The verifier's
    issue list (:236-238) has no counterpart in dispo's content scorers, so it never fires."""
    reasons = []
    gap = gold_score - student_score
    if gap >= rules.failure_score_gap:  # step11b:227-229
        reasons.append(f"score_gap={gap:.2f} (student={student_score:.2f}, gold={gold_score:.2f})")
    if student_score < rules.failure_low_score:  # step11b:232-233
        reasons.append(f"low_score={student_score:.2f}")
    if gold_chars > rules.failure_gold_min_chars:  # step11b:241-244
        ratio = student_chars / gold_chars
        if ratio < rules.failure_length_ratio:
            reasons.append(f"length_ratio={ratio:.2f} (student={student_chars}, gold={gold_chars})")
    return reasons


def issues_field(reasons: Sequence[str]) -> str:
    """{verification_issues} of the critique prompt: one '- ' line per issue, the failure
    reasons standing in when the verifier found none (step11b:281-283)."""
    return "\n".join(f"- {r}" for r in reasons)


def clean_trace(
    student_score: float, corrected_score: float, student_chars: int, corrected_chars: int, rules: PaperRules
) -> tuple[str | None, list[str]]:
    """clean_type2.py: (drop reason or None, flags of a kept trace)."""
    if corrected_score <= student_score:  # clean_type2.py:17 (no signal)
        return "no signal (corrected <= student)", []
    if corrected_score < rules.trace_still_bad_below:  # clean_type2.py:20
        return f"still bad (corrected < {rules.trace_still_bad_below})", []
    if corrected_chars < student_chars * rules.trace_shrunk_ratio:  # clean_type2.py:23-25: flagged, still kept
        return None, ["shrunk"]
    return None, []


def counter_quality(wrong_chars: int, gold_chars: int, rules: PaperRules) -> str | None:
    """step12_counterexamples.py:247-253: a fabrication too short to be a pair (drop reason)."""
    if wrong_chars < rules.counter_min_chars:
        return f"too short (< {rules.counter_min_chars} chars)"
    if wrong_chars < gold_chars * rules.counter_min_gold_ratio:
        return f"much shorter than gold (< {rules.counter_min_gold_ratio} x)"
    return None


def clean_pair_length(chosen_chars: int, rejected_chars: int, rules: PaperRules) -> str | None:
    """clean_type3.py:57: rejected under half the chosen's length (drop reason)."""
    if rejected_chars / max(chosen_chars, 1) < rules.counter_min_chosen_ratio:
        return f"length (rejected < {rules.counter_min_chosen_ratio} x chosen)"
    return None


def is_inverted(wrong_score: float | None, gold_score: float | None) -> bool:
    """clean_type3.py:64: the scorer does not rank the fabrication below the gold (unscored: it
    cannot tell either, so the judge decides)."""
    return wrong_score is None or gold_score is None or wrong_score >= gold_score


def parse_verdict(text: str) -> str:
    """clean_type3.py:37-41: first line, upper-cased: starts with A / B, else TIE."""
    first = (text or "").strip().split("\n")[0].strip().upper()
    if first.startswith("A"):
        return "A"
    if first.startswith("B"):
        return "B"
    return "TIE"


def parse_boundary_prompts(text: str) -> list[str]:
    """step13_boundary_cases.py:322-337: a JSON array (code fences removed), else the lines
    longer than 20 characters that contain a '?' (bullets and quotes stripped)."""
    cleaned = re.sub(r"```json\s*", "", text)
    cleaned = re.sub(r"```\s*$", "", cleaned).strip()
    try:
        got = json.loads(cleaned)
        if not isinstance(got, list):
            raise ValueError("not a list")
        return [p if isinstance(p, str) else str(p) for p in got]  # step13:346
    except (json.JSONDecodeError, ValueError):
        out = []
        for line in text.split("\n"):
            line = line.strip().strip("-").strip("*").strip('"').strip()
            if line and len(line) > 20 and "?" in line:
                out.append(line)
        return out


def strip_think(text: str, keep_if_empty: bool) -> str:
    """<think> blocks removed (step11b:186); step12:113-117 and step13:207-211 keep the raw
    text when nothing else is left."""
    cleaned = re.sub(r"<think>.*?</think>", "", text or "", flags=re.DOTALL).strip()
    return cleaned if cleaned or not keep_if_empty else (text or "")


def category_title(name: str) -> str:
    """How the release names a category in its prompts (step13:298, 367)."""
    return name.replace("_", " ").title()


def format_release(template: str, **fields: str) -> str:
    """str.format's single pass over {name} fields, as the release filled its prompts; a field's
    value is never searched for further fields (plain replacement one field at a time would)."""
    return re.sub(r"\{(\w+)\}", lambda m: str(fields[m.group(1)]) if m.group(1) in fields else m.group(0), template)


def content_value(score: Score | dict | None) -> float | None:
    """A content score as the number the release's rules compare (code: pass = 1.0)."""
    if score is None:
        return None
    s = score.to_json() if isinstance(score, Score) else dict(score)
    if s.get("status", "ok") != "ok" or s.get("value") is None:
        return None
    return float(s["value"])


# --------------------------------------------------------------------------- cached teacher calls


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


@dataclass
class RoleCalls:
    """One role's teacher calls, cached in the run (`<cache_dir>/<role>.jsonl`)."""

    role: str
    teacher: Any
    instrument_sha: str
    cache_dir: Path | None
    generated: int = 0
    cached: int = 0
    _rows: dict[str, dict] = field(default_factory=dict)

    def __post_init__(self):
        p = self.path
        if p is not None and p.exists():
            for line in p.read_text(encoding="utf-8").splitlines():
                try:
                    r = json.loads(line)
                except json.JSONDecodeError:
                    continue  # atomic writes make this unreachable; a damaged line is redone
                self._rows[r["id"]] = r

    @property
    def path(self) -> Path | None:
        return self.cache_dir / f"{self.role}.jsonl" if self.cache_dir else None

    def run(self, requests: Sequence[tuple[str, list[dict]]]) -> dict[str, dict]:
        """id -> {output, finish_reason}; only requests not answered before reach the teacher."""
        d = self.teacher.describe()
        todo, out = [], {}
        for rid, msgs in requests:
            k = _key(d.get("backend"), d.get("model"), d.get("decoding"), self.instrument_sha, msgs)
            row = self._rows.get(rid)
            if row is not None and row.get("key") == k:
                out[rid] = row
                self.cached += 1
            else:
                todo.append((rid, msgs, k))
        if todo:
            from dispo.generate.progress import progress_label

            with progress_label(f"paper data {self.role}" + (f" ({d.get('model')})" if d.get("model") else "")):
                gens = self.teacher.generate([m for _, m, _ in todo], [f"paper:{self.role}:{r}" for r, _, _ in todo])
            for (rid, _, k), g in zip(todo, gens):
                row = {"id": rid, "key": k, "output": g["output"], "finish_reason": g["finish_reason"]}
                self._rows[rid] = out[rid] = row
            self.generated += len(todo)
            if self.path is not None:
                atomic.write_jsonl(self.path, [self._rows[r] for r in sorted(self._rows)])
        return out


def make_teachers(
    roles: dict[str, RoleConfig], seed: int = 0, teacher_factory: Callable | None = None, progress: bool = False
) -> dict[str, Any]:
    """One teacher per role (roles on the same local model share one loaded copy)."""
    from dispo.arcs.arc1.teachers import build_teacher, shared_model_loader

    shared_loader = shared_model_loader()

    out = {}
    for role, rc in roles.items():
        scfg = rc.stage_cfg()
        if teacher_factory is not None:
            out[role] = teacher_factory(role, scfg, {})
        else:
            out[role] = build_teacher(scfg, {}, seed=seed, loader=shared_loader, progress=progress)
    return out


# --------------------------------------------------------------------------- the builder


@dataclass
class PaperDataResult:
    sft: list[dict]
    pairs: list[dict]
    dropped: list[dict]  # {id, slot, reason, rule}
    report: dict
    instruments: list  # paper_source.Instrument, for the manifest


def _user(text: str) -> list[dict]:
    # every release call is one user turn, no system turn (step11b:174, step12:148, step13:222-225)
    return [{"role": "user", "content": text}]


def build_paper_types(
    items: Sequence[Item],
    student: dict[str, dict],
    gold: dict[str, str],
    score_fn: Callable[[list[Item], list[str]], list[Score]],
    *,
    repo: str | Path | None,
    teachers: dict[str, Any],
    rules: PaperRules,
    types: Sequence[str],
    cache_dir: str | Path | None = None,
    exclude_prompts: Sequence[str] = (),
    system_prompt: str | None = None,
    domain_name: str = "chef",
) -> PaperDataResult:
    """Types 2-4 (those in `types`) as the release built them.

    student: id -> {"output", "score"} (the base model's answer on the train item);
    gold: id -> the type-1 answer; teachers: role -> Teacher for the roles the types need.
    """
    from dispo.core.paper_source import read_instrument, read_literal

    types = [t for t in PAPER_TYPES if t in types]
    cache = Path(cache_dir) if cache_dir else None
    ins = {}
    for t in types:
        for role in ROLES_FOR[t]:
            ins[role] = read_instrument(repo, INSTRUMENT_OF[role])
    calls = {role: RoleCalls(role, teachers[role], ins[role].sha256, cache) for role in ins}
    sft: list[dict] = []
    pairs: list[dict] = []
    dropped: list[dict] = []
    report: dict[str, Any] = {}

    def drop(iid: str, slot: str, reason: str, rule: str):
        dropped.append({"id": iid, "slot": slot, "reason": reason, "rule": rule})

    with_gold = [it for it in items if gold.get(it.id)]
    gold_scores: dict[str, float | None] = {}
    if ("failure_trace" in types or "counterexample" in types) and with_gold:
        for it, sc in zip(with_gold, score_fn(with_gold, [gold[it.id] for it in with_gold])):
            gold_scores[it.id] = content_value(sc)

    # -- type 2: failure traces (step11b_failure_traces.py, clean_type2.py)
    if "failure_trace" in types:
        rep = {"items": 0, "failures": 0, "failure_reasons": Counter(), "kept": 0, "flagged_shrunk": 0}
        failures: list[tuple[Item, list[str], float]] = []
        for it in items:
            st = student.get(it.id)
            if st is None or not gold.get(it.id):
                drop(it.id, "failure_trace", "no student or gold answer", "step11b:385")
                continue
            rep["items"] += 1
            s_val, g_val = content_value(st.get("score")), gold_scores.get(it.id)
            if s_val is None or g_val is None:
                drop(it.id, "failure_trace", "content unscored", "step11b:219-220")
                continue
            reasons = detect_failure(s_val, g_val, len(st["output"]), len(gold[it.id]), rules)
            if not reasons:
                continue  # not a failure: no trace (step11b:410)
            rep["failures"] += 1
            rep["failure_reasons"].update(r.split("=")[0] for r in reasons)
            failures.append((it, reasons, s_val))
        crit = calls["critic"].run(
            [
                (
                    it.id,
                    _user(
                        format_release(
                            ins["critic"].text,
                            prompt=it.prompt,
                            student_response=student[it.id]["output"],
                            gold_response=gold[it.id],
                            verification_issues=issues_field(reasons),
                        )
                    ),
                )
                for it, reasons, _ in failures
            ]
        )
        critiques = {}
        for it, _, _ in failures:
            text = strip_think(crit[it.id]["output"], keep_if_empty=False)
            if text:
                critiques[it.id] = text
            else:
                drop(it.id, "failure_trace", "empty critique", "step11b:300-302")
        ok = [(it, r, s) for it, r, s in failures if it.id in critiques]
        corr = calls["rewriter"].run(
            [
                (
                    it.id,
                    _user(
                        format_release(
                            ins["rewriter"].text,
                            prompt=it.prompt,
                            student_response=student[it.id]["output"],
                            critique=critiques[it.id],
                        )
                    ),
                )
                for it, _, _ in ok
            ]
        )
        rewrites = {}
        for it, _, _ in ok:
            text = strip_think(corr[it.id]["output"], keep_if_empty=False)
            if text:
                rewrites[it.id] = text
            else:
                drop(it.id, "failure_trace", "empty rewrite", "step11b:325-327")
        scored = [it for it, _, _ in ok if it.id in rewrites]
        c_scores = score_fn(scored, [rewrites[it.id] for it in scored]) if scored else []
        s_of = {it.id: s for it, _, s in ok}
        for it, sc in zip(scored, c_scores):
            c_val = content_value(sc)
            if c_val is None:
                drop(it.id, "failure_trace", "content unscored", "step11b:332")
                continue
            st = student[it.id]
            why, flags = clean_trace(s_of[it.id], c_val, len(st["output"]), len(rewrites[it.id]), rules)
            if why is not None:
                drop(it.id, "failure_trace", why, "clean_type2.py:17-21")
                continue
            rep["kept"] += 1
            rep["flagged_shrunk"] += "shrunk" in flags
            sft.append(
                {
                    "id": it.id,
                    "type": "failure_trace",
                    "slot": "failure_trace",
                    "source": "synthesized",
                    # single turn: question -> corrected answer (training/train_sft.py:32-34)
                    "messages": it.messages(system_prompt) + [{"role": "assistant", "content": rewrites[it.id]}],
                    "student_output": st["output"],
                    "critique": critiques[it.id],
                    "student_score": s_of[it.id],
                    "corrected_score": c_val,
                    "flags": flags,
                }
            )
        rep["failure_reasons"] = dict(rep["failure_reasons"])
        report["failure_trace"] = rep

    # -- type 3: counterexamples (step12_counterexamples.py, clean_type3.py)
    if "counterexample" in types:
        rep = {"items": len(with_gold), "kept": 0, "inverted": 0, "judge": Counter(), "swapped": 0}
        for it in items:
            if not gold.get(it.id):
                drop(it.id, "counterexample", "no gold answer", "step12:201-202")
        fab = calls["fabricator"].run(
            [
                (it.id, _user(format_release(ins["fabricator"].text, prompt=it.prompt, gold_response=gold[it.id])))
                for it in with_gold
            ]
        )
        cands = []
        for it in with_gold:
            wrong = strip_think(fab[it.id]["output"], keep_if_empty=True)
            if not wrong.strip():
                drop(it.id, "counterexample", "empty fabrication", "step12:222-224")
                continue
            why = counter_quality(len(wrong), len(gold[it.id]), rules)
            if why is not None:
                drop(it.id, "counterexample", why, "step12:247-257")
                continue
            why = clean_pair_length(len(gold[it.id]), len(wrong), rules)
            if why is not None:
                drop(it.id, "counterexample", why, "clean_type3.py:57")
                continue
            cands.append((it, wrong))
        w_scores = score_fn([it for it, _ in cands], [w for _, w in cands]) if cands else []
        inverted = []
        final: list[tuple[Item, str, str, bool, float | None]] = []
        for (it, wrong), sc in zip(cands, w_scores):
            w_val = content_value(sc)
            if is_inverted(w_val, gold_scores.get(it.id)):
                inverted.append((it, wrong, w_val))
            else:
                final.append((it, gold[it.id], wrong, False, w_val))
        rep["inverted"] = len(inverted)
        if inverted:
            verdicts = calls["pair_judge"].run(
                [
                    (it.id, _user(format_release(ins["pair_judge"].text, q=it.prompt, a=gold[it.id], b=wrong)))
                    for it, wrong, _ in inverted
                ]
            )
            for it, wrong, w_val in inverted:
                v = parse_verdict(verdicts[it.id]["output"])
                rep["judge"][v] += 1
                if v == "A":  # clean_type3.py:76-77: the gold is right, keep as is
                    final.append((it, gold[it.id], wrong, False, w_val))
                elif v == "B":  # clean_type3.py:78-82: the "wrong" answer is right: swap
                    final.append((it, wrong, gold[it.id], True, w_val))
                else:  # clean_type3.py:83-84
                    drop(it.id, "counterexample", "judge: tie", "clean_type3.py:83-84")
        order = {it.id: i for i, it in enumerate(items)}
        for it, chosen, rejected, swapped, w_val in sorted(final, key=lambda f: order[f[0].id]):
            rep["kept"] += 1
            rep["swapped"] += swapped
            pairs.append(
                {
                    "id": it.id,
                    "type": "counterexample",
                    "slot": "counterexample",
                    "source": "synthesized",
                    "why_rejected": "the judge found the gold wrong (swapped)" if swapped else "fabricated errors",
                    "swapped": swapped,
                    "messages": it.messages(system_prompt),
                    "chosen": chosen,
                    "rejected": rejected,
                    "gold_score": gold_scores.get(it.id),
                    "wrong_score": w_val,
                }
            )
        rep["judge"] = dict(rep["judge"])
        report["counterexample"] = rep

    # -- type 4: boundary cases (step13_boundary_cases.py; no filter)
    if "boundary" in types:
        cats, cat_ins = read_literal(repo, "data.boundary_categories")
        ins["boundary_categories"] = cat_ins
        if not isinstance(cats, dict) or not all(
            isinstance(c, dict) and {"count", "description", "seed_prompts"} <= set(c) for c in cats.values()
        ):
            raise ConfigError(
                f"{cat_ins.path}:{cat_ins.line} BOUNDARY_CATEGORIES has an unexpected shape (is paper.repo the right version?)"
            )
        asked = {
            name: (c["count"] if rules.boundary_per_category is None else min(c["count"], rules.boundary_per_category))
            for name, c in cats.items()
        }
        gen = calls["boundary_writer"].run(
            [
                (
                    name,
                    _user(
                        format_release(
                            ins["boundary_writer"].text,
                            category=category_title(name),
                            description=c["description"],
                            seeds="\n".join(f"- {s}" for s in c["seed_prompts"]),
                            count=str(asked[name]),
                        )
                    ),
                )
                for name, c in cats.items()
                if asked[name] > 0
            ]
        )
        seen = {_norm(p) for p in exclude_prompts}
        new_items: list[tuple[Item, str, str]] = []  # (item, category, origin)
        rep = {"categories": {}, "asked": asked, "kept": 0}
        for name, c in cats.items():
            seeds = list(c["seed_prompts"]) if rules.boundary_seeds else []
            made = parse_boundary_prompts(strip_think(gen[name]["output"], keep_if_empty=True)) if name in gen else []
            if rules.boundary_per_category is not None:
                made = made[: asked[name]]  # a capped run keeps what it asked for
            n0 = len(c["seed_prompts"])  # ids as the release numbered them (step13:275, 287)
            rows = [(i, s, "seed") for i, s in enumerate(seeds)] + [
                (n0 + i, p, "generated") for i, p in enumerate(made)
            ]
            rep["categories"][name] = {"seeds": len(seeds), "generated": len(made)}
            for i, text, origin in rows:
                iid = f"boundary/{name}/{i:03d}"
                if _norm(text) in seen:  # dispo's guard: never train on a prompt of the train or held-out set
                    drop(iid, "boundary", "duplicates an existing prompt", "dispo (eval isolation)")
                    continue
                seen.add(_norm(text))
                new_items.append((Item(id=iid, prompt=text, domain=domain_name, split="boundary"), name, origin))
        ans = calls["boundary_answerer"].run(
            [
                (
                    it.id,
                    _user(
                        format_release(ins["boundary_answerer"].text, prompt=it.prompt, category=category_title(cat))
                    ),
                )
                for it, cat, _ in new_items
            ]
        )
        for it, cat, origin in new_items:
            text = strip_think(ans[it.id]["output"], keep_if_empty=True)
            if not text.strip():
                drop(it.id, "boundary", "empty answer", "step13:378-379")
                continue
            rep["kept"] += 1
            sft.append(
                {
                    "id": it.id,
                    "type": "boundary",
                    "slot": "boundary",
                    "source": "synthesized",
                    "messages": it.messages(system_prompt) + [{"role": "assistant", "content": text}],
                    "prompt": it.prompt,
                    "category": cat,
                    "origin": origin,
                }
            )
        report["boundary"] = rep

    report["calls"] = {r: {"generated": c.generated, "cached": c.cached} for r, c in calls.items()}
    report["teachers"] = {r: t.describe() for r, t in teachers.items() if r in calls}
    report["instruments"] = {k: f"{v.path}:{v.line}@{v.sha256[:12]}" for k, v in ins.items()}
    report["dropped"] = dict(Counter(f"{d['slot']}: {d['reason']}" for d in dropped))
    return PaperDataResult(sft, pairs, dropped, report, list(ins.values()))


def _norm(text: str) -> str:
    return " ".join(str(text).lower().split())
