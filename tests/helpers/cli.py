"""Running dispo's command line in tests: in a subprocess (the real process boundary: exit
codes, stderr, environment) or in-process (fast; monkeypatches apply)."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path


def run_dispo(
    *args: str, env: dict | None = None, cwd: str | Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """`python -m dispo.cli ARGS` in a subprocess. env: the full environment (default: this one,
    with TOKENIZERS_PARALLELISM off)."""
    e = dict(os.environ if env is None else env)
    e.setdefault("TOKENIZERS_PARALLELISM", "false")
    return subprocess.run(
        [sys.executable, "-m", "dispo.cli", *args], cwd=cwd, env=e, capture_output=True, text=True, timeout=timeout
    )


def cli(*args: str) -> tuple[int, str, str]:
    """Run dispo's real entry point (dispo.cli.main) in-process: (exit code, stdout, stderr)."""
    from dispo.cli import main

    out, err = io.StringIO(), io.StringIO()
    old = sys.argv
    sys.argv = ["dispo", *args]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = old
    return code, out.getvalue(), err.getvalue()
