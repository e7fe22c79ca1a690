"""`dispo eval`: evaluate one model (plus optional extra arms) on a domain with one judge.

The CLI calls `run_eval`; so can a notebook:

    from dispo.core.config import compose_config
    from dispo.evaluation.eval_run import run_eval
    run = run_eval(compose_config(["model=smollm2-135m", "domain=chef", "limit=20"]))
"""

from __future__ import annotations

from typing import Any

from dispo.core.errors import ConfigError


def domain_kwargs(cfg: dict) -> dict[str, Any]:
    return {k: v for k, v in (cfg.get("domain") or {}).items() if k not in {"name", "split"}}


def judge_kwargs(cfg: dict) -> dict[str, Any]:
    return {k: v for k, v in (cfg.get("judge") or {}).items() if k != "name"}


def make_domain(cfg: dict):
    from dispo.domains import get_domain

    return get_domain(cfg["domain"]["name"], **domain_kwargs(cfg))


def make_judge(cfg: dict):
    from dispo.judges import get_judge

    return get_judge(cfg["judge"]["name"], **judge_kwargs(cfg))


def load_lm(cfg: dict, adapter: str | None = None):
    from dispo.models.loading import load_model

    return load_model(dict(cfg["model"]), adapter=adapter, device=cfg.get("device") or None)


def arm_specs(cfg: dict) -> dict[str, dict]:
    """base (the configured model/adapter) plus any `arms` from config."""
    arms = {"base": {"adapter": cfg.get("adapter"), "system_prompt": cfg.get("system_prompt")}}
    for name, spec in (cfg.get("arms") or {}).items():
        if name == "base":
            raise ConfigError("arms.base is reserved for the configured model; name your arm differently")
        if not isinstance(spec, dict):
            raise ConfigError(f"arms.{name} must be a mapping with adapter/system_prompt/decoding keys")
        unknown = set(spec) - {"adapter", "system_prompt", "decoding"}
        if unknown:
            raise ConfigError(
                f"arms.{name} has unknown keys {sorted(unknown)}; valid: adapter, system_prompt, decoding"
            )
        arms[name] = spec
    return arms


def run_eval(cfg: dict, run=None, progress: bool = True, judge=None):
    """Evaluate every arm; write samples, results.json and report.md. Returns the Run."""
    from dispo.core.lifecycle import lifecycle, open_or_create
    from dispo.evaluation.evaluate import evaluate_arm
    from dispo.reporting.report import write_report
    from dispo.stats.summary import arm_metrics, claims

    if run is None:
        # a judge that cannot run (judge=paper without an endpoint) is one error line, before any run dir exists
        judge = judge or make_judge(cfg)
        run = open_or_create("eval", cfg, [], resume=False)
        with lifecycle(run):
            return run_eval(cfg, run, progress, judge)
    domain = make_domain(cfg)
    judge = judge or make_judge(cfg)
    items = domain.items(cfg["domain"].get("split", "eval"), cfg.get("limit"))
    run.record("judge", judge.describe())
    arms: dict[str, list[dict]] = {}
    lm_cache: dict[Any, Any] = {}
    for arm, spec in arm_specs(cfg).items():
        key = spec.get("adapter")
        if key not in lm_cache:
            lm_cache.clear()  # one model in memory at a time
            lm_cache[key] = load_lm(cfg, adapter=key)
        lm = lm_cache[key]
        decoding = {**cfg["decoding"], **(spec.get("decoding") or {})}
        if domain.name == "recovery":
            arms.update(_recovery_arm(run, arm, lm, domain, items, cfg, judge, decoding, spec, progress))
        else:
            arms[arm] = evaluate_arm(
                run,
                arm,
                lm,
                domain,
                items,
                cfg,
                judge,
                decoding=decoding,
                system_prompt=spec.get("system_prompt"),
                progress=progress,
            )
    metrics = {a: arm_metrics(s) for a, s in arms.items()}
    extra: dict[str, Any] = {}
    if domain.name == "recovery":
        extra["recovery"] = {a: run.read_json(f"artifacts/recovery_{a}.json") for a in arms if not a.endswith("@fb")}
    cl = []
    treatments = [a for a in arms if a != "base" and not a.endswith("@fb")]
    if treatments:
        cl = claims({a: arms[a] for a in ["base", *treatments]}, "base", _claim_metrics(metrics["base"]))
    run.write_results(metrics, cl, extra)
    write_report(run)
    return run


def _claim_metrics(base_metrics: dict) -> list[str]:
    from dispo.stats.catalog import EVAL_CLAIM_METRICS

    return [m for m in EVAL_CLAIM_METRICS if m in base_metrics]


def content_score_of(sample: dict):
    """The content Score a sample was given (coverage for chef, tests for code), rebuilt."""
    from dispo.core.types import Score, ScoreKey

    scores = sample.get("scores") or {}
    tasks = {k: ScoreKey.parse(k).task for k in scores}
    key = next((k for k in scores if tasks[k] == "coverage"), None) or next(
        (k for k in scores if tasks[k] == "correct"), None
    )
    if key is None:
        return Score.unscored("content", "none", "no content score")
    return Score.from_json(scores[key])


def _recovery_arm(run, arm, lm, domain, items, cfg, judge, decoding, spec, progress):
    """Two turns: first attempt, then feedback (real on failures, misleading on passes)."""
    from dispo.domains.recovery import feedback_items, recovery_summary
    from dispo.evaluation.evaluate import evaluate_arm

    first = evaluate_arm(
        run,
        arm,
        lm,
        domain,
        items,
        cfg,
        judge,
        decoding=decoding,
        system_prompt=spec.get("system_prompt"),
        progress=progress,
    )
    first_scores = [content_score_of(s) for s in first]
    fb_items = feedback_items(items, [s["output"] for s in first], first_scores)
    fb_arm = f"{arm}@fb"
    second = (
        evaluate_arm(
            run,
            fb_arm,
            lm,
            domain,
            fb_items,
            cfg,
            judge,
            decoding=decoding,
            system_prompt=spec.get("system_prompt"),
            progress=progress,
        )
        if fb_items
        else []
    )
    by_id = dict(zip([i.id for i in items], first_scores))
    summary = recovery_summary(
        [by_id[i.meta["first_id"]] for i in fb_items], [content_score_of(s) for s in second], fb_items
    )
    summary["n_first_unscored"] = len(items) - len(fb_items)
    run.write_json(f"artifacts/recovery_{arm}.json", summary)
    return {arm: first, fb_arm: second}
