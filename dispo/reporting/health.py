"""Could the science happen in this run? The non-degeneracy checks of a finished run.

A run can complete, make claims and pass falsify while measuring nothing: every answer cut at the
token budget, every content score 0, a "distilled" student trained on reference answers, a probe
with one class. `health(run_dir, falsified)` measures each condition on the run's own files and
never assumes one: {"check": {"ok": True | False, "detail": str}}, a check that does not apply to
the run's arc is left out. bench/experiment.py records it for every arc of the first real
experiment.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CONTENT = ("pass@1", "accuracy", "coverage")


def _read(p: Path) -> dict:
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def health(run_dir: Path, arc: str, falsified: dict) -> dict[str, Any]:
    """The non-degeneracy checks of one run: arc is "arc1" | "arc2" | "arc3"; falsified is the
    dict `dispo falsify` returned (falsify/falsify.json)."""
    run_dir = Path(run_dir)
    res = _read(run_dir / "results.json")
    metrics = res.get("metrics") or {}
    out: dict[str, Any] = {}
    trunc = {arm: (m.get("truncation_rate") or {}).get("value") for arm, m in metrics.items()}
    full = [a for a, t in trunc.items() if t is not None and t >= 1.0]
    out["no_arm_fully_truncated"] = {
        "ok": bool(trunc) and not full,
        "detail": ", ".join(f"{a} {t:.2f}" for a, t in trunc.items() if t is not None) or "no truncation recorded",
    }
    content = {
        f"{arm}.{name}": m[name]["value"]
        for arm, m in metrics.items()
        for name in CONTENT
        if isinstance((m.get(name) or {}).get("value"), (int, float))
    }
    out["some_content_score_above_0"] = {
        "ok": any(v > 0 for v in content.values()),
        "detail": ", ".join(f"{k} {v:.3f}" for k, v in content.items()) or "no content metric",
    }
    if arc == "arc1":
        data = _read(run_dir / "data_report.json")
        ref = (data.get("counts") or {}).get("reference", 0) + (data.get("pairs") or {}).get("reference", 0)
        out["distilled_training_data"] = {
            "ok": data.get("distilled_sft", 0) > 0 and ref == 0,
            "detail": f"{data.get('distilled_sft', 0)} distilled SFT, {data.get('distilled_pairs', 0)} distilled pairs, "
            f"{ref} reference",
        }
    if arc == "arc3":
        from dispo.reporting.crossrun import _RunInfo, _train_positives

        pos, n = _train_positives(_RunInfo(run_dir))
        out["both_probe_classes"] = {
            "ok": pos is not None and 0 < pos < (n or 0),
            "detail": f"{pos} positives of {n} train items" if pos is not None else "no features recorded",
        }
    claims = [c for c in falsified.get("claims") or [] if isinstance(c, dict)]
    nonzero = [c for c in claims if ((c.get("claimed") or {}).get("delta") or 0) != 0]
    without = [
        c.get("id")
        for c in nonzero
        if not any(isinstance(r, dict) and r.get("evidence") for r in (c.get("checks") or {}).values())
    ]
    out["verdict_with_evidence_for_every_nonzero_claim"] = {
        "ok": not without,
        "detail": f"{len(nonzero)} nonzero claims"
        + (f"; without evidence: {', '.join(map(str, without))}" if without else ""),
    }
    return out
