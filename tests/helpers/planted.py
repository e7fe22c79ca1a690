"""Planted two-arm JSONL files for the falsify suite: each builder writes the files a user
would import (`dispo import FILE --arm NAME`) with one artefact planted by construction."""

from __future__ import annotations

import json
from pathlib import Path

N = 40
ASSERT = "The answer is {i}."
HEDGE = "I think it might be {i}, but I am not sure."


def line(
    i: int, correct: bool | None = None, verbal: str | None = None, finish: str = "stop", text: str | None = None
) -> dict:
    """One imported item; the response text matches the verbal label unless `text` says otherwise
    (the lexical judge reads hedges from the words: 'I think', 'might', 'not sure')."""
    row = {
        "id": f"q{i}",
        "prompt": f"What is item {i}?",
        "finish_reason": finish,
        "n_tokens": 512 if finish == "length" else 40,
    }
    row["response"] = text if text is not None else (HEDGE if verbal == "hedge" else ASSERT).format(i=i)
    if correct is not None:
        row["correct"] = bool(correct)
    if verbal is not None:
        row["verbal"] = verbal
    return row


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def truncation_artefact(d: Path) -> tuple[Path, Path]:
    """25 baseline answers hit the limit (and fail); the treatment 'wins' only on those items.
    Where neither arm was truncated (15 items) the baseline is ahead: the gain is truncation."""
    base = [line(i, correct=i < 5, finish="length" if 10 <= i < 35 else "stop") for i in range(N)]
    treat = [line(i, correct=10 <= i < 30) for i in range(N)]
    return write(d / "base.jsonl", base), write(d / "treat.jsonl", treat)


def genuine_gain(d: Path) -> tuple[Path, Path]:
    """Same accuracy (20/40) in both arms; the treatment hedges exactly when wrong, the baseline
    asserts everything: a real assertion-asymmetry gain, visible in the words too."""
    base = [line(i, correct=i < 20, verbal="assert") for i in range(N)]
    treat = [line(i, correct=i < 20, verbal="assert" if i < 20 else "hedge") for i in range(N)]
    return write(d / "base.jsonl", base), write(d / "treat.jsonl", treat)


def judge_dependent(d: Path) -> tuple[Path, Path]:
    """The imported (model-judge) labels say the treatment hedges when wrong; the words say the
    opposite: the baseline's wrong answers carry hedges, the treatment's do not."""
    base = [line(i, correct=i < 20, verbal="assert", text=(ASSERT if i < 20 else HEDGE).format(i=i)) for i in range(N)]
    treat = [line(i, correct=i < 20, verbal="assert" if i < 20 else "hedge", text=ASSERT.format(i=i)) for i in range(N)]
    return write(d / "base.jsonl", base), write(d / "treat.jsonl", treat)


def style_over_substance(d: Path) -> tuple[Path, Path]:
    """The treatment hedges exactly when wrong (asymmetry improves) while it answers fewer
    items correctly (30 -> 15 of 40)."""
    base = [line(i, correct=i < 30, verbal="assert") for i in range(N)]
    treat = [line(i, correct=i < 15, verbal="assert" if i < 15 else "hedge") for i in range(N)]
    return write(d / "base.jsonl", base), write(d / "treat.jsonl", treat)


def undefined_statistic(d: Path) -> tuple[Path, Path]:
    """No correct item in the baseline: its assertion asymmetry (which needs correct items) is
    undefined; accuracy rises 0 -> 20 of 40."""
    base = [line(i, correct=False, verbal="assert") for i in range(N)]
    treat = [line(i, correct=i < 20, verbal="assert" if i < 20 else "hedge") for i in range(N)]
    return write(d / "base.jsonl", base), write(d / "treat.jsonl", treat)


def significant_content_gain(d: Path) -> tuple[Path, Path]:
    """Accuracy 10 -> 32 of 40, no truncation, labels only for content."""
    base = [line(i, correct=i < 10) for i in range(N)]
    treat = [line(i, correct=i < 32) for i in range(N)]
    return write(d / "base.jsonl", base), write(d / "treat.jsonl", treat)
