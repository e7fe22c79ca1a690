"""`dispo train ARC`: compose the arc's config, create or resume the run, run the recipe."""

from __future__ import annotations

from pathlib import Path


def run_train(
    arc: str, overrides: list[str], resume: bool = False, run_dir: Path | None = None, cfg: dict | None = None
):
    from dispo.arcs import ARCS
    from dispo.core.config import compose_config
    from dispo.core.errors import ConfigError
    from dispo.core.lifecycle import lifecycle, open_or_create

    if arc not in ARCS:
        raise ConfigError(f"unknown arc '{arc}'; valid choices: {', '.join(ARCS.names())}")
    from dispo.evaluation.eval_run import make_judge

    cfg = cfg or compose_config(overrides, base={"arc": arc})
    recipe_cls = ARCS.get(arc)
    # as `dispo eval`: a judge that cannot run (judge=paper without an endpoint) is one error
    # line before any run dir exists; the recipe uses this judge instead of building its own
    judge = make_judge(cfg)
    run = open_or_create(f"train-{arc}", cfg, overrides, resume, run_dir)
    with lifecycle(run):
        recipe = recipe_cls(cfg, run, judge=judge)
        recipe.setup()
        try:
            recipe.run()
        finally:
            recipe.cleanup()
    return run
