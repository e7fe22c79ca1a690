"""Helpers for the reliability suite (crash safety, concurrency, hostile input).

Every test here runs with its own DISPO_CACHE (the user's cache is never touched); the tiny
models need the embedded SmolLM2 tokenizer, so `~/.cache/dispo/models` is symlinked in.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

from tests.helpers.cli import cli  # noqa: F401  (the reliability tests import it from here)

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable
TMP_NAME = re.compile(r"^\..+\.tmp$")  # atomic-write temp files and dirs: allowed to be partial


def _user_models_dir() -> Path:
    base = os.environ.get("DISPO_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "dispo"
    )
    return Path(base) / "models"


def make_cache(root: Path) -> Path:
    """A fresh DISPO_CACHE dir whose models/ points at the user's model cache."""
    root.mkdir(parents=True, exist_ok=True)
    models = _user_models_dir()
    if not (models / "smollm2-135m").exists():
        pytest.skip(f"embedded model not in {models}; run `dispo fetch` (make setup) first")
    link = root / "models"
    if not link.exists():
        link.symlink_to(models, target_is_directory=True)
    return root


def env_for(cache: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPO_")}
    env.update(
        DISPO_CACHE=str(cache), TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", **extra
    )
    return env


def dispo_cmd(*args: str) -> list[str]:
    return [PY, "-m", "dispo.cli", *args]


def run_dispo(args: list[str], cwd: Path, env: dict, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(dispo_cmd(*args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


# --- "no file is ever half-written" ------------------------------------------------------


def check_file(p: Path) -> str | None:
    """None if `p` is whole (parses as its type), else a description of what is wrong.
    A file that vanishes between listing and reading (replaced/deleted) is not an error."""
    if TMP_NAME.match(p.name):
        return None
    try:
        if p.suffix == ".json":
            json.loads(p.read_bytes().decode("utf-8"))
        elif p.suffix == ".jsonl":
            text = p.read_bytes().decode("utf-8")
            if text and not text.endswith("\n"):
                return f"{p}: last line not terminated (truncated write?)"
            for line in text.split("\n"):
                if line.strip():
                    json.loads(line)
        elif p.suffix in (".yaml", ".yml"):
            import yaml

            if not isinstance(yaml.safe_load(p.read_bytes().decode("utf-8")), dict):
                return f"{p}: not a mapping"
        elif p.suffix == ".npz":
            import numpy as np

            with np.load(p, allow_pickle=False) as z:
                for k in z.files:
                    z[k]
    except FileNotFoundError:
        return None
    except Exception as e:  # noqa: BLE001 - any parse failure is the finding
        return f"{p}: {type(e).__name__}: {str(e)[:120]}"
    return None


def check_tree(*roots: Path) -> list[str]:
    bad = []
    for root in roots:
        if not root.exists():
            continue
        # os.walk ignores dirs that vanish mid-walk (checkpoints renamed into place, pruned)
        for d, dirs, files in os.walk(root, onerror=lambda e: None):
            # temp dirs (staged trainer checkpoint, adapter being saved) may be partial
            dirs[:] = [x for x in dirs if not TMP_NAME.match(x)]
            for name in files:
                p = Path(d) / name
                try:
                    if p.is_file() and not p.is_symlink():
                        err = check_file(p)
                        if err:
                            bad.append(err)
                except OSError:
                    continue
    return bad


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root (except the lock) -> its bytes: 'nothing on disk changed'."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".lock"
    }


def watch(
    procs: subprocess.Popen | list[subprocess.Popen],
    roots: list[Path],
    kill_when: Callable[[], bool] | None = None,
    interval: float = 0.02,
    timeout: float = 240,
) -> dict:
    """Poll `roots` while the process(es) run, parsing every file each round; SIGKILL the
    (first) process the first time `kill_when()` is true.
    Returns {"killed", "rc" (list if several), "bad", "polls", "stderr"}."""
    many = isinstance(procs, list)
    procs = procs if many else [procs]
    bad: list[str] = []
    killed = False
    polls = 0
    t_end = time.monotonic() + timeout
    while any(p.poll() is None for p in procs):
        bad += check_tree(*roots)
        polls += 1
        if kill_when is not None and not killed and kill_when():
            os.kill(procs[0].pid, signal.SIGKILL)
            killed = True
        if time.monotonic() > t_end:
            for p in procs:
                p.kill()
            raise AssertionError("dispo process timed out")
        time.sleep(interval)
    bad += check_tree(*roots)
    errs = [p.stderr.read() if p.stderr else "" for p in procs]
    rcs = [p.returncode for p in procs]
    return {
        "killed": killed,
        "rc": rcs if many else rcs[0],
        "bad": bad,
        "polls": polls,
        "stderr": errs if many else errs[0],
    }


def popen_dispo(args: list[str], cwd: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        dispo_cmd(*args), cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def comparable_samples(run_dir: Path) -> dict[str, list[dict]]:
    """samples/<arm>.jsonl with nothing run-specific dropped: every field must match."""
    out = {}
    for p in sorted((run_dir / "samples").glob("*.jsonl")):
        out[p.stem] = [json.loads(line) for line in p.read_text().split("\n") if line.strip()]
    return out


def comparable_results(run_dir: Path) -> dict:
    res = json.loads((run_dir / "results.json").read_text())
    res.pop("run", None)  # the run id differs between runs by construction
    return res


def one_error_line(stderr: str) -> str:
    """Assert stderr is exactly one non-empty line starting `error:`, with no traceback."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{stderr}"
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]
