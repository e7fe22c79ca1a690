"""`dispo export RUN --format lm-eval|csv|parquet`: per-item results for other tools."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def export(
    run_dir: Path = typer.Argument(..., help="Run directory to export."),
    fmt: str = typer.Option(
        "csv", "--format", help="lm-eval (samples_*.jsonl + results_*.json per arm) | csv | parquet"
    ),
    out: Optional[Path] = typer.Option(
        None, "--out", help="Output file (csv/parquet) or directory (lm-eval); default RUN/export/."
    ),
    arm: Optional[List[str]] = typer.Option(None, "--arm", help="Export only these arms (repeatable)."),
) -> None:
    """Write a run's samples and scores as csv/parquet (pandas) or as lm-eval sample logs."""
    from dispo.reporting.export import export_run

    for p in export_run(run_dir, fmt, out=out, arms=arm or None):
        typer.echo(str(p))
