"""How far the lexical judge agrees with the paper's model judge (DeepSeek V3.2).

    python -m dispo.judges.agreement REF_DIR   # e.g. /work/shared/reference/tinman-dd

Reads `*_step16_responses.jsonl` (fields response, verbal, correct, coverage) and prints,
per file and pooled: Cohen's kappa between lexical `verbal` and the paper's `verbal`, the
confusion counts, and the hedge rate in the paper's correct vs wrong cohorts under each
judge. The reference lines carry no checklist, so lexical *coverage* cannot be compared;
the cohort hedge rates stand in for it (does the cheap judge see the same
correctness-conditioned behaviour the paper reports?).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from dispo.core.errors import InputFileError
from dispo.judges.base import JudgeRequest

REQUIRED = ("response", "verbal", "correct")


def read_responses(path: Path) -> list[dict[str, Any]]:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as e:
                raise InputFileError(f"{path}:{n}: not JSON ({e})") from None
            missing = [k for k in REQUIRED if k not in row]
            if missing:
                raise InputFileError(f"{path}:{n}: missing field(s) {', '.join(missing)}")
            rows.append(row)
    return rows


def _rate(xs: list[bool]) -> float | None:
    return round(sum(xs) / len(xs), 4) if xs else None


def agreement(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """kappa(lexical verbal, paper verbal) plus hedge rates by the paper's correctness."""
    from sklearn.metrics import cohen_kappa_score

    from dispo.judges.lexical import LexicalJudge

    lex = [s.value for s in LexicalJudge().verbal([JudgeRequest(question="", response=r["response"]) for r in rows])]
    paper = [str(r["verbal"]).lower() for r in rows]
    correct = [bool(r["correct"]) for r in rows]
    pairs = {
        f"lexical_{a}/paper_{b}": sum(1 for x, y in zip(lex, paper) if (x, y) == (a, b))
        for a in ("assert", "hedge")
        for b in ("assert", "hedge")
    }

    def cohort(labels, want):
        return _rate([lab == "hedge" for lab, c in zip(labels, correct) if c == want])

    def asym(labels):
        # assertion asymmetry P(assert|wrong) - P(assert|correct), the paper's gate metric
        pw, pc = cohort(labels, False), cohort(labels, True)
        return None if pw is None or pc is None else round((1 - pw) - (1 - pc), 4)

    return {
        "n": len(rows),
        "kappa_verbal": round(float(cohen_kappa_score(lex, paper)), 4),
        "raw_agreement": _rate([a == b for a, b in zip(lex, paper)]),
        "confusion": pairs,
        "hedge_rate": {
            "lexical": {"correct": cohort(lex, True), "wrong": cohort(lex, False)},
            "paper": {"correct": cohort(paper, True), "wrong": cohort(paper, False)},
        },
        "assertion_asymmetry": {"lexical": asym(lex), "paper": asym(paper)},
        "kappa_lexical_hedge_vs_paper_wrong": round(
            float(cohen_kappa_score([x == "hedge" for x in lex], [not c for c in correct])), 4
        ),
        "kappa_paper_hedge_vs_paper_wrong": round(
            float(cohen_kappa_score([x == "hedge" for x in paper], [not c for c in correct])), 4
        ),
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m dispo.judges.agreement REF_DIR", file=sys.stderr)
        return 2
    files = sorted(Path(argv[0]).glob("*_step16_responses.jsonl"))
    if not files:
        print(f"error: no *_step16_responses.jsonl in {argv[0]}", file=sys.stderr)
        return 2
    pooled: list[dict[str, Any]] = []
    report = {}
    for f in files:
        rows = read_responses(f)
        pooled.extend(rows)
        report[f.name.replace("_step16_responses.jsonl", "")] = agreement(rows)
    report["pooled"] = agreement(pooled)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
