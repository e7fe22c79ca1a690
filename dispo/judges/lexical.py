"""`lexical` judge: deterministic marker and keyword matching, no model.

What it measures is *wording*, not behaviour. It is fooled by mimicry: a response that
says "let me verify" without verifying anything counts as self-verifying, one that sprinkles
"I think" over a wrong answer counts as hedged, and a checklist keyword mentioned in the
wrong sense ("do not overheat") counts as covered. A model trained on disposition data
learns exactly these surface markers, so a lexical gain is a claim to re-check with a model
judge (`dispo falsify` does), never evidence on its own. It is here because it is free,
fast, reproducible, and it is how the paper computed its self-verification rate (SVR).

Tasks:
  verbal     'hedge' iff any HEDGE marker occurs, else 'assert'
  coverage   per claim: `dispo.domains.chef_match.claim_covered` on the claim's keyword
             groups; a claim with no keywords falls back to content-word overlap (covered iff
             at least half of its content words occur in the response)
  rubric     heuristic 1-5 per axis, documented on `_rubric_one`
  mcas       0/1/2 from clarifying-question / assumption / hedge markers, by prompt kind
  mcas5      1 + number of distinct markers of the dimension, capped at 5
  svr, hedge boolean Scores: any SELF_VERIFICATION / HEDGE marker present
"""

from __future__ import annotations

import re
from typing import Any

from dispo.core.errors import ConfigError
from dispo.core.types import Score
from dispo.judges import JUDGES
from dispo.judges.base import AXES, MCAS5_DIMS, Judge, JudgeRequest

MARKER_VERSION = "v1"

