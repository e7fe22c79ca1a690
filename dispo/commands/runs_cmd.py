"""`dispo runs` and `dispo show RUN`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer


def _headline(results: dict) -> str:
    from dispo.reporting.report import fmt, headline_metrics

    metrics = results.get("metrics") or {}
    if not metrics:
        return ""
    base = metrics.get("base") or next(iter(metrics.values()))
    keys = headline_metrics({"x": base})[:3]
    return ", ".join(f"{k}={fmt(base[k].get('value'), 3)}" for k in keys if isinstance(base.get(k), dict))


def runs(
    root: Optional[Path] = typer.Option(None, "--root", help="Runs directory (default: $DISPO_RUNS, else runs)."),
) -> None:
    """Table of runs: id, command, model, status, headline metrics."""
    from rich.console import Console
    from rich.table import Table

    from dispo.core.paths import runs_root
    from dispo.core.runs import list_runs, status_of

    root = root if root is not None else runs_root()
    found = list_runs(root)
    if not found:
        Console().print(f"no runs in {root} (`dispo eval` and `dispo train` make them; --root or $DISPO_RUNS)")
        return
    t = Table(title=f"runs in {root}")
    for c in ("id", "command", "model", "status", "headline (base arm)"):
        t.add_column(c, overflow="fold")
    for p in found:
        try:
            m = json.loads((p / "manifest.json").read_text())
            res = json.loads((p / "results.json").read_text()) if (p / "results.json").exists() else {}
            t.add_row(p.name, m.get("command", "?"), m.get("model", "?"), status_of(p, m), _headline(res))
        except (OSError, json.JSONDecodeError):
            t.add_row(p.name, "?", "?", "corrupt", "")
    Console().print(t)


def print_results(run) -> None:
    """Results (metrics x arms) and claims of a run, fitted to the terminal (reporting.tables)."""
    from dispo.reporting.tables import print_results as render

    render(run.results or {}, run_dir=run.dir)


def show(run_dir: Path = typer.Argument(..., help="A run directory, e.g. runs/<id>")) -> None:
    """Config, manifest and results of one run."""
    import yaml
    from rich.console import Console
    from rich.panel import Panel
    from rich.syntax import Syntax

    from dispo.core.runs import Run, status_of

    run = Run.open(run_dir)
    con = Console()
    m = run.manifest
    con.print(Panel(Syntax(yaml.safe_dump(run.config, sort_keys=False), "yaml"), title="config.yaml"))
    brief = {
        k: m.get(k) for k in ("command", "model", "status", "started", "ended", "git_commit", "seed", "device", "error")
    }
    brief["status"] = status_of(run.dir, m)
    brief["stages"] = {k: v.get("status") for k, v in (m.get("stages") or {}).items()}
    brief["packages"] = m.get("packages")
    con.print(Panel(Syntax(json.dumps(brief, indent=2), "json"), title="manifest.json"))
    con.print(f"arms: {', '.join(run.arms()) or 'none'}")
    print_results(run)
