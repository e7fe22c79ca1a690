"""Lexical checklist coverage for Chef answers.

The rule (the same for every arm, so it can never favour one):

* A claim comes with keyword *groups*; each group is a list of synonyms.
* A claim is covered iff EVERY group has AT LEAST ONE synonym that occurs in the answer as a
  word-prefix: the synonym must start at a word boundary but may run on into a longer word,
  so "overheat" matches "overheated" and "emulsi" matches "emulsion" and "émulsifié".
* Matching is case-insensitive and accent-insensitive: text and synonyms are both folded to
  unaccented lowercase ("Pâte brisée" == "pate brisee"), ligatures are expanded ("œ" -> "oe")
  and every run of punctuation/whitespace becomes one space, so "bain-marie" == "bain marie"
  and multi-word synonyms match across line breaks.
* Digits and letters are split ("3mm" -> "3 mm", "82°C" -> "82 c"), and a synonym that ends in
  a digit must not run on into another digit, so "82" matches "82-85" but not "820".
* A claim with no groups is never covered: an unverifiable claim must not count as present.

The rule is deliberately simple and does not understand negation ("do not overheat" covers
"overheat"); model judges exist for semantics. `dispo.judges` (lexical judge) imports
`claim_covered` and `coverage_flags`: keep their signatures.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_LIGATURES = str.maketrans({"œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae", "ß": "ss"})
_NON_WORD = re.compile(r"[^a-z0-9]+")
_DIGIT_LETTER = re.compile(r"(?<=[0-9])(?=[a-z])|(?<=[a-z])(?=[0-9])")


def fold(text: str) -> str:
    """Unaccented, lowercase, single-spaced form of `text` used on both sides of a match."""
    text = unicodedata.normalize("NFKD", text.translate(_LIGATURES))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = _NON_WORD.sub(" ", text)
    return _DIGIT_LETTER.sub(" ", text).strip()


@lru_cache(maxsize=8192)
def _synonym_pattern(synonym: str) -> re.Pattern[str] | None:
    folded = fold(synonym)
    if not folded:
        return None
    tail = r"(?![0-9])" if folded[-1].isdigit() else ""
    return re.compile(r"(?<![a-z0-9])" + re.escape(folded) + tail)


def _group_hit(folded_text: str, group: list[str]) -> bool:
    for syn in group:
        pat = _synonym_pattern(syn)
        if pat is not None and pat.search(folded_text):
            return True
    return False


def claim_covered(text: str, keyword_groups: list[list[str]]) -> bool:
    """True iff every synonym group has at least one synonym in `text` (see module rule)."""
    if not keyword_groups:
        return False
    folded = fold(text)
    return all(_group_hit(folded, group) for group in keyword_groups)


def coverage_flags(text: str, claims_keywords: list[list[list[str]]]) -> list[bool]:
    """One covered/not-covered flag per claim; `claims_keywords[i]` is claim i's groups."""
    folded = fold(text)
    return [bool(groups) and all(_group_hit(folded, g) for g in groups) for groups in claims_keywords]
