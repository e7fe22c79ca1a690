"""`dispo cache info` and `dispo cache prune --older-than 30d`: the response cache's size and pruning."""

from __future__ import annotations

import typer

app = typer.Typer(help="Response cache: size report and pruning.", no_args_is_help=True)


def _root():
    from dispo.generate.cache import ResponseCache

    return ResponseCache().root


@app.command("info")
def info(json_out: bool = typer.Option(False, "--json", help="Print the report as JSON.")) -> None:
    """Entries, size, oldest/newest entry, and the same per model (fingerprint)."""
    from dispo.core import atomic
    from dispo.generate.cache_admin import cache_info, human_bytes

    rep = cache_info(_root()).to_json()
    if json_out:
        typer.echo(atomic.dumps(rep))
        return
    typer.echo(
        f"response cache {rep['root']}: {rep['entries']} entries, {human_bytes(rep['bytes'])}, "
        f"oldest {rep['oldest'] or '-'}, newest {rep['newest'] or '-'}"
        + (f", {rep['invalid']} unreadable (served as misses)" if rep["invalid"] else "")
        + (f", {rep['temp_files']} temp files" if rep["temp_files"] else "")
    )
    for label, m in rep["models"].items():
        typer.echo(
            f"  {label}: {m['entries']} entries, {human_bytes(m['bytes'])}, oldest {m['oldest']}, newest {m['newest']}"
        )


@app.command("prune")
def prune(
    older_than: str = typer.Option(..., "--older-than", help="Age, e.g. 30d, 12h, 90m (units s m h d w)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would be removed; remove nothing."),
) -> None:
    """Remove cached responses (and memoised rendered prompts) written longer ago than
    --older-than (safe while jobs run)."""
    from dispo.generate.cache_admin import human_bytes, parse_duration
    from dispo.generate.cache_admin import prune as do_prune
    from dispo.models.embedded import cache_root

    seconds = parse_duration(older_than)
    verb = "would remove" if dry_run else "removed"
    # the prompt memo has the response cache's layout and write discipline, so the same prune
    # is safe on it; a pruned prompt is rendered again (the tokenizer loads) the next time
    for label, root in (("", _root()), ("prompt memo: ", cache_root() / "prompts")):
        r = do_prune(root, seconds, dry_run=dry_run)
        typer.echo(
            f"{label}{verb} {r.removed} entries ({human_bytes(r.removed_bytes)}) older than {older_than}, "
            f"kept {r.kept}"
            + (f", {r.temp_removed} stale temp files" if r.temp_removed else "")
            + (f", {r.raced} rewritten meanwhile (kept)" if r.raced else "")
        )
