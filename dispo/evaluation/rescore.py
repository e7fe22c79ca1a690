"""Re-score an existing run's samples with another judge: new scores go beside the old ones
(keyed task:judge), so arms can be compared under one identical scorer."""

from __future__ import annotations

from pathlib import Path

from dispo.core.types import Item


def sample_items(samples: list[dict], gold: dict[str, Item] | None = None) -> list[Item]:
    """Rebuild judge inputs from samples; gold (checklists, kinds) comes from the domain when known."""
    items = []
    for s in samples:
        g = gold.get(s["id"]) if gold else None
        msgs = s.get("messages") or []
        question = next((m["content"] for m in reversed(msgs) if m.get("role") == "user"), s.get("prompt", ""))
        items.append(
            g or Item(id=s["id"], prompt=question, domain="import", gold={"kind": (s.get("meta") or {}).get("kind")})
        )
    return items


def domain_gold(cfg: dict) -> dict[str, Item]:
    from dispo.core.errors import DispoError
    from dispo.evaluation.eval_run import make_domain

    name = (cfg.get("domain") or {}).get("name")
    if not name or name == "import":
        return {}
    try:
        dom = make_domain(cfg)
    except DispoError:
        return {}
    from dispo.domains.base import items_by_id

    return items_by_id(dom)


def rescore_samples(samples: list[dict], judge, tasks: list[str], gold: dict[str, Item] | None = None) -> list[dict]:
    from dispo.evaluation.evaluate import score_tasks

    items = sample_items(samples, gold)
    judged = score_tasks(judge, items, [s.get("output", "") for s in samples], tasks)
    out = []
    for s, j in zip(samples, judged):
        s = dict(s)
        s["scores"] = {**(s.get("scores") or {}), **j}
        out.append(s)
    return out


CONTENT_TASKS = ("correct", "coverage")


def rescore_content(samples: list[dict], judge, gold: dict[str, Item] | None) -> list[dict]:
    """Re-score content with `judge`: checklist coverage (judge.coverage) and correct =
    coverage >= 0.5 (dispo.stats.metrics.correct_at), keyed coverage:<judge> and correct:<judge>.
    Needs each item's gold checklist from its domain; raises DispoError naming what is missing."""
    from dispo.core.errors import DispoError
    from dispo.core.types import Score
    from dispo.evaluation.evaluate import judge_requests
    from dispo.stats.metrics import correct_at

    items = sample_items(samples, gold)
    missing = [it.id for it in items if not it.gold.get("checklist")]
    if missing:
        raise DispoError(
            f"no gold checklist for {len(missing)} of {len(items)} items (e.g. {missing[0]!r}): content "
            "can only be re-scored against a domain's checklists (import with --domain chef)"
        )
    scores = judge.coverage(judge_requests(items, [s.get("output", "") for s in samples]))
    out = []
    for s, sc in zip(samples, scores):
        s = dict(s)
        ok = sc.status == "ok" and sc.value is not None
        corr = Score(
            scorer=f"{judge.name}.correct",
            version=sc.version,
            value=bool(correct_at(float(sc.value))) if ok else None,
            status=sc.status if ok else "unscored",
            reason=None if ok else (sc.reason or "no coverage"),
        )
        s["scores"] = {
            **(s.get("scores") or {}),
            f"coverage:{judge.name}": sc.to_json(),
            f"correct:{judge.name}": corr.to_json(),
        }
        out.append(s)
    return out


def rescore_run(run_dir: str | Path, overrides: list[str]):
    from dispo.core.config import compose_config
    from dispo.core.runs import Run
    from dispo.evaluation.eval_run import make_judge
    from dispo.reporting.report import write_report
    from dispo.stats.summary import arm_metrics

    run = Run.open(run_dir)
    run.lock()
    try:
        base_cfg = run.config
        cfg = compose_config(overrides)
        tasks = list(cfg.get("tasks") or [])
        judge = make_judge(cfg)
        gold = domain_gold(base_cfg)
        for arm in run.arms():
            run.write_samples(arm, rescore_samples(run.read_samples(arm), judge, tasks, gold))
        res = run.results
        metrics = {a: arm_metrics(s, prefer={t: judge.name for t in tasks}) for a, s in run.iter_arms()}
        run.write_results(
            metrics, res.get("claims", []), {k: v for k, v in res.items() if k not in {"run", "metrics", "claims"}}
        )
        m = run.manifest
        m.setdefault("rescored", []).append({"judge": judge.describe(), "tasks": tasks})
        run.write_json("manifest.json", m)
        write_report(run)
    finally:
        run.unlock()
    return run
