"""`dispo eval key=value ...`"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def eval_(
    overrides: Optional[List[str]] = typer.Argument(
        None, help="Hydra overrides, e.g. model=smollm2-135m domain=chef limit=20"
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue the newest unfinished run with the same config."),
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Continue this run dir."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    multirun: bool = typer.Option(
        False, "--multirun", "-m", help="Sweep: comma-separated values expand to one job each."
    ),
) -> None:
    """Evaluate a model: content + disposition with the same scorers on every arm."""
    from dispo.commands.runs_cmd import print_results
    from dispo.core.config import compose_config
    from dispo.core.lifecycle import lifecycle, open_or_create
    from dispo.evaluation.eval_run import make_judge, run_eval

    overrides = list(overrides or [])
    if multirun:
        from dispo.sweep import run_sweep

        run_sweep("eval", overrides, base={}, resume=resume)
        return
    cfg = compose_config(overrides)
    judge = make_judge(cfg)  # a judge that cannot run (no endpoint) fails in one line before a run dir exists
    run = open_or_create("eval", cfg, overrides, resume, run_dir)
    with lifecycle(run):
        run_eval(cfg, run, progress=not quiet, judge=judge)
    print_results(run)
