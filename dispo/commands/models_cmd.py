"""`dispo models`: the registry."""

from __future__ import annotations


def models() -> None:
    """List registered models: name, family, params, source, and whether usable offline now."""
    from rich.console import Console
    from rich.table import Table

    from dispo.models.registry import get_spec, model_names, offline_status

    t = Table(title="dispo models (dispo/conf/model/*.yaml; any dir, .gguf or hub id via model.path= / model.hf_id=)")
    for c in ("name", "family", "params", "source", "hf id", "offline now"):
        t.add_column(c)
    for n in model_names():
        s = get_spec(n)
        t.add_row(
            n,
            str(s.get("family", "")),
            str(s.get("params", "")),
            str(s.get("source", "")),
            str(s.get("hf_id") or "-"),
            offline_status(s),
        )
    Console().print(t)
