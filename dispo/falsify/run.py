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

from dispo.core.errors import ConfigError, DispoError
from dispo.falsify import checks as C
from dispo.falsify.context import FalsifyContext, NotChecked, arm_provenance, model_regenerator
from dispo.reporting.report import claim_id

NOT_CHECKED = ("skipped", "error")


class JudgeFailed(DispoError):
    """A re-scoring judge raised; the check is recorded as an error."""


def verdict(claim: dict, results: dict[str, dict], left_out: list[str] | None = None) -> tuple[str, list[str]]:
    """FALSIFIED if any check failed; else INCONCLUSIVE if any check flagged, was not checked
    (skipped, errored, no re-measured delta) or was left out of falsify.checks, naming each;
    else SURVIVES, which therefore needs every applicable check to have run and agreed."""
    fails = [r["reason"] for r in results.values() if r["status"] == "fail"]
    if fails:
        return "FALSIFIED", fails
    reasons = [r["reason"] for r in results.values() if r["status"] == "flag"]
    missing = [
        f"{name} ({'error: ' if r['status'] == 'error' else ''}{r['reason']})"
        for name, r in results.items()
        if r["status"] in NOT_CHECKED
    ]
    missing += [f"{name} (left out of falsify.checks)" for name in left_out or []]
    if missing:
        reasons.append("not checked: " + ", ".join(missing))
    if reasons:
        return "INCONCLUSIVE", reasons
    if not any(r["status"] == "pass" for r in results.values()):
        return "INCONCLUSIVE", ["not checked: no check applies to this claim"]
    return "SURVIVES", [r["reason"] for r in results.values() if r["status"] == "pass"][:3]


def _enabled(cfg: dict) -> list[str]:
    names = list(cfg.get("checks") or C.CHECKS)
    unknown = [n for n in names if n not in C.CHECKS]
    if unknown:
        raise ConfigError(
            f"falsify.checks: unknown check {', '.join(map(repr, unknown))}; known: {', '.join(C.CHECKS)}"
        )
    return names


def run_check(name: str, claim: dict, ctx: FalsifyContext) -> dict:
    """One check; a check that cannot run is recorded as skipped or error with its reason."""
    try:
        return C.CHECKS[name](claim, ctx)
    except NotChecked as e:
        return {"status": "skipped", "reason": str(e)}
    except KeyError as e:  # an arm named by the claim is missing from the run
        return {"status": "skipped", "reason": f"missing data: {e}"}
    except DispoError as e:  # e.g. the second judge cannot load: recorded, never a pass
        return {"status": "error", "reason": f"{type(e).__name__}: {e}"}


def falsify_claims(claims: list[dict], ctx: FalsifyContext) -> list[dict]:
    out = []
    enabled = _enabled(ctx.cfg)
    for claim in claims:
        cid = claim_id(claim)
        names = list(C.PROBE_CHECKS) if claim.get("kind") == "probe" else list(C.CHECKS)
        results: dict[str, dict] = {}
        left_out: list[str] = []
        if claim.get("kind", "paired") == "paired" and (claim.get("delta") is None or abs(claim["delta"]) < 1e-12):
            # No measured delta, or a zero one, claims no effect: there is no sign to reproduce.
            names = []
            results["claimed_effect"] = {
                "status": "flag",
                "reason": (
                    "no effect claimed (delta = 0): nothing to falsify"
                    if claim.get("delta") is not None
                    else f"undefined statistic: {claim['undefined']}"
                    if claim.get("undefined")
                    else "no effect measured (no paired data for this metric on these arms)"
                ),
            }
        for name in names:
            if name not in enabled:
                if not C.statically_na(name, claim):
                    left_out.append(name)
                continue
            results[name] = run_check(name, claim, ctx)
        v, reasons = verdict(claim, results, left_out)
        out.append(
            {
                "id": cid,
                "arm": claim.get("arm"),
                "baseline": claim.get("baseline"),
                "metric": claim.get("metric"),
                "arc": claim.get("arc"),
                "kind": claim.get("kind", "paired"),
                "claimed": {
                    k: claim.get(k)
                    for k in (
                        "base",
                        "treat",
                        "delta",
                        "ci",
                        "p",
                        "p_holm",
                        "test",
                        "auc",
                        "cv_auc",
                        "n_pairs",
                        "undefined",
                    )
                },
                "checks": results,
                "verdict": v,
                "reasons": reasons,
                "not_checked": [n for n, r in results.items() if r["status"] in NOT_CHECKED] + left_out,
                "evidence": {n: r.get("evidence") for n, r in results.items() if r.get("evidence")},
            }
        )
    return out


def _rescorer(run):
    """Re-score samples with a named judge (cached per judge and options)."""
    import json

    from dispo.evaluation.rescore import CONTENT_TASKS, domain_gold, rescore_content, rescore_samples
    from dispo.judges import get_judge

    judges: dict[str, Any] = {}
    gold: dict[str, Any] = {}

    def rescore(samples: list[dict], judge_name: str, tasks: list[str], options: dict | None = None):
        if not samples:
            raise NotChecked("the arm has no samples")
        if any(s.get("output_missing") or s.get("output") is None for s in samples):
            raise NotChecked("the arm carries labels only; re-scoring needs the responses")
        key = f"{judge_name}:{json.dumps(options or {}, sort_keys=True, default=str)}"
        if key not in judges:
            try:
                judges[key] = get_judge(judge_name, **(options or {}))
            except Exception as e:  # recorded as the check's error (never a pass), with what failed
                raise JudgeFailed(
                    f"second judge {judge_name} {options or {}} did not load: {type(e).__name__}: {e}"
                ) from None
        judge = judges[key]
        other = [t for t in tasks if t not in CONTENT_TASKS]
        lacking = [t for t in other if not callable(getattr(judge, t, None))]
        if lacking:
            raise NotChecked(f"the {judge_name} judge has no {', '.join(lacking)} task")
        if "gold" not in gold:
            gold["gold"] = domain_gold(run.config) if run else {}
        out = samples
        if any(t in CONTENT_TASKS for t in tasks):
            from dispo.evaluation.rescore import sample_items

            no_list = [it.id for it in sample_items(samples, gold["gold"]) if not it.gold.get("checklist")]
            if no_list:
                raise NotChecked(
                    f"content cannot be re-scored: no gold checklist for {len(no_list)} of {len(samples)} "
                    f"items (e.g. {no_list[0]!r}); only a domain with checklists (chef) can be re-scored"
                )
        try:
            if any(t in CONTENT_TASKS for t in tasks):
                out = rescore_content(out, judge, gold["gold"])
            if other:
                out = rescore_samples(out, judge, other, gold["gold"])
        except Exception as e:  # recorded as the check's error, with what failed
            raise JudgeFailed(f"{judge_name} failed while scoring {'+'.join(tasks)}: {type(e).__name__}: {e}") from None
        return out, {"judge": judge.describe(), "items_rescored": len(samples), "tasks": list(tasks)}

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
    _enabled(fcfg)  # an unknown check name is a config error before any work
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
        rescore=_rescorer(run),
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