# Each entry is a regex searched case-insensitively; word boundaries are explicit.
HEDGE = (
    r"\bi think\b",
    r"\bi believe\b",
    r"\bi guess\b",
    r"\bi suspect\b",
    r"\bprobably\b",
    r"\bpossibly\b",
    r"\bperhaps\b",
    r"\bmaybe\b",
    r"\bmight\b",
    r"\bcould be\b",
    r"\bmay be\b",
    r"\bnot (?:entirely |completely |100% )?(?:sure|certain)\b",
    r"\bi'?m unsure\b",
    r"\buncertain\b",
    r"\bit depends\b",
    r"\bdepends on\b",
    r"\bit'?s possible\b",
    r"\bit is possible\b",
    r"\bi don'?t know\b",
    r"\bi do not know\b",
    r"\bhard to say\b",
    r"\bdifficult to say\b",
    r"\bas far as i know\b",
    r"\bto my knowledge\b",
    r"\bif i recall\b",
    r"\bi'?m not aware\b",
    r"\bwithout (?:more|further) (?:information|details|context)\b",
    r"\bwithout knowing\b",
    r"\bit seems\b",
    r"\bseems to\b",
    r"\bappears to\b",
    r"\blikely\b",
)
# The paper's lexical self-verification rate (SVR) markers, and close variants.
SELF_VERIFICATION = (
    r"\blet me (?:verify|check|double[- ]?check|re-?check|confirm|make sure|test)\b",
    r"\blet'?s (?:verify|check|double[- ]?check|test|confirm)\b",
    r"\bdouble[- ]?check\w*\b",
    r"\bverif(?:y|ied|ies|ying|ication)\b",
    r"\bre-?check\w*\b",
    r"\bsanity[- ]check\w*\b",
    r"\btest (?:this|it|that|the)\b",
    r"\bedge cases?\b",
    r"\bcorner cases?\b",
    r"\bwait,",
    r"\bon second thought\b",
    r"\bto confirm\b",
    r"\bconfirm (?:that|whether|it)\b",
    r"\bcheck (?:that|whether|if)\b",
    r"\bmake sure (?:that|it)\b",
    r"\bre-?examine\b",
)
CLARIFYING = (
    r"\bcould you (?:clarify|tell|share|provide|specify|confirm)\b",
    r"\bcan you (?:clarify|tell|share|provide|specify|confirm)\b",
    r"\bplease (?:clarify|specify|share)\b",
    r"\bwhat (?:is|are) your\b",
    r"\bdo you (?:have|want|need|use|mean)\b",
    r"\bwhich (?:\w+ )?(?:do|are|is) you\b",
    r"\bare you (?:using|running|on)\b",
    r"\bmore (?:details|information|context) (?:about|on)\b",
    r"\bbefore i (?:answer|proceed|suggest|recommend)\b",
    r"\bneed to know\b",
)
ASSUMPTION = (
    r"\bassum(?:e|ing|ption)s?\b",
    r"\bi'?ll assume\b",
    r"\bif you(?:'re| are) using\b",
    r"\bsince you didn'?t (?:say|specify|mention)\b",
    r"\bnot specified\b",
    r"\bunspecified\b",
)
PEDAGOGY = (
    r"\bbecause\b",
    r"\bthe reason\b",
    r"\bthis is why\b",
    r"\bthat'?s why\b",
    r"\bso that\b",
    r"\bwhich means\b",
    r"\bin other words\b",
    r"\bfor example\b",
    r"\bfor instance\b",
    r"\bthe key (?:is|idea|principle)\b",
    r"\bthis (?:works|happens) because\b",
    r"\bthink of\b",
)
ERROR_DETECTION = (
    r"\bmistake\w*\b",
    r"\bcommon (?:error|pitfall|problem)s?\b",
    r"\bpitfalls?\b",
    r"\bwatch out\b",
    r"\bbe careful\b",
    r"\bavoid\b",
    r"\bincorrect\b",
    r"\bwrong\b",
    r"\bbug\w*\b",
    r"\bcareful not\b",
)
EDGE_CASE = (
    r"\bedge cases?\b",
    r"\bcorner cases?\b",
    r"\bwhat if\b",
    r"\bunless\b",
    r"\bfails? (?:when|if)\b",
    r"\bboundary\b",
    r"\bempty\b",
    r"\bin case\b",
    r"\bif (?:the|it) (?:\w+ )?(?:fails|is missing|doesn'?t)\b",
)
# Response-blind lexical stand-in for rubric pass 1: markers in the QUESTION that make it
# open-ended or underspecified.
QUESTION_UNCERTAIN = (r"\bwill\b.*\?", r"\bpredict\b", r"\bbest\b", r"\bshould i\b", r"\bwhich is better\b")
QUESTION_AMBIGUOUS = (
    r"\bfix it\b",
    r"\bmy (?:project|app|code|service|deployment)\b",
    r"\bour (?:service|app|system)\b",
    r"\bset up\b",
)

_STOP = frozenset(
    "a an the and or but of to in on at for with by from as is are was were be been being it its this "
    "that these those than then so such not no do does did can could should would will may might must "
    "into over under about your you they them their there here what when where which who how why".split()
)


def _compile(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.IGNORECASE) for p in patterns)


_C = {
    name: _compile(pats)
    for name, pats in {
        "hedge": HEDGE,
        "svr": SELF_VERIFICATION,
        "clarify": CLARIFYING,
        "assume": ASSUMPTION,
        "pedagogy": PEDAGOGY,
        "error": ERROR_DETECTION,
        "edge": EDGE_CASE,
        "q_uncertain": QUESTION_UNCERTAIN,
        "q_ambiguous": QUESTION_AMBIGUOUS,
    }.items()
}


def _norm(text: str) -> str:
    # curly apostrophes would defeat "i'm", "don't"
    return (text or "").replace("\u2019", "'").replace("\u2018", "'")


def markers(kind: str, text: str) -> list[str]:
    """The distinct patterns of marker set `kind` that occur in `text` (as matched text)."""
    t = _norm(text)
    found = []
    for pat in _C[kind]:
        m = pat.search(t)
        if m:
            found.append(m.group(0).lower())
    return found


