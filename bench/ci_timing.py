"""Time CI as CI runs it: a clean clone of HEAD, `make setup`, then `bash .ci/run` (the README's
test command), on this machine. Not part of `make bench` (it takes as long as CI: ~15 min).

    .venv/bin/python bench/ci_timing.py            # clone HEAD into a temp dir, time it
    .venv/bin/python bench/ci_timing.py --keep     # keep the clone (its path is printed)

Writes bench/results/ci.json (or $DISPO_BENCH_RESULTS/ci.json): the commit, machine, load average
before the run, seconds for install and for the tests, pytest's summary line, its 15 slowest
tests, and the arc smoke tests' times under "smoke" (the numbers the README quotes). Run it with
nothing else busy: two torch processes on 2 cores double every number.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from bench_vs_lm_eval import out_path  # noqa: E402


def _timed(cmd: list[str], cwd: Path, env: dict) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    return round(time.perf_counter() - t0, 1), p


def _slowest(text: str) -> list[dict]:
    rows = []
    for m in re.finditer(r"^\s*([\d.]+)s (call|setup|teardown)\s+(\S+)$", text, re.M):
        rows.append({"seconds": float(m.group(1)), "phase": m.group(2), "test": m.group(3)})
    return rows


def _is_smoke(row: dict) -> bool:
    return row["phase"] == "call" and row["test"].startswith("tests/arcs/test_smoke_arcs.py::")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", action="store_true", help="keep the clone")
    args = ap.parse_args(argv)
    commit, base, clone, env = fresh_clone("dispo-ci-")
    env.update(CI="true", PYTEST_ADDOPTS="--durations=15")
    load = os.getloadavg()
    setup_s, (test_s, pt) = installed_then(["bash", ".ci/run"], clone, env)
    out = pt.stdout + pt.stderr
    summary = [ln for ln in out.splitlines() if re.search(r"\d+ (passed|failed)", ln)]
    result = {
        "title": "CI on a clean clone: make setup, then bash .ci/run (make test)",
        "commit": commit,
        "machine": {"cores": os.cpu_count(), "loadavg_before": [round(x, 2) for x in load]},
        "settings": {"pip_cache": "as this machine has it", "command": ".ci/run -> make test (-m 'not full')"},
        "seconds": {"setup": setup_s, "tests": test_s, "total": round(setup_s + test_s, 1)},
        "rc": pt.returncode,
        "pytest_summary": summary[-1].strip("= ") if summary else None,
        "slowest": _slowest(out),
        # the README's smoke-run timings: each arc's CI smoke test (a real subprocess run on the
        # embedded model, empty response cache), pytest call seconds
        "smoke": {r["test"].split("::", 1)[1]: r["seconds"] for r in _slowest(out) if _is_smoke(r)},
    }
    return finish(result, "ci", ("seconds", "rc", "pytest_summary"), base, keep=args.keep)


def installed_then(cmd: list[str], clone: Path, env: dict) -> tuple[float, tuple[float, subprocess.CompletedProcess]]:
    """`make setup` in the clone (a failure ends the script with its last line), then `cmd`
    timed: (setup seconds, (cmd seconds, cmd's process))."""
    setup_s, ps = _timed(["make", "setup"], clone, env)
    if ps.returncode != 0:
        raise SystemExit(f"make setup failed in {clone}: {ps.stderr.strip().splitlines()[-1:]}")
    return setup_s, _timed(cmd, clone, env)


def fresh_clone(prefix: str) -> tuple[str, Path, Path, dict]:
    """A clean clone of HEAD as a new user gets it: (commit, temp dir, clone, environment
    without dispo's or a venv's variables). ../shared is linked beside it, as on CI."""
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    base = Path(tempfile.mkdtemp(prefix=prefix))
    clone = base / "dispo"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    shared = REPO.parent / "shared"
    if shared.is_dir():  # the tests read the paper's release from ../shared, as on CI
        (base / "shared").symlink_to(shared)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISPO_", "VIRTUAL_ENV", "PYTHONPATH"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return commit, base, clone, env


def finish(result: dict, name: str, shown: tuple[str, ...], base: Path, keep: bool) -> dict:
    """Write bench/results/<name>.json, print its `shown` keys, keep or remove the clone."""
    path = out_path(name)
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({k: result[k] for k in shown}, ensure_ascii=False))
    if keep:
        print(f"clone kept in {base}")
    else:
        shutil.rmtree(base, ignore_errors=True)
    return result


if __name__ == "__main__":
    main()
