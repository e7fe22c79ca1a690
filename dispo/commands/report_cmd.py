"""`dispo report RUN... [--out DIR]`"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def report(
    runs: List[Path] = typer.Argument(..., help="Run directories (or a sweep dir) to aggregate."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output dir (default runs/report_<time>)."),
) -> None:
    """Aggregate runs into the paper's tables (markdown + CSV) and figures (PNG)."""
    from dispo.reporting.crossrun import build_report

    path = build_report(runs, out)
    typer.echo(f"report: {path}")
