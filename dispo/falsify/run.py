"""Run every check on every claim of a run and give each claim a verdict.

FALSIFIED     a perturbation changed the claim's sign or significance (reasons name it:
              truncation, seed-variance / no-replication, judge-asymmetry, judge-dependent,
              style-over-substance, fresh-collapse)
INCONCLUSIVE  the gain is inside the noise, a check raised a warning sign, or a check the
              claim needs could not run here (e.g. an imported run has no model to regenerate)
SURVIVES      significant after correction, and every applicable check ran and held
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dispo.core.types import ScoreKey
from dispo.falsify import checks as C
from dispo.falsify.context import FalsifyContext, arm_provenance, model_regenerator
from dispo.reporting.report import claim_id

# checks whose absence leaves a generated-output claim unverified
REQUIRED = ("truncation", "seed_variance")


def verdict(claim: dict, results: dict[str, dict]) -> tuple[str, list[str]]:
    fails = [r["reason"] for r in results.values() if r["status"] == "fail"]
    if fails:
        return "FALSIFIED", fails
    reasons = [r["reason"] for r in results.values() if r["status"] == "flag"]
    reasons += [
        f"unverified ({name}): {r['reason']}"
        for name, r in results.items()
        if r["status"] == "skipped" and name in REQUIRED
    ]
    if reasons:
        return "INCONCLUSIVE", reasons
    return "SURVIVES", [r["reason"] for r in results.values() if r["status"] == "pass"][:3]


def falsify_claims(claims: list[dict], ctx: FalsifyContext) -> list[dict]:
    out = []
    enabled = ctx.cfg.get("checks") or list(C.CHECKS)
    for claim in claims:
        cid = claim_id(claim)
        names = C.PROBE_CHECKS if claim.get("kind") == "probe" else enabled
        results = {}
        if claim.get("kind", "paired") == "paired" and (claim.get("delta") is None or abs(claim["delta"]) < 1e-12):
            # No measured delta, or a zero one, claims no effect: there is no sign to reproduce.
            names = []
            results["claimed_effect"] = {
                "status": "flag",
                "reason": (
                    "no effect claimed (delta = 0): nothing to falsify"
                    if claim.get("delta") is not None
                    else "no effect measured (no paired data for this metric on these arms)"
                ),
            }
        for name in names:
            if name not in enabled:
                continue
            try:
                results[name] = C.CHECKS[name](claim, ctx)
            except KeyError as e:  # an arm named by the claim is missing from the run
                results[name] = {"status": "skipped", "reason": f"missing data: {e}"}
        v, reasons = verdict(claim, results)
        out.append(
            {
                "id": cid,
                "arm": claim.get("arm"),
                "baseline": claim.get("baseline"),
                "metric": claim.get("metric"),
                "arc": claim.get("arc"),
                "kind": claim.get("kind", "paired"),
                "claimed": {
                    k: claim.get(k) for k in ("base", "treat", "delta", "ci", "p", "p_holm", "test", "auc", "cv_auc")
                },
                "checks": results,
                "verdict": v,
                "reasons": reasons,
            }
        )
    return out


def _rescorer(run, gold_cache: dict):
    from dispo.core.errors import DispoError
    from dispo.evaluation.rescore import domain_gold, rescore_samples
    from dispo.judges import get_judge

    judges: dict[str, Any] = {}

    def rescore(samples: list[dict], judge_name: str) -> list[dict] | None:
        if not samples or any(s.get("output_missing") or not s.get("output") for s in samples):
            return None
        if judge_name not in judges:
            try:
                judges[judge_name] = get_judge(judge_name)
            except DispoError:
                return None
        if "gold" not in gold_cache:
            gold_cache["gold"] = domain_gold(run.config)
        tasks = sorted(
            {ScoreKey.parse(k).task for s in samples for k in (s.get("scores") or {})} - {"correct", "coverage"}
        )
        tasks = tasks or ["verbal", "svr", "hedge"]
        out = rescore_samples(samples, judges[judge_name], tasks, gold_cache["gold"])
        # content from a judge (chef coverage) is re-scored too, through the domain's matcher
        return out

    return rescore


def falsify_run(
    run_dir: str | Path, overrides: list[str] | None = None, regenerate=None, progress: bool = True
) -> dict:
    """Check every claim in `run_dir`/results.json; write falsify/falsify.json and report.md."""
    from dispo.core.config import compose_config
    from dispo.core.errors import RunDirError
    from dispo.core.runs import Run

    run = Run.open(run_dir)
    res = run.results
    if not res:
        raise RunDirError(f"{run.dir} has no results.json; the run did not finish (try --resume on it first)")
    claims = res.get("claims") or []
    fcfg = compose_config(list(overrides or []))["falsify"]
    provenance = arm_provenance(run)
    why = None
    if regenerate is None:
        regenerate, why = model_regenerator(run, provenance, progress=progress)
    arms = dict(run.iter_arms())
    ctx = FalsifyContext(
        run=run,
        cfg=fcfg,
        arms=arms,
        provenance=provenance,
        regenerate=regenerate,
        why_no_model=why,
        rescore=_rescorer(run, {}),
    )
    results = falsify_claims(claims, ctx)
    out = {
        "run": run.id,
        "settings": fcfg,
        "has_model": regenerate is not None,
        "why_no_model": why,
        "claims": results,
        "summary": {v: sum(1 for c in results if c["verdict"] == v) for v in ("SURVIVES", "FALSIFIED", "INCONCLUSIVE")},
    }
    run.write_json("falsify/falsify.json", out)
    from dispo.falsify.report import write_falsify_report

    write_falsify_report(run, out)
    return out


def print_verdicts(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    colours = {"SURVIVES": "green", "FALSIFIED": "red", "INCONCLUSIVE": "yellow"}
    t = Table(title=f"falsify {result['run']}")
    for c in ("claim", "claimed delta", "verdict", "why"):
        t.add_column(c, overflow="fold")
    for c in result["claims"]:
        d = c["claimed"].get("delta")
        t.add_row(
            c["id"],
            "n/a" if d is None else f"{d:+.4f}",
            f"[{colours[c['verdict']]}]{c['verdict']}[/]",
            "; ".join(c["reasons"][:3]),
        )
    con = Console()
    con.print(t)
    if not result["has_model"]:
        con.print(f"[yellow]checks that regenerate outputs did not run: {result['why_no_model']}[/]")
    if not result["claims"]:
        con.print("this run makes no claims (results.json has no treatment-vs-baseline deltas)")
