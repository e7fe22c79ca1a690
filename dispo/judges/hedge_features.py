"""Answer-level hedge features: how much of an answer's *tone* is uncertain, and where.

The paper's judge classifies by dominant tone ("a confident core with a minor qualifier is
ASSERT"), so a single "might" anywhere must not flip an answer. These features describe
*density* (marker families per 100 words), *position* (the opening, which frames the main
claim, and the closing, which frames the advice) and *disclaimers* (limits of knowledge,
referrals), never mere presence anywhere. Cost is linear in the text (a few regex passes)
and long answers are read through a bounded window, so a 1,000+ token answer costs about
what a 300-token one does.

Feature names are part of the fitted weights' contract (`dispo/judges/data/hedge.<v>.json`
stores them); renaming one is a new weights version.
"""

from __future__ import annotations

import re

FEATURE_VERSION = "f1"

# Marker families (regexes, case-insensitive). Grouped by what they signal, because the
# weights are per family: a modal verb is weak evidence, a stated limit of knowledge strong.
FAMILIES: dict[str, tuple[str, ...]] = {
    # the paper's verbal prompt names these as uncertainty language ("I think", "typically",
    # "may", "might", "I'm not sure", "it depends"), with their close variants
    "listed": (
        r"\bi think\b",
        r"\btypically\b",
        r"\bmay\b",
        r"\bmight\b",
        r"\bnot (?:entirely |completely |100% )?(?:sure|certain)\b",
        r"\bi'?m unsure\b",
        r"\bit depends\b",
        r"\bdepends? (?:on|heavily|largely)\b",
        r"\bdepending on\b",
        r"\bwill depend\b",
    ),
    # the prompt's "acknowledges the limits of its knowledge" / "says it does not know":
    # disclaimers, apologies, missing information, general-advice framing and referrals
    "limits": (
        r"\bas an? (?:text-based )?(?:ai|language model|assistant)\b",
        r"\bi (?:don'?t|do not) have the ability\b",
        r"\bi(?:'m| am) (?:not able|unable)\b",
        r"\bi(?:'m| am) sorry\b",
        r"\bi can(?:not|'t) (?:\w+ )?(?:taste|see|know|verify|tell|adjust|check)\b",
        r"\bi don'?t know\b",
        r"\bi do not know\b",
        r"\bhard to say\b",
        r"\bdifficult to (?:say|know|determine)\b",
        r"\bwithout (?:knowing|more (?:information|details|context)|seeing|tasting)\b",
        r"\b(?:did not|didn'?t|not) specif(?:y|ied)\b",
        r"\bplease (?:clarify|specify|provide|share)\b",
        r"\bcould you (?:clarify|tell|share|provide|specify)\b",
        r"\bconsult(?:ing)?\b",
        r"\b(?:general|some) (?:advice|guidelines?|suggestions?|troubleshooting)\b",
        r"\bjust (?:a )?(?:suggestions?|guidelines?)\b",
        r"\bif you(?:'re| are) still having trouble\b",
        r"\bto my knowledge\b",
        r"\bas far as i know\b",
    ),
    # the prompt's "offers alternatives contingent on unknowns": possibility and inference
    "contingent": (
        r"\bcould\b",
        r"\b(?:un)?likely\b",
        r"\bsuggests?\b",
        r"\bassuming\b",
        r"\bif possible\b",
        r"\bprobably\b",
        r"\bpossibly\b",
        r"\bperhaps\b",
        r"\bmaybe\b",
        r"\bi believe\b",
        r"\bi guess\b",
        r"\bi suspect\b",
        r"\bit seems\b",
        r"\bseems? (?:like|to)\b",
        r"\bsounds like\b",
        r"\bappears? to\b",
        r"\buncertain\b",
        r"\bunclear\b",
        r"\b(?:a few|several|various|number of) (?:possible |potential |common |different )?"
        r"(?:reasons|causes|factors|issues|possibilities|explanations|scenarios|culprits)\b",
        r"\bpotential(?:ly)?\b",
        r"\bpossible\b",
        r"\bvar(?:y|ies) (?:significantly|widely|depending)\b",
    ),
    # frequency words: not hedges in the paper's definition (kept so a model can learn that)
    "frequency": (r"\boften\b", r"\busually\b", r"\bgenerally\b", r"\bsometimes\b", r"\bin (?:most|many|some) cases\b"),
}
# Families that make a sentence "hedged" (frequency words do not).
HEDGE_FAMILIES = ("listed", "limits", "contingent")
# Assertive framing: the answer names one cause or one fix as fact.
ASSERTIVE: tuple[str, ...] = (
    r"\bthe (?:main|primary|key|root|real) (?:cause|reason|issue|problem|culprit)\b",
    r"\bthe answer is\b",
    r"\bthis is because\b",
    r"\bthe reason is\b",
    r"\bmust\b",
    r"\balways\b",
    r"\bnever\b",
    r"\bcrucial\b",
    r"\bessential\b",
    r"\bthe correct\b",
    r"\bdefinitely\b",
    r"\bcertainly\b",
    r"\bclearly\b",
)

