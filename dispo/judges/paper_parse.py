"""How the paper's release read its judges' replies, rule by rule (release file:line).

Each parser returns (value, reason): value None means unparseable, and the reason says why.
Where the release silently substituted a value for a reply it could not read, dispo leaves
the answer unscored instead (a judge never invents a score); each such case is named below
and in docs/fidelity.md.
"""

from __future__ import annotations

import json
import re
from typing import Any

from dispo.stats.catalog import AXES

CERTAINTY_ORDER = ("CERTAIN", "UNCERTAIN", "AMBIGUOUS")  # the order the release tests them in
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)


def _short(text: str) -> str:
    return repr(text[:80])


def parse_mcas(text: str) -> tuple[int | None, str | None]:
    """phase0_audit/evaluate.py judge_mcas_single: the first character of the stripped reply
    that is 0, 1 or 2 ('Score: 2' -> 2). The release returned -1 (excluded) when there was none."""
    for ch in text.strip():
        if ch in "012":
            return int(ch), None
    return None, f"no 0/1/2 digit in the MCAS judge's reply {_short(text)}"


def parse_yes_no(text: str) -> tuple[bool | None, str | None]:
    """eval/scripts/v1_full_v2.py ask_claim: YES iff 'YES' occurs in the upper-cased reply.
    The release counted every other reply as NO; dispo counts a reply as NO only when it says
    NO, and leaves one with neither word unanswered (excluded from the share, as the release
    excluded failed calls)."""
    up = text.strip().upper()
    if "YES" in up:
        return True, None
    if "NO" in up:
        return False, None
    return None, f"neither YES nor NO in the coverage judge's reply {_short(text)}"


def parse_certainty(text: str, rule: str = "release") -> tuple[str | None, str | None]:
    """Rubric v4 pass 1 (eval/scripts/eval_judge_rubric_v4.py classify).

    rule=release, as the script ran: the first of CERTAIN, UNCERTAIN, AMBIGUOUS that occurs as a
    substring of the upper-cased reply, else CERTAIN. 'UNCERTAIN' contains 'CERTAIN', so an
    UNCERTAIN reply is read as CERTAIN, and an unreadable reply is CERTAIN too; the published
    v4 scores were computed that way.
    rule=strict: the first whole word CERTAIN / UNCERTAIN / AMBIGUOUS; none -> unparseable."""
    up = text.upper()
    if rule == "release":
        return next((k for k in CERTAINTY_ORDER if k in up), "CERTAIN"), None
    m = re.search(r"\b(UNCERTAIN|AMBIGUOUS|CERTAIN)\b", _THINK.sub("", up))
    if m:
        return m.group(1), None
    return None, f"no CERTAIN/UNCERTAIN/AMBIGUOUS in the pass-1 reply {_short(text)}"


def parse_rubric_json(text: str) -> tuple[dict[str, int] | None, str | None]:
    """Rubric v4 pass 2 (eval_judge_rubric_v4.py score): the first {...} in the reply
    (non-greedy, across lines), json.loads, every axis present, int() of each value. dispo adds
    two things: <think> blocks are dropped first (a local judge model may think aloud), and a
    value outside 1-5 is an error (the release kept it)."""
    m = re.search(r"\{.*?\}", _THINK.sub("", text), re.S)
    if not m:
        return None, f"no JSON object in the rubric judge's reply {_short(text)}"
    try:
        obj: Any = json.loads(m.group(0))
    except ValueError as e:
        return None, f"bad JSON from the rubric judge ({str(e)[:60]}): {_short(m.group(0))}"
    if not isinstance(obj, dict):
        return None, f"the rubric judge's JSON is not an object: {_short(m.group(0))}"
    out = {}
    for axis in AXES:
        if axis not in obj:
            return None, f"the rubric judge's JSON has no {axis}: {_short(m.group(0))}"
        try:
            v = int(obj[axis])
        except (TypeError, ValueError):
            return None, f"{axis}={obj[axis]!r} is not an integer"
        if not 1 <= v <= 5:
            return None, f"{axis}={v} is outside 1-5"
        out[axis] = v
    return out, None


def parse_verbal(text: str, rule: str = "release") -> tuple[str | None, str | None]:
    """Arc 2's verbal label (eval/scripts/path_b2_qwen35_humble.py classify_verbal, :97-104).

    Both rules: 'assert' if ASSERT occurs in the upper-cased reply, else 'hedge' if HEDGE does.
    rule=release, as the script ran: a reply with neither word is 'assert' (:104); the published
    2x2 tables were computed that way. The value comes back with the reason it was defaulted.
    rule=strict: such a reply is unparseable (value None, the reason)."""
    up = text.upper()
    if "ASSERT" in up:
        return "assert", None
    if "HEDGE" in up:
        return "hedge", None
    why = f"neither ASSERT nor HEDGE in the verbal judge's reply {_short(text)}"
    return ("assert", why + "; read as assert (the release's rule)") if rule == "release" else (None, why)
