"""`dispo train ARC key=value ...`"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def train(
    arc: str = typer.Argument(..., help="arc1 (distillation) | arc2 (head tempering) | arc3 (sidecar probe)"),
    overrides: Optional[List[str]] = typer.Argument(
        None, help="Hydra overrides, e.g. model=qwen3-0.6b arc.preset=smoke"
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue the newest unfinished run (or sweep) with the same config."
    ),
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Continue this run dir."),
    multirun: bool = typer.Option(
        False, "--multirun", "-m", help="Sweep: comma-separated values expand to one job each."
    ),
) -> None:
    """Run one of the paper's three arcs end to end into a run directory."""
    overrides = list(overrides or [])
    if multirun:
        from dispo.sweep import run_sweep

        run_sweep(f"train {arc}", overrides, base={"arc": arc}, resume=resume)
        return
    from dispo.arcs.train_run import run_train
    from dispo.commands.runs_cmd import print_results

    run = run_train(arc, overrides, resume=resume, run_dir=run_dir)
    print_results(run)
