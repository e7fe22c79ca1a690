"""`dispo config COMMAND [overrides]`: the composed config a command would run with, as YAML
(like Hydra's `--cfg job`), with the protocol's applied settings under protocol.applied."""

from __future__ import annotations

from typing import List, Optional

import typer

# what each command composes on top of conf/config.yaml (mirrors the commands themselves)
COMMAND_BASES = {"eval": {}, "train": None, "score": {}}


def config(
    command: str = typer.Argument(..., help="eval | train ARC (arc1, arc2, arc3) | score"),
    overrides: Optional[List[str]] = typer.Argument(None, help="Hydra overrides, e.g. model=qwen3-0.6b protocol=paper"),
) -> None:
    """Print the composed config (after protocol rules and arc presets) as YAML."""
    from omegaconf import OmegaConf

    from dispo.core.config import compose_config
    from dispo.core.errors import ConfigError

    overrides = list(overrides or [])
    if command not in COMMAND_BASES:
        raise ConfigError(f"unknown command '{command}' for dispo config; valid: eval, train ARC, score")
    base: dict = {}
    if command == "train":
        if not overrides or "=" in overrides[0]:
            raise ConfigError("dispo config train needs the arc first, e.g. dispo config train arc1 model=qwen3-0.6b")
        arc = overrides.pop(0)
        from dispo.core.config import group_options

        if arc not in group_options("arc") or arc == "none":
            raise ConfigError(
                f"unknown arc '{arc}'; valid: {', '.join(a for a in group_options('arc') if a != 'none')}"
            )
        base = {"arc": arc}
    cfg = compose_config(overrides, base=base)
    typer.echo(OmegaConf.to_yaml(OmegaConf.create(cfg)), nl=False)
