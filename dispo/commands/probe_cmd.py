"""`dispo probe TRAIN.npz TEST.npz`"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def probe(
    train: Path = typer.Argument(..., help=".npz with X (n, d) and y (n,) to fit on"),
    test: Path = typer.Argument(..., help=".npz with X and y to score (e.g. the fresh split)"),
    C: Optional[List[float]] = typer.Option(
        None, "--C", help="Inverse regularisation; repeat for a grid (default 1.0 and 0.1)."
    ),
    cv: int = typer.Option(5, "--cv", help="Folds for CV on TRAIN."),
    json_out: bool = typer.Option(False, "--json", help="Emit JSON on stdout."),
) -> None:
    """Fit the paper's h_last probe on TRAIN, score TEST: AUC, balanced asymmetry, failure mode."""
    from dispo.probes.command import probe_command

    probe_command(train, test, C, cv, json_out)
