"""`dispo pool domain=chef split=fresh_generated key=value ...`: a teacher writes a prompt pool."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def pool(
    overrides: Optional[List[str]] = typer.Argument(
        None,
        help="split=fresh_generated|train_generated pool.teacher.model=smollm2-135m pool.per_fact=6 (Hydra overrides)",
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue the newest unfinished pool run with the same config."
    ),
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Continue this run dir."),
) -> None:
    """Generate a teacher-written prompt pool (chef): scenarios on held-out facts, de-duplicated,
    each with a new checklist. A re-run with the same settings sends no teacher request."""
    from dispo.arcs.arc1.prompt_pool import build_pool, check_pool_config
    from dispo.core.config import compose_config
    from dispo.core.errors import ConfigError
    from dispo.core.lifecycle import lifecycle, open_or_create
    from dispo.domains.prompt_pool import pool_paths

    ov, split = [], None
    for o in overrides or []:
        if o.startswith("split="):  # the pool to write is a split of the domain, as in `dispo items`
            split = o.split("=", 1)[1]
            ov.append("domain." + o)
        else:
            ov.append(o)
    cfg = compose_config(ov)
    split = split or cfg["domain"].get("split")
    if split not in ("train_generated", "fresh_generated"):
        raise ConfigError(f"dispo pool writes split=fresh_generated or split=train_generated, got split={split}")
    check_pool_config(cfg, split)  # a bad setting is one line before any run dir exists
    run = open_or_create("pool", cfg, ov, resume, run_dir)
    with lifecycle(run):
        report = build_pool(cfg, split, run=run)
        run.write_json("pool_report.json", report.to_json())
    paths = pool_paths(cfg["domain"].get("pool_dir") or cfg["pool"]["dir"], split)
    typer.echo(
        f"{split}: {report.items} items from {report.facts} facts ({report.candidates} candidate scenarios; "
        f"teacher requests sent: {report.requests}) -> {paths['items']}"
    )
    for why, n in report.dropped.items():
        typer.echo(f"  dropped {n}: {why}")
    typer.echo(f"run: {run.dir}")
