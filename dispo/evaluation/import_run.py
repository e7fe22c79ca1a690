"""Turn an external JSONL of per-item results into an arm of a (new or existing) run."""

from __future__ import annotations

from pathlib import Path


def import_arm(
    file: str | Path,
    arm: str,
    run_dir: str | Path | None = None,
    field_map: dict | None = None,
    baseline: str | None = None,
    domain: str | None = None,
    root: str | Path | None = None,
):
    from dispo.core.runs import Run
    from dispo.evaluation.importer import read_arm_jsonl
    from dispo.reporting.report import write_report
    from dispo.stats.summary import arm_metrics, claims

    samples = read_arm_jsonl(file, field_map=field_map)  # raises before anything is written
    if run_dir is None:
        cfg = {
            "command": "import",
            "domain": {"name": domain or "import", "split": "import"},
            "judge": {"name": "import"},
            "model": {"name": "import"},
            "seed": 0,
            "imported": {},
        }
        run = Run.create("import", cfg, "import", root=root)
    else:
        run = Run.open(run_dir)
        run.lock()
    try:
        run.write_samples(arm, samples)
        m = run.manifest
        m.setdefault("imports", {})[arm] = {
            "file": str(Path(file).resolve()),
            "field_map": field_map or {},
            "n": len(samples),
        }
        m["status"] = "completed"
        m["has_model"] = False
        run.write_json("manifest.json", m)
        arms = dict(run.iter_arms())
        metrics = {a: arm_metrics(s) for a, s in arms.items()}
        base = baseline or next((a for a in ("base", "baseline") if a in arms), None) or _first_import(run)
        cl = []
        if len(arms) > 1 and base in arms:
            cl = claims(
                {base: arms[base], **{a: s for a, s in arms.items() if a != base}}, base, _common_metrics(metrics)
            )
        run.write_results(metrics, cl, {"baseline": base})
        write_report(run, title="import")
    finally:
        run.unlock()
    return run


def _first_import(run) -> str:
    imports = run.manifest.get("imports", {})
    return next(iter(imports)) if imports else run.arms()[0]


def _common_metrics(metrics: dict) -> list[str]:
    from dispo.stats.catalog import IMPORT_CLAIM_METRICS as order

    common = set.intersection(*(set(m) for m in metrics.values())) if metrics else set()
    return [m for m in order if m in common]
