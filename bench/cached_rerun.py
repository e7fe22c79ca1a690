"""A fully cached `dispo eval` re-run vs the first run (issue 18: >= 5x faster, no weights).

Runs `dispo eval model=smollm2-135m domain=code limit=6` as a subprocess three times in a fresh
DISPO_CACHE holding a copy of the model cache (no responses, no prompt memo, no memoised
fingerprints): the first run generates everything; the re-run serves every response from the
cache (and every rendered prompt from the prompt memo), so it loads no weights and imports
neither torch nor transformers; a third run with the prompt memo removed shows what lazy
weights alone give (the tokenizer, hence transformers and torch, is loaded). Times are wall
seconds of the whole process. Checks: the re-run generated nothing, recorded
model_loaded: false, and wrote the same prompts, outputs and scores values as the first run.

    .venv/bin/python bench/cached_rerun.py [--limit 6] [--repeats 3]

Writes bench/results/cached_rerun.json (or $DISPO_BENCH_RESULTS/...).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from bench_vs_lm_eval import _local_dir, machine, out_path  # noqa: E402


def run_eval(args: list[str], env: dict) -> tuple[float, Path]:
    t0 = time.perf_counter()
    p = subprocess.run(
        [sys.executable, "-m", "dispo.cli", "eval", *args], cwd=REPO, env=env, capture_output=True, text=True
    )
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"dispo eval failed ({p.returncode}): {p.stderr[-2000:]}")
    line = next(ln for ln in p.stdout.splitlines() if ln.startswith("run dir: "))
    return dt, Path(line.split(": ", 1)[1].strip())


def stage(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())["stages"]["arm:base"]


def comparable(run_dir: Path) -> list[dict]:
    """What must not change between runs: prompt, output, decoding and score values (the code
    sandbox's details hold timings, temp paths and uids, which differ on every run)."""
    out = []
    for ln in (run_dir / "samples" / "base.jsonl").read_text().splitlines():
        s = json.loads(ln)
        out.append(
            {
                **{
                    k: s.get(k) for k in ("id", "prompt", "messages", "output", "finish_reason", "n_tokens", "decoding")
                },
                "scores": {k: (v or {}).get("value") for k, v in (s.get("scores") or {}).items()},
            }
        )
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--domain", default="code")
    ap.add_argument("--limit", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=3, help="cached re-runs timed (the median is reported)")
    a = ap.parse_args(argv)

    src = _local_dir(a.model)
    with tempfile.TemporaryDirectory(prefix="dispo-bench-cached-") as tmp:
        cache = Path(tmp) / "cache"
        shutil.copytree(src, cache / "models" / src.name)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DISPO_")}
        env.update(DISPO_CACHE=str(cache), TOKENIZERS_PARALLELISM="false", PYTHONPATH=str(REPO))
        args = [f"model={a.model}", f"domain={a.domain}", f"limit={a.limit}", f"output_dir={Path(tmp) / 'runs'}"]

        first_s, first = run_eval(args, env)
        cached = [run_eval(args, env) for _ in range(a.repeats)]
        shutil.rmtree(cache / "prompts")
        no_memo_s, no_memo = run_eval(args, env)

        st1, st2, st3 = stage(first), stage(cached[-1][1]), stage(no_memo)
        same = [comparable(first) == comparable(d) for _, d in cached + [(no_memo_s, no_memo)]]
        cached_s = statistics.median(t for t, _ in cached)
        result = {
            "title": "Fully cached dispo eval re-run vs first run",
            "machine": {**machine(), "loadavg_at_end": list(os.getloadavg())},
            "settings": {
                "command": "dispo eval " + " ".join(args[:3]),
                "decoding": "default (greedy, max_new_tokens from conf)",
                "timing": "subprocess wall seconds, fresh DISPO_CACHE with a copy of the model cache",
                "cached_repeats": a.repeats,
            },
            "rows": [
                {
                    "run": "first (generates)",
                    "seconds": round(first_s, 2),
                    "generated": st1["generated"],
                    "cached": st1["cached"],
                    "model_loaded": st1.get("model_loaded"),
                },
                {
                    "run": "re-run, all cached (median)",
                    "seconds": round(cached_s, 2),
                    "generated": st2["generated"],
                    "cached": st2["cached"],
                    "model_loaded": st2.get("model_loaded"),
                },
                {
                    "run": "re-run, all cached, prompt memo removed",
                    "seconds": round(no_memo_s, 2),
                    "generated": st3["generated"],
                    "cached": st3["cached"],
                    "model_loaded": st3.get("model_loaded"),
                },
            ],
            "first_seconds": round(first_s, 2),
            "cached_seconds": [round(t, 2) for t, _ in cached],
            "cached_seconds_median": round(cached_s, 2),
            "no_prompt_memo_seconds": round(no_memo_s, 2),
            "ratio_first_over_cached": round(first_s / cached_s, 2),
            "ratio_first_over_no_prompt_memo": round(first_s / no_memo_s, 2),
            "samples_identical": all(same),
            "target": ">= 5x, no weights loaded",
        }
    p = out_path("cached_rerun")
    p.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"first {first_s:.1f} s, cached re-run {cached_s:.1f} s: {result['ratio_first_over_cached']}x "
        f"(model_loaded={st2.get('model_loaded')}, samples identical: {all(same)}); wrote {p}"
    )
    return result


if __name__ == "__main__":
    main()
