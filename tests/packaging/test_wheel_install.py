"""A wheel built from the source tree carries dispo/conf and runs `dispo eval` outside the repo.

The wheel is installed with --no-deps into an empty target dir; the interpreter runs with -S
(no site dirs, so no .pth file can pull in an editable install) and gets the dependencies
from this environment's site-packages through PYTHONPATH, after the target dir.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.helpers.relhelp import make_cache

REPO = Path(__file__).resolve().parents[2]


def _build_wheel(tmp: Path) -> Path:
    src = tmp / "src"
    shutil.copytree(REPO / "dispo", src / "dispo", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    out = tmp / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(src)],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    (whl,) = out.glob("dispo-*.whl")
    return whl


@pytest.mark.slow
def test_wheel_installs_and_runs_eval_outside_the_repo(tmp_path):
    cache = make_cache(tmp_path / "cache")
    whl = _build_wheel(tmp_path)
    names = set(zipfile.ZipFile(whl).namelist())
    assert "dispo/conf/config.yaml" in names and "dispo/conf/model/smollm2-135m.yaml" in names, sorted(
        n for n in names if "conf" in n
    )[:20]

    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(target), str(whl)],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    work = tmp_path / "elsewhere"
    work.mkdir()
    deps = sysconfig.get_paths()["purelib"]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(target), deps]),
        "DISPO_CACHE": str(cache),
        "DISPO_RUNS": str(work / "runs"),
        "TOKENIZERS_PARALLELISM": "false",
    }
    env.pop("DISPO_CONF", None)
    py = [sys.executable, "-S"]

    where = subprocess.run(
        [*py, "-c", "import dispo; print(dispo.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert Path(where.stdout.strip()).is_relative_to(target), where.stdout + where.stderr

    r = subprocess.run(
        [
            *py,
            "-m",
            "dispo.cli",
            "eval",
            "model=smollm2-135m",
            "domain=chef",
            "judge=lexical",
            "limit=2",
            "decoding.max_new_tokens=8",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    (run,) = (work / "runs").glob("*_eval_*")
    results = json.loads((run / "results.json").read_text())
    assert "base" in results["metrics"]
    lines = (run / "samples" / "base.jsonl").read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(x)["n_tokens"] <= 8 for x in lines)
