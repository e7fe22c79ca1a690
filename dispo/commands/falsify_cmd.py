"""`dispo falsify RUN`"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def falsify(
    run_dir: Path = typer.Argument(..., help="A run directory (dispo-made or imported)."),
    overrides: Optional[List[str]] = typer.Argument(
        None, help="falsify.* overrides, e.g. falsify.seeds=[0,1,2] falsify.second_judge=hf"
    ),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 when any claim is FALSIFIED (for CI gates)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Re-check every claimed gain under perturbed decoding and scoring; a verdict per claim."""
    from dispo.falsify.render import print_verdicts
    from dispo.falsify.run import falsify_run

    result = falsify_run(run_dir, list(overrides or []), progress=not quiet)
    print_verdicts(result, run_dir=run_dir)
    if strict and any(c["verdict"] == "FALSIFIED" for c in result["claims"]):
        raise typer.Exit(1)
