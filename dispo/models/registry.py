"""The model registry: one YAML per model under dispo/conf/model/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dispo.core.errors import ConfigError
from dispo.core.paths import conf_dir


def model_names() -> list[str]:
    return sorted(p.stem for p in (conf_dir() / "model").glob("*.yaml"))


def get_spec(name: str) -> dict[str, Any]:
    import yaml

    path = conf_dir() / "model" / f"{name}.yaml"
    if not path.exists():
        raise ConfigError(
            f"unknown model '{name}'; valid choices: {', '.join(model_names())} (or model.path=DIR|FILE.gguf)"
        )
    return yaml.safe_load(path.read_text())


def offline_status(spec: dict[str, Any]) -> str:
    """Whether the model can be loaded right now without network."""
    from dispo.models import embedded

    src = spec.get("source")
    if src == "packaged":
        return "yes" if embedded.is_ready(spec.get("package_model", spec["name"])) else "fetch (PyPI)"
    if src == "tiny":
        return "yes" if embedded.is_ready("smollm2-135m") else "fetch (PyPI)"
    if spec.get("path"):
        return "yes" if Path(spec["path"]).exists() else "missing"
    return "yes (HF cache)" if _in_hf_cache(spec.get("hf_id", "")) else "hub only"


def _in_hf_cache(hub_id: str) -> bool:
    import os

    home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
    return (home / "hub" / f"models--{hub_id.replace('/', '--')}").exists()