def _claim_covered(text: str, groups: Any) -> bool:
    try:
        from dispo.domains.chef_match import claim_covered
    except ImportError:  # pragma: no cover - chef_match ships with dispo
        claim_covered = None
    if claim_covered is not None:
        return claim_covered(text, groups)
    low = text.lower()
    return bool(groups) and all(any(s.lower() in low for s in g) for g in groups)


def _fold(text: str) -> str:
    try:
        from dispo.domains.chef_match import fold
    except ImportError:  # pragma: no cover
        return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()
    return fold(text)


def _overlap_covered(text: str, claim: str) -> bool:
    """Fallback for a claim without keywords: at least half its content words (4+ letters,
    not stopwords) occur in the response as word prefixes (so 'emulsify' ~ 'emulsified')."""
    words = [w for w in _fold(claim).split() if len(w) >= 4 and w not in _STOP]
    if not words:
        return False
    body = " " + _fold(text)
    hits = sum(1 for w in words if (" " + w[: max(4, len(w) - 2)]) in body)
    return hits * 2 >= len(words)


def _groups_for(keywords: Any) -> list[list[str]]:
    """A claim's keywords as chef_match groups: a flat synonym list is one group."""
    if not keywords:
        return []
    if all(isinstance(k, str) for k in keywords):
        return [list(keywords)]
    return [list(g) for g in keywords]


def _level(count: int, steps: tuple[int, ...]) -> int:
    """1 + how many thresholds in `steps` `count` reaches (a 1..5 score)."""
    return 1 + sum(count >= s for s in steps)


