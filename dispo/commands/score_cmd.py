"""`dispo score RUN judge=...`: re-score a run's samples without regenerating."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def score(
    run_dir: Path = typer.Argument(..., help="Run directory whose samples to re-score."),
    overrides: Optional[List[str]] = typer.Argument(
        None, help="judge=... tasks=[...] (judge options as judge.KEY=VALUE)"
    ),
) -> None:
    """Add scores from another judge beside the existing ones (nothing is regenerated)."""
    from dispo.commands.runs_cmd import print_results
    from dispo.evaluation.rescore import rescore_run

    run = rescore_run(run_dir, list(overrides or []))
    print_results(run)
