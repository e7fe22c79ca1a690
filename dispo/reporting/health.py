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
# the effect a preset is sized to see: a 10-point change in a content score, found by the
# run's exact McNemar test with this probability (issue 20's "power to see a 10-point effect")
POWER_EFFECT = 0.10
POWER_MIN = 0.80


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
    power = _content_power(res.get("claims") or [], float((falsified.get("settings") or {}).get("alpha", 0.05)))
    if power:
        out[f"power_for_{round(POWER_EFFECT * 100)}_points"] = {
            "ok": min(pw for _, pw, _, _ in power) >= POWER_MIN,
            "detail": ", ".join(f"{cid} {pw:.2f} (n {n}, discordance {d:.2f})" for cid, pw, n, d in power)
            + f"; needs >= {POWER_MIN} at alpha before Holm",
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


def _content_power(claims: list, alpha: float) -> list[tuple[str, float, int, float]]:
    """(claim id, power, n, discordance) for each paired exact-McNemar claim on a content score:
    the power to find a POWER_EFFECT change with this many items and the run's own share of
    items that differ between the arms (stats.metrics.mcnemar_power raises it to the effect)."""
    from dispo.reporting.report import claim_id
    from dispo.stats.metrics import mcnemar_power

    out = []
    for c in claims:
        if not isinstance(c, dict) or c.get("metric") not in CONTENT or c.get("test") != "mcnemar_exact":
            continue
        n, flips = int(c.get("n_pairs") or 0), c.get("flips") or {}
        if n:
            d = (int(flips.get("up", 0)) + int(flips.get("down", 0))) / n
            out.append((claim_id(c), mcnemar_power(n, d, POWER_EFFECT, alpha), n, d))
    return out
