"""Arc 1's training data: the paper's four data types, built from teacher outputs.

  gold            the Synthesizer's answer to a train item, when it passes the content filter
  failure_trace   an item the student got wrong, re-answered by the pipeline with the student's
                  failing answer in view (correct mode); kept only if the rewrite passes
  counterexample  a DPO pair: chosen = a passing synthesized answer, rejected = the student's
                  own answer when it is wrong, or overconfident (asserted without any hedge on an
                  item whose certainty is UNCERTAIN/AMBIGUOUS)
  boundary        an uncertain item (gold certainty UNCERTAIN/AMBIGUOUS; for domains without that
                  label: the student AND the teachers failed it) with a calibrated hedge + a
                  passing answer as target

The content filter is absolute: no text that fails the domain's content scorer (code failing
its tests, chef coverage under the bar) ever becomes a target (SFT answer or DPO chosen).

With `allow_reference_targets`, a slot whose synthesized answer fails the filter falls back to
the domain's gold (HumanEval canonical solution in a short deliberate framing; chef checklist
claims composed into an answer), which must itself pass the filter. Such examples are typed
"reference" (their intended slot kept in "slot"), so they are never counted as distillation.

Every dropped candidate is recorded with its reason in data_report.json.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Callable, Sequence

from dispo.core.types import Item, Score

TYPES = ("gold", "failure_trace", "counterexample", "boundary", "reference")
UNCERTAIN_LABELS = ("UNCERTAIN", "AMBIGUOUS")
DATA_VERSION = "v1"

# A calibrated hedge: names what is uncertain, then still gives the checked answer.
BOUNDARY_HEDGE = {
    "code": (
        "I'm not fully certain I've covered every edge case here, so I'll state my assumptions "
        "and check the examples before relying on this.\n\n"
    ),
    "chef": (
        "I can't be certain without seeing the dish, so here is what most likely went wrong and how to check it.\n\n"
    ),
    "default": "I'm not certain about this, so I'll say what I'm confident in and what to check.\n\n",
}

_HEDGE_RE = re.compile(
    r"\b(i think|i believe|probably|possibly|perhaps|maybe|might|could be|may be|not (?:entirely )?(?:sure|certain)|"
    r"uncertain|it depends|depends on|likely|i'?m unsure|hard to say|without (?:more|further) (?:information|details))\b",
    re.IGNORECASE,
)


def is_hedged(text: str) -> bool:
    """Any hedge marker present (the lexical judge's HEDGE list when importable)."""
    try:
        from dispo.judges.lexical import markers

        return bool(markers("hedge", text))
    except ImportError:  # pragma: no cover - the lexical judge ships with dispo
        return bool(_HEDGE_RE.search(text))


def passes(score: Score | dict | None) -> tuple[bool, str | None]:
    """(passes the content filter, reason if not)."""
    if score is None:
        return False, "no content score"
    s = score.to_json() if isinstance(score, Score) else dict(score)
    if s.get("status", "ok") != "ok" or s.get("value") is None:
        return False, f"content unscored ({s.get('reason') or 'no reason'})"
    detail = s.get("detail") or {}
    if "correct" in detail:
        ok = bool(detail["correct"])
    elif isinstance(s["value"], bool):
        ok = s["value"]
    else:
        ok = float(s["value"]) >= 0.5
    return (True, None) if ok else (False, f"fails content filter ({s.get('reason') or s.get('value')})")


def reference_answer(item: Item) -> str | None:
    """The domain's gold composed into an answer, or None when the item carries none."""
    g = item.gold or {}
    if g.get("canonical_solution") is not None and g.get("prompt_code"):
        code = g["prompt_code"].rstrip("\n") + "\n" + g["canonical_solution"].rstrip() + "\n"
        return (
            "Let me restate the task: implement `"
            + str(g.get("entry_point", "the function"))
            + "` as the docstring specifies.\n\n```python\n"
            + code
            + "```\n\n"
            "I checked this against the examples in the docstring."
        )
    if g.get("checklist"):
        claims = [c.rstrip(".") + "." for c in g["checklist"]]
        return "Here is what to check and fix:\n\n" + "\n".join(f"- {c}" for c in claims)
    return None


def boundary_candidate(item: Item, student_ok: bool | None, synth_ok: bool | None) -> bool:
    cert = (item.gold or {}).get("certainty")
    if cert:
        return str(cert).upper() in UNCERTAIN_LABELS
    return student_ok is False and synth_ok is False


def hedge_for(item: Item) -> str:
    return BOUNDARY_HEDGE.get(item.domain, BOUNDARY_HEDGE["default"])


def build_dataset(
    items: Sequence[Item],
    student: dict[str, dict],
    fresh: dict[str, str],
    corrected: dict[str, str],
    score_fn: Callable[[list[Item], list[str]], list[Score]],
    *,
    allow_reference_targets: bool = False,
    types: Sequence[str] = ("gold", "failure_trace", "counterexample", "boundary"),
    system_prompt: str | None = None,
) -> tuple[list[dict], list[dict], dict]:
    """(sft_examples, preference_pairs, report).

    student: id -> {"output", "score"} (the base model's own answer on the train item and its
    content score); fresh / corrected: id -> Synthesizer answer (fresh pass / correct pass);
    score_fn: the domain's batched content scorer. Examples carry messages (the eval prompt
    format) + answer; pairs carry messages, chosen, rejected.
    """
    by_id = {it.id: it for it in items}
    # score every candidate target once, in one batch (code runs the sandbox in parallel)
    cands: list[tuple[str, str, str]] = []  # (id, kind, text)
    for iid, t in fresh.items():
        cands.append((iid, "fresh", t))
    for iid, t in corrected.items():
        cands.append((iid, "corrected", t))
    if allow_reference_targets:
        for it in items:
            ref = reference_answer(it)
            if ref is not None:
                cands.append((it.id, "reference", ref))
            if ref is not None and "boundary" in types:  # hedged reference, for boundary slots
                cands.append((it.id, "reference_hedged", hedge_for(it) + ref))
    for iid, kind, t in list(cands):
        if kind == "fresh" and "boundary" in types:
            cands.append((iid, "fresh_hedged", hedge_for(by_id[iid]) + t))
    scores = score_fn([by_id[c[0]] for c in cands], [c[2] for c in cands]) if cands else []
    verdict: dict[tuple[str, str], tuple[str, bool, str | None]] = {}
    for (iid, kind, text), sc in zip(cands, scores):
        ok, why = passes(sc)
        verdict[(iid, kind)] = (text, ok, why)

    sft: list[dict] = []
    pairs: list[dict] = []
    dropped: list[dict] = []

    def target(iid: str, kinds: Sequence[str], slot: str) -> tuple[str | None, str | None, list[str]]:
        """First passing text among kinds -> (text, source); reasons of the failures."""
        reasons = []
        for k in kinds:
            v = verdict.get((iid, k))
            if v is None:
                continue
            text, ok, why = v
            if ok:
                return text, ("reference" if k.startswith("reference") else "synthesized"), reasons
            reasons.append(f"{k}: {why}")
        return None, None, reasons

    fallbacks: list[dict] = []

    def add_sft(it: Item, slot: str, text: str, source: str, extra: dict | None = None, why: list | None = None):
        typ = "reference" if source == "reference" else slot
        if source == "reference":
            fallbacks.append({"id": it.id, "slot": slot, "reason": "; ".join(why or []) or "no synthesized answer"})
        sft.append(
            {
                "id": it.id,
                "type": typ,
                "slot": slot,
                "source": source,
                "messages": it.messages(system_prompt) + [{"role": "assistant", "content": text}],
                **(extra or {}),
            }
        )

    def drop(iid: str, slot: str, reason: str):
        dropped.append({"id": iid, "slot": slot, "reason": reason})

    ref_kinds = ("reference",) if allow_reference_targets else ()
    for it in items:
        st = student.get(it.id)
        s_ok = passes(st["score"])[0] if st is not None else None
        synth_ok = verdict.get((it.id, "fresh"), (None, None, None))[1]
        if "gold" in types:
            if it.id not in fresh and not allow_reference_targets:
                drop(it.id, "gold", "no synthesized answer")
            else:
                text, src, why = target(it.id, ("fresh", *ref_kinds), "gold")
                if text is None:
                    drop(it.id, "gold", "; ".join(why) or "no passing target")
                else:
                    add_sft(it, "gold", text, src, why=why)
        if "failure_trace" in types and st is not None and s_ok is False:
            text, src, why = target(it.id, ("corrected", *ref_kinds), "failure_trace")
            if text is None:
                drop(it.id, "failure_trace", "; ".join(why) or "no corrected answer")
            else:
                add_sft(it, "failure_trace", text, src, {"student_output": st["output"]}, why=why)
        if "counterexample" in types and st is not None:
            overconf = str((it.gold or {}).get("certainty", "")).upper() in UNCERTAIN_LABELS and not is_hedged(
                st["output"]
            )
            if s_ok is False or overconf:
                text, src, why = target(it.id, ("fresh", "corrected", *ref_kinds), "counterexample")
                if text is None:
                    drop(it.id, "counterexample", "; ".join(why) or "no passing chosen answer")
                elif text.strip() == st["output"].strip():
                    drop(it.id, "counterexample", "chosen equals rejected")
                else:
                    if src == "reference":
                        fallbacks.append({"id": it.id, "slot": "counterexample", "reason": "; ".join(why) or "none"})
                    pairs.append(
                        {
                            "id": it.id,
                            "type": "reference" if src == "reference" else "counterexample",
                            "slot": "counterexample",
                            "source": src,
                            "why_rejected": "wrong" if s_ok is False else "overconfident",
                            "messages": it.messages(system_prompt),
                            "chosen": text,
                            "rejected": st["output"],
                        }
                    )
            else:
                drop(it.id, "counterexample", "student answer is right and not overconfident")
        if "boundary" in types and boundary_candidate(it, s_ok, synth_ok):
            kinds = ("fresh_hedged", *(("reference_hedged",) if allow_reference_targets else ()))
            text, src, why = target(it.id, kinds, "boundary")
            if text is None:
                drop(it.id, "boundary", "; ".join(why) or "no passing hedged target")
            else:
                add_sft(it, "boundary", text, src, why=why)

    report = {
        "version": DATA_VERSION,
        "n_train_items": len(items),
        "allow_reference_targets": allow_reference_targets,
        "types_enabled": list(types),
        "counts": {t: sum(1 for e in sft if e["type"] == t) for t in TYPES if t != "counterexample"},
        "pairs": dict(Counter(p["type"] for p in pairs)),
        "n_sft": len(sft),
        "n_pairs": len(pairs),
        "distilled_sft": sum(1 for e in sft if e["source"] == "synthesized"),
        "distilled_pairs": sum(1 for p in pairs if p["source"] == "synthesized"),
        "filter": {
            "candidates": len(verdict),
            "passed": sum(1 for v in verdict.values() if v[1]),
            "by_kind": {
                k: {
                    "n": sum(1 for (i, kk) in verdict if kk == k),
                    "passed": sum(1 for (i, kk), v in verdict.items() if kk == k and v[1]),
                }
                for k in sorted({kk for (_, kk) in verdict})
            },
        },
        "dropped": dict(Counter(f"{d['slot']}: {_reason_class(d['reason'])}" for d in dropped)),
        "dropped_items": dropped,
        # slots filled with the domain's gold because no teacher answer passed (and why)
        "replaced_by_reference": dict(Counter(f"{f['slot']}: {_reason_class(f['reason'])}" for f in fallbacks)),
        "replaced_items": fallbacks,
    }
    return sft, pairs, report


def _reason_class(reason: str) -> str:
    r = reason.lower()
    for key in (
        "unscored",
        "fails content filter",
        "no synthesized",
        "no corrected",
        "equals rejected",
        "right and not overconfident",
        "no passing",
    ):
        if key in r:
            return key
    return r[:60]


def opener(text: str, n: int = 3) -> str:
    """The first n words of an answer, lowercased and without punctuation (opener templates)."""
    words = re.findall(r"[A-Za-z0-9']+", text.lower())
    return " ".join(words[:n])


def style_markers(outputs: Sequence[str]) -> dict[str, Any]:
    """Opener-template share (largest share of answers starting with the same 3 words), the most
    common opener, and mean length in words/characters."""
    outs = [o or "" for o in outputs]
    if not outs:
        return {"opener_share": None, "top_opener": None, "mean_words": None, "mean_chars": None, "n": 0}
    c = Counter(opener(o) for o in outs if opener(o))
    top, cnt = c.most_common(1)[0] if c else ("", 0)
    return {
        "opener_share": cnt / len(outs),
        "top_opener": top or None,
        "mean_words": sum(len(o.split()) for o in outs) / len(outs),
        "mean_chars": sum(len(o) for o in outs) / len(outs),
        "n": len(outs),
    }
