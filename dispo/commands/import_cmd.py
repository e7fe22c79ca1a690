"""`dispo import FILE.jsonl --arm NAME [--run RUN]`: external results become a run arm."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def import_(
    file: Path = typer.Argument(
        ..., help="JSONL: id, prompt, response (+ finish_reason, n_tokens, correct, coverage, verbal, passed, score)"
    ),
    arm: str = typer.Option(..., "--arm", help="Arm name for these results, e.g. baseline or dd."),
    run_dir: Optional[Path] = typer.Option(None, "--run", help="Add the arm to this run (default: a new import run)."),
    field_map: Optional[List[str]] = typer.Option(
        None, "--map", help="TARGET=SOURCE field mapping, e.g. --map passed=baseline_passed"
    ),
    baseline: Optional[str] = typer.Option(
        None, "--baseline", help="Arm the claims compare against (default: 'base'/'baseline' or the first arm)."
    ),
    domain: Optional[str] = typer.Option(
        None, "--domain", help="Domain the items come from (code, chef, mcas), for later re-scoring."
    ),
) -> None:
    """Import external per-item results as an arm; results.json gets every metric its fields allow."""
    from dispo.commands.runs_cmd import print_results
    from dispo.evaluation.import_run import import_arm

    run = import_arm(
        file, arm, run_dir=run_dir, field_map=_parse_map(field_map or []), baseline=baseline, domain=domain
    )
    print_results(run)


def _parse_map(pairs: list[str]) -> dict[str, str]:
    from dispo.core.errors import ConfigError

    out = {}
    for p in pairs:
        if "=" not in p:
            raise ConfigError(f"--map {p!r} must be TARGET=SOURCE, e.g. --map passed=baseline_passed")
        k, v = p.split("=", 1)
        out[k.strip()] = v.strip()
    return out