@JUDGES.register("lexical")
class LexicalJudge(Judge):
    """Marker and keyword matching; deterministic, no model. Fooled by mimicry (see module doc)."""

    name = "lexical"

    def __init__(self, prompt_version: str = MARKER_VERSION):
        if prompt_version != MARKER_VERSION:
            raise ConfigError(f"judge=lexical has marker set '{MARKER_VERSION}' only, not '{prompt_version}'")
        self.version = f"lexical-{MARKER_VERSION}"

    def _tag(self, task: str) -> str:
        return f"{task}-lexical-{MARKER_VERSION}"

    def _score(self, task: str, value: Any, detail: dict | None = None) -> Score:
        return Score(scorer=f"lexical.{task}", version=self._tag(task), value=value, detail=detail or {})

    # --- marker tasks ---------------------------------------------------------------
    def hedge(self, reqs: list[JudgeRequest]) -> list[Score]:
        out = []
        for r in reqs:
            found = markers("hedge", r.response)
            out.append(self._score("hedge", bool(found), {"markers": found}))
        return out

    def svr(self, reqs: list[JudgeRequest]) -> list[Score]:
        out = []
        for r in reqs:
            found = markers("svr", r.response)
            out.append(self._score("svr", bool(found), {"markers": found}))
        return out

    def verbal(self, reqs: list[JudgeRequest]) -> list[Score]:
        out = []
        for r in reqs:
            found = markers("hedge", r.response)
            out.append(self._score("verbal", "hedge" if found else "assert", {"markers": found}))
        return out

    # --- coverage -----------------------------------------------------------------------
    def coverage(self, reqs: list[JudgeRequest]) -> list[Score]:
        out = []
        for r in reqs:
            if not r.claims:
                out.append(
                    Score.unscored("lexical.coverage", self._tag("coverage"), "no checklist claims for this item")
                )
                continue
            flags, methods = [], []
            for i, claim in enumerate(r.claims):
                groups = _groups_for(r.keywords[i] if i < len(r.keywords) else None)
                if groups:
                    flags.append(_claim_covered(r.response, groups))
                    methods.append("keywords")
                else:
                    flags.append(_overlap_covered(r.response, claim))
                    methods.append("overlap")
            out.append(self._score("coverage", sum(flags) / len(flags), {"claims": flags, "method": methods}))
        return out

    # --- rubric ---------------------------------------------------------------------------
    def certainty(self, question: str) -> str:
        """Response-blind lexical pass 1 over the question alone."""
        if markers("q_ambiguous", question):
            return "AMBIGUOUS"
        if markers("q_uncertain", question):
            return "UNCERTAIN"
        return "CERTAIN"

    def _rubric_one(self, r: JudgeRequest) -> Score:
        """Heuristics (1..5), all from wording:
        factual_accuracy, completeness: 1 + 4 * keyword coverage when the item has a
            checklist; 3 (no information) otherwise - words cannot tell true from false.
        hedging_appropriateness: certainty from `r.certainty` or the lexical pass 1. Hedging
            expected (UNCERTAIN/AMBIGUOUS): 5 if hedged or clarifying, else 2. Not expected:
            5 if no hedge marker, 3 with one, 1 with two or more.
        pedagogical_framing: 1 + distinct explanation markers reached (1, 2, 3, 5).
        self_verification: 1 with no SVR marker, else min(5, 2 + distinct SVR markers).
        Distinct markers, not occurrences, so repeating a phrase or writing more does not
        raise a score.
        """
        cert = str(r.certainty).upper() if r.certainty else self.certainty(r.question)
        source = "gold" if r.certainty else "lexical"
        hedges = markers("hedge", r.response)
        if cert in ("UNCERTAIN", "AMBIGUOUS"):
            hedging = 5 if (hedges or markers("clarify", r.response) or markers("assume", r.response)) else 2
        else:
            hedging = {0: 5, 1: 3}.get(len(hedges), 1)
        if r.claims:
            cov = self.coverage([r])[0].value
            content = 1 + round(4 * cov)
        else:
            content = 3
        n_svr = len(markers("svr", r.response))
        value = {
            "factual_accuracy": content,
            "hedging_appropriateness": hedging,
            "pedagogical_framing": _level(len(markers("pedagogy", r.response)), (1, 2, 3, 5)),
            "self_verification": 1 if n_svr == 0 else min(5, 2 + n_svr),
            "completeness": content,
        }
        assert set(value) == set(AXES)
        return self._score("rubric", value, {"certainty": cert, "certainty_source": source})

    def rubric(self, reqs: list[JudgeRequest]) -> list[Score]:
        return [self._rubric_one(r) for r in reqs]

    # --- MCAS -------------------------------------------------------------------------------
    def _mcas_one(self, r: JudgeRequest) -> Score:
        """tricky (or unknown kind): 2 = asks a clarifying question or states an assumption,
        1 = only hedges, 0 = none of these. straightforward: 0 = empty, 1 = asks for
        clarification or hedges twice or more (over-hedging a specified task), 2 = answers
        and shows verification or edge-case awareness, otherwise 1."""
        text = r.response or ""
        clarify, assume, hedges = markers("clarify", text), markers("assume", text), markers("hedge", text)
        if r.kind == "straightforward":
            if not text.strip():
                v = 0
            elif clarify or len(hedges) >= 2:
                v = 1
            elif markers("svr", text) or markers("edge", text):
                v = 2
            else:
                v = 1
        else:
            v = 2 if (clarify or assume) else 1 if hedges else 0
        return self._score("mcas", v, {"clarify": clarify, "assume": assume, "hedge": hedges})

    def mcas(self, reqs: list[JudgeRequest]) -> list[Score]:
        return [self._mcas_one(r) for r in reqs]

    def mcas5(self, reqs: list[JudgeRequest]) -> list[Score]:
        kinds = {
            "uncertainty_calibration": ("hedge", "clarify"),
            "self_verification": ("svr",),
            "error_detection": ("error",),
            "assumption_surfacing": ("assume", "clarify"),
            "edge_case_awareness": ("edge",),
        }
        assert set(kinds) == set(MCAS5_DIMS)
        out = []
        for r in reqs:
            value = {d: min(5, 1 + len({m for k in ks for m in markers(k, r.response)})) for d, ks in kinds.items()}
            out.append(self._score("mcas5", value))
        return out

    def describe(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "model": None,
            "temperature": None,
            "prompts": {"markers": {"version": MARKER_VERSION}},
        }