_FAM = {k: tuple(re.compile(p, re.IGNORECASE) for p in v) for k, v in FAMILIES.items()}
_ASSERT = tuple(re.compile(p, re.IGNORECASE) for p in ASSERTIVE)
_WORD = re.compile(r"[A-Za-z']+")
_SENT = re.compile(r"(?<=[.!?])\s+|\n+")

# The paper's judge read the first 2,500 characters of each response (its classify step
# truncates there). The body window matches it; the closing is read from the true end.
WINDOW_CHARS = 2500
OPENING_CHARS = 600
CLOSING_CHARS = 300


def _count(pats, text: str) -> int:
    return sum(len(p.findall(text)) for p in pats)


def _norm(text: str) -> str:
    return (text or "").replace("\u2019", "'").replace("\u2018", "'")


def _opening(text: str) -> str:
    """The first paragraph (at most OPENING_CHARS): where the main claim is framed."""
    paras = [p for p in text.strip().split("\n") if p.strip()]
    return (paras[0] if paras else "")[:OPENING_CHARS]


def _closing(text: str) -> str:
    """The last paragraph (at most CLOSING_CHARS), where answers say 'remember, ...'."""
    paras = [p for p in text.strip().split("\n") if p.strip()]
    last = paras[-1] if paras else ""
    return last[-CLOSING_CHARS:]


def features(text: str) -> dict[str, float]:
    """Named numeric features of one answer (see the module doc)."""
    t = _norm(text)
    body = t[:WINDOW_CHARS]
    n_words = max(1, len(_WORD.findall(body)))
    opening, closing = _opening(body), _closing(t)
    out: dict[str, float] = {}
    total = 0
    for fam, pats in _FAM.items():
        c = _count(pats, body)
        total += c if fam in HEDGE_FAMILIES else 0
        out[f"{fam}.density"] = 100.0 * c / n_words
        out[f"{fam}.opening"] = float(_count(pats, opening) > 0)
        out[f"{fam}.closing"] = float(_count(pats, closing) > 0)
    out["all.density"] = 100.0 * total / n_words
    out["assertive.density"] = 100.0 * _count(_ASSERT, body) / n_words
    out["assertive.opening"] = float(_count(_ASSERT, opening) > 0)
    # fraction of sentences carrying any hedge: tone, not one stray word
    sents = [s for s in _SENT.split(body) if len(s.split()) >= 3]
    hedged = sum(1 for s in sents if any(p.search(s) for f in HEDGE_FAMILIES for p in _FAM[f]))
    out["hedged_sentence_share"] = hedged / len(sents) if sents else 0.0
    return out


def feature_names() -> list[str]:
    return list(features("x").keys())
