"""`dispo judge agree PATH... judge=NAME [tasks=[...]]`: a judge against reference labels."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(
    help="Judges: measure one against reference labels (`dispo judge agree`).",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.command("agree")
def agree(
    args: List[str] = typer.Argument(
        ..., help="RUN_DIR or FILE.jsonl (one or more), then judge=NAME judge.KEY=VALUE tasks=[...]"
    ),
    ref: str = typer.Option(
        "import", "--ref", help="Scorer whose labels are the reference (run dirs; files carry 'import')."
    ),
    out: Optional[Path] = typer.Option(None, "--out", help="Directory for agreement.json + agreement.md."),
    n_boot: int = typer.Option(2000, "--n-boot", min=100, help="Bootstrap resamples for every CI."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
) -> None:
    """Score responses that carry reference labels with a judge; kappa, confusion, paper metrics, CIs."""
    from dispo.core.errors import ConfigError
    from dispo.evaluation.agree import agree_paths, markdown

    paths = [a for a in args if "=" not in a]
    overrides = [a for a in args if "=" in a]
    if not paths:
        raise ConfigError("dispo judge agree: pass a results .jsonl or a run dir before the judge=... overrides")
    report, out_dir = agree_paths(paths, overrides, ref=ref, out_dir=out, n_boot=n_boot, seed=seed)
    typer.echo(markdown(report))
    typer.echo(f"wrote {out_dir / 'agreement.json'} and {out_dir / 'agreement.md'}")
