"""Time `make demo` as a new user runs it: a clean clone of HEAD, `make setup`, then `make demo`
with an empty dispo cache (so the demo's 0.5B teacher is fetched and every response generated).
Not part of `make bench` (minutes; run it with nothing else busy: 2 cores).

    .venv/bin/python bench/demo_timing.py          # clone HEAD into a temp dir, time it
    .venv/bin/python bench/demo_timing.py --keep   # keep the clone and its run dir

Writes bench/results/demo.json (or $DISPO_BENCH_RESULTS/demo.json): the commit, machine, seconds
for install and for `make demo` (and the run's per-stage seconds), what the student was trained
on, each arm's pass@1 and truncation, the verdicts, and what issue 17 asks of the demo's screen:
library-noise lines and numbers cut with "…" (both should be 0). The README quotes this file.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from ci_timing import finish, fresh_clone, installed_then  # noqa: E402

# what library noise looks like on a terminal: warnings, tqdm bars (rate or percent), trainer logs
NOISE = re.compile(r"Warning|warnings\.warn|\d+(\.\d+)?(it/s|s/it)|\d+%\||\{'loss': ")


def screen_report(text: str) -> dict:
    """What the demo's screen shows that it should not: noise lines and table cells cut with
    an ellipsis (a cut run-dir path in a rule is not a number, so only table rows count)."""
    lines = text.splitlines()
    cut = [ln for ln in lines if "…" in ln and ln.lstrip().startswith("│")]
    noise = [ln for ln in lines if NOISE.search(ln)]
    return {
        "lines": len(lines),
        "widest": max((len(ln) for ln in lines), default=0),
        "cut_cells": len(cut),
        "noise_lines": len(noise),
        "noise_examples": noise[:3],
    }


def run_summary(run_dir: Path) -> dict:
    """The demo run's facts from its files: stage seconds, training data, arms, verdicts."""
    manifest = json.loads((run_dir / "manifest.json").read_text())
    results = json.loads((run_dir / "results.json").read_text())
    falsified = json.loads((run_dir / "falsify" / "falsify.json").read_text())
    data = json.loads((run_dir / "data_report.json").read_text())
    metrics = results.get("metrics") or {}
    arms = {
        arm: {m: (metrics[arm].get(m) or {}).get("value") for m in ("pass@1", "truncation_rate")}
        for arm in metrics
        if isinstance(metrics[arm], dict)
    }
    claims = [
        {"id": c.get("id"), "delta": (c.get("claimed") or {}).get("delta"), "verdict": c.get("verdict")}
        for c in falsified.get("claims") or []
        if (c.get("claimed") or {}).get("delta")
    ]
    return {
        "stage_seconds": {k: v.get("seconds") for k, v in manifest.get("stages", {}).items() if v.get("seconds")},
        "training_data": {k: data.get(k) for k in ("n_sft", "distilled_sft", "n_pairs", "distilled_pairs")}
        | {"reference": (data.get("counts") or {}).get("reference", 0)},
        "arms": arms,
        "nonzero_claims": claims,
        "verdicts": falsified.get("summary"),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", action="store_true", help="keep the clone, its cache and its run")
    args = ap.parse_args(argv)
    commit, base, clone, env = fresh_clone("dispo-demo-")
    # a new user's empty model and response cache; pip's download cache is this machine's
    env.update(DISPO_CACHE=str(base / "cache"), COLUMNS="80")
    load = os.getloadavg()
    setup_s, (demo_s, pd) = installed_then(["make", "demo"], clone, env)
    screen = pd.stdout + pd.stderr
    (base / "demo_screen.txt").write_text(screen)
    runs = sorted((clone / "runs").glob("*_train-arc1_*"))
    result = {
        "title": "make demo on a clean clone: make setup, then make demo (empty dispo cache)",
        "commit": commit,
        "machine": {"cores": os.cpu_count(), "loadavg_before": [round(x, 2) for x in load]},
        "settings": {"pip_cache": "as this machine has it", "dispo_cache": "empty", "columns": 80},
        "seconds": {"setup": setup_s, "demo": demo_s},
        "rc": pd.returncode,
        "screen": screen_report(screen),
        **(run_summary(runs[-1]) if pd.returncode == 0 and runs else {"error": screen.strip().splitlines()[-3:]}),
    }
    return finish(result, "demo", ("seconds", "rc", "screen"), base, keep=args.keep)


if __name__ == "__main__":
    main()
