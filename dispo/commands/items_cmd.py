"""`dispo items domain=D [split=S] [limit=N] [--json]`: the items a run would use."""

from __future__ import annotations

import json
from typing import List, Optional

import typer


def item_record(it) -> dict:
    """id, prompt, and what the item is scored against (checklist or tests), with its fact id."""
    g = it.gold or {}
    rec = {
        "id": it.id,
        "split": it.split,
        "prompt": it.prompt,
        "fact_id": g.get("fact_id") or (it.meta or {}).get("fact_id"),
    }
    if "checklist" in g:
        rec["checklist"] = list(g["checklist"])
        rec["certainty"] = g.get("certainty")
    if "test" in g:
        rec["tests"] = g["test"]
        rec["entry_point"] = g.get("entry_point")
    return rec


def items(
    overrides: Optional[List[str]] = typer.Argument(None, help="domain=chef split=fresh limit=5 (Hydra overrides)"),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line instead of a table."),
) -> None:
    """List the items a run would use: id, prompt, checklist or tests, fact id."""
    from dispo.core.config import compose_config
    from dispo.evaluation.eval_run import make_domain

    ov = []
    for o in overrides or []:
        # `split=` is the domain's split; a bare key is friendlier than domain.split=
        ov.append("domain." + o if o.startswith("split=") else o)
    cfg = compose_config(ov)
    domain = make_domain(cfg)
    rows = [item_record(it) for it in domain.items(cfg["domain"].get("split", "eval"), cfg.get("limit"))]
    if as_json:
        for r in rows:
            typer.echo(json.dumps(r, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"{cfg['domain']['name']} / {cfg['domain'].get('split', 'eval')}: {len(rows)} items")
    for c in ("id", "fact id", "prompt", "scored against"):
        t.add_column(c, overflow="fold")
    for r in rows:
        against = (
            f"{len(r['checklist'])} claims"
            if "checklist" in r
            else f"tests of {r.get('entry_point')}"
            if "tests" in r
            else "judge"
        )
        t.add_row(r["id"], r["fact_id"] or "-", r["prompt"][:160], against)
    Console().print(t)
