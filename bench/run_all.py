"""Run every bench/bench_*.py, then summarise bench/results/*.json into bench/results.md.

Convention for a bench script: run with no arguments it does its small default, and writes
`$DISPO_BENCH_RESULTS/<name>.json` (default bench/results/), a JSON object with optional
"title", "machine", "settings", "rows" (list of flat dicts -> a table) and "notes". Anything
else in the JSON is listed as flattened numbers.

    .venv/bin/python bench/run_all.py                 # run all, then summarise
    .venv/bin/python bench/run_all.py --only sft_vs_trl vs_lm_eval
    .venv/bin/python bench/run_all.py --summarise     # only rebuild results.md
    .venv/bin/python bench/run_all.py --full          # pass --full to the benches that take it

vLLM: recorded as "skipped: no CUDA device" where torch sees no GPU (vLLM needs one).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def bench_name(script: Path) -> str:
    return script.stem[len("bench_"):] if script.stem.startswith("bench_") else script.stem


def run_one(script: Path, results: Path, timeout: int, full: bool) -> dict:
    env = dict(os.environ, DISPO_BENCH_RESULTS=str(results), TOKENIZERS_PARALLELISM="false")
    cmd = [sys.executable, str(script)]
    if full and "--full" in script.read_text(encoding="utf-8", errors="replace"):
        cmd.append("--full")
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=HERE.parent, env=env, capture_output=True, text=True, timeout=timeout)
        text = (p.stdout if p.returncode == 0 else p.stderr) or p.stdout or p.stderr or ""
        rc, tail = p.returncode, text.strip().splitlines()[-1:]
    except subprocess.TimeoutExpired:
        rc, tail = 124, [f"timed out after {timeout} s"]
    return {"script": script.name, "rc": rc, "seconds": round(time.perf_counter() - t0, 1),
            "last_line": tail[0][:300] if tail else ""}


def vllm_status() -> dict:
    try:
        import torch

        cuda = torch.cuda.is_available()
    except ImportError:
        cuda = False
    if not cuda:
        return {"name": "vllm", "title": "vLLM engine", "skipped": "skipped: no CUDA device"}
    try:
        import vllm  # noqa: F401
    except ImportError:
        return {"name": "vllm", "title": "vLLM engine", "skipped": "skipped: vllm not installed (pip install 'dispo[vllm]')"}
    return {"name": "vllm", "title": "vLLM engine", "skipped": "not benchmarked by run_all (no vLLM bench script)"}


def machine() -> dict:
    import platform

    info = {"platform": platform.platform(), "python": sys.version.split()[0], "cores": os.cpu_count()}
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                info["cpu"] = ln.split(":", 1)[1].strip()
                break
        for ln in Path("/proc/meminfo").read_text().splitlines():
            if ln.startswith("MemTotal"):
                info["memory_gib"] = round(int(ln.split()[1]) / 2**20, 1)
    except OSError:
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    except ImportError:
        pass
    return info


def _flat(d, prefix=""):
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            yield from _flat(v, key + ".")
        elif isinstance(v, (int, float, str, bool)) or v is None:
            yield key, v


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v).replace("|", "\\|").replace("\n", " ")


def table(rows: list[dict]) -> list[str]:
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r if c not in cols]
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    out += ["| " + " | ".join(_cell(r.get(c)) for c in cols) + " |" for r in rows]
    return out


def summarise(results: Path, runs: list[dict] | None = None) -> Path:
    lines = ["# dispo benchmarks", "",
             f"Generated {_dt.datetime.now().astimezone().isoformat(timespec='seconds')} by `bench/run_all.py`.", "",
             "## Machine", ""]
    lines += [f"- {k}: {v}" for k, v in machine().items()]
    lines.append("")
    if runs:
        lines += ["## Scripts run", ""] + table(runs) + [""]
    files = sorted(results.glob("*.json"))
    for f in files:
        try:
            r = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError) as e:
            lines += [f"## {f.stem}", "", f"_unreadable: {type(e).__name__}_", ""]
            continue
        if not isinstance(r, dict):
            continue
        lines += [f"## {r.get('title') or f.stem}", "", f"File: `{f.relative_to(results.parent) if results.parent in f.parents else f}`", ""]
        if r.get("skipped"):
            lines += [f"**{r['skipped']}**", ""]
        if r.get("machine"):
            lines += ["Machine: " + ", ".join(f"{k}={v}" for k, v in r["machine"].items()), ""]
        if r.get("settings"):
            lines += ["Settings: " + ", ".join(f"{k}={v}" for k, v in r["settings"].items()), ""]
        if isinstance(r.get("rows"), list) and r["rows"]:
            lines += table([x for x in r["rows"] if isinstance(x, dict)]) + [""]
        rest = {k: v for k, v in r.items() if k not in ("name", "title", "machine", "settings", "rows", "notes", "skipped")}
        flat = list(_flat(rest))
        if flat:
            lines += ["<details><summary>all numbers</summary>", ""] + table([{"key": k, "value": v} for k, v in flat]) + ["", "</details>", ""]
        if r.get("notes"):
            lines += [f"Notes: {r['notes']}", ""]
    out = results.parent / "results.md"
    out.write_text("\n".join(lines) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="bench names (bench_<name>.py) to run")
    ap.add_argument("--summarise", action="store_true", help="do not run; rebuild results.md")
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--timeout", type=int, default=3600, help="per-script seconds")
    ap.add_argument("--results", type=Path, default=RESULTS)
    a = ap.parse_args(argv)
    a.results.mkdir(parents=True, exist_ok=True)
    runs = []
    if not a.summarise:
        scripts = sorted(HERE.glob("bench_*.py"))
        if a.only:
            unknown = set(a.only) - {bench_name(s) for s in scripts}
            if unknown:
                print(f"error: no bench named {', '.join(sorted(unknown))}; have "
                      f"{', '.join(bench_name(s) for s in scripts)}", file=sys.stderr)
                return 2
            scripts = [s for s in scripts if bench_name(s) in a.only]
        for s in scripts:
            print(f"running {s.name} ...", flush=True)
            r = run_one(s, a.results, a.timeout, a.full)
            print(f"  rc={r['rc']} in {r['seconds']} s: {r['last_line']}", flush=True)
            runs.append(r)
        (a.results / "vllm.json").write_text(json.dumps(vllm_status(), indent=2) + "\n")
    out = summarise(a.results, runs)
    print(f"wrote {out}")
    return 1 if any(r["rc"] != 0 for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
