"""A `dispo eval` re-run whose every response is cached loads no weights (issue 18): the real
CLI in a subprocess, the second time with torch and transformers made unimportable. It must
still finish, record model_loaded: false, and write the same samples and results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers.relhelp import REPO, env_for, make_cache

# Runs dispo's entry point where torch and transformers cannot be imported: no weights, no
# tokenizer, no torch model class can load (rendering comes from the prompt memo).
DRIVER = """
import sys

class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "transformers"):
            raise ImportError(f"blocked import: {name}")
        return None

sys.meta_path.insert(0, Blocked())
sys.argv = ["dispo", *sys.argv[1:]]
from dispo.cli import main
main()
"""


def _dispo(command: list[str], env, cwd, driver: Path | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(driver)] if driver else [sys.executable, "-m", "dispo.cli"]
    p = subprocess.run([*cmd, *command], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    return p


def _eval(args, env, cwd, driver: Path | None = None) -> tuple[subprocess.CompletedProcess, Path]:
    p = _dispo(["eval", *args], env, cwd, driver)
    line = next(ln for ln in p.stdout.splitlines() if ln.startswith("run dir: "))
    return p, Path(line.split(": ", 1)[1].strip())


def test_fully_cached_eval_rerun_loads_no_weights(tmp_path):
    cache = make_cache(tmp_path / "cache")
    env = env_for(cache, PYTHONPATH=str(REPO))
    args = [
        "model=smollm2-135m",
        "domain=chef",
        "limit=2",
        "decoding.max_new_tokens=16",
        f"output_dir={tmp_path / 'runs'}",
    ]
    _, first = _eval(args, env, tmp_path)
    stage1 = json.loads((first / "manifest.json").read_text())["stages"]["arm:base"]
    assert stage1["generated"] == 2 and stage1["model_loaded"] is True

    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    _, second = _eval(args, env, tmp_path, driver=driver)
    assert second != first
    stage2 = json.loads((second / "manifest.json").read_text())["stages"]["arm:base"]
    assert stage2["cached"] == 2 and stage2["generated"] == 0
    assert stage2["model_loaded"] is False
    assert stage2["model"] == stage1["model"]  # same fingerprint and model_type, unloaded
    # byte-identical samples; identical metrics
    assert (second / "samples" / "base.jsonl").read_bytes() == (first / "samples" / "base.jsonl").read_bytes()
    res1, res2 = (json.loads((d / "results.json").read_text()) for d in (first, second))
    assert res1["metrics"] == res2["metrics"] and res1["claims"] == res2["claims"]

    # work that only re-scores or aggregates stored samples needs no model either (issue 18):
    # another judge's scores beside the stored ones, then the cross-run report
    _dispo(["score", str(second), "judge=lexical"], env, tmp_path, driver=driver)
    rescored = [json.loads(ln) for ln in (second / "samples" / "base.jsonl").read_text().splitlines()]
    assert all(any(k.endswith(":lexical") for k in r["scores"]) for r in rescored)
    _dispo(["report", str(first), str(second), "--out", str(tmp_path / "report")], env, tmp_path, driver=driver)
    metrics_csv = (tmp_path / "report" / "metrics.csv").read_text()
    assert first.name in metrics_csv and second.name in metrics_csv
