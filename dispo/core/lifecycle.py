"""Shared run lifecycle for commands: compose config, create or resume the run, mark the end."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from dispo.core.errors import RunDirError
from dispo.core.runs import Run, find_resumable


def open_or_create(command: str, cfg: dict, overrides: list[str], resume: bool, run_dir: Path | None = None) -> Run:
    """`--resume` continues the newest unfinished run with the identical config (or `run_dir`)."""
    root = cfg.get("output_dir") or "runs"
    if run_dir is not None:
        run = Run.open(run_dir)
        if run.manifest.get("config_hash") and run.config != cfg:
            raise RunDirError(f"{run_dir} was made with a different config; drop --run-dir or use the same overrides")
        run.resume()
        return run
    if resume:
        found = find_resumable(command, cfg, root)
        if found is not None:
            run = Run.open(found)
            run.resume()
            return run
    model = (cfg.get("model") or {}).get("name") or "model"
    return Run.create(command, cfg, model, root=root, overrides=overrides)


@contextmanager
def lifecycle(run: Run) -> Iterator[Run]:
    """Mark the run completed, or failed/interrupted with the reason, whatever happens."""
    try:
        yield run
    except KeyboardInterrupt:
        run.finish("interrupted", "KeyboardInterrupt")
        raise
    except BaseException as e:
        run.finish("failed", f"{type(e).__name__}: {e}"[:500])
        raise
    else:
        run.finish("completed")
