"""Judging speed of the default offline judge on long answers.

    .venv/bin/python bench/bench_judge.py [--n 800] [--judge tone] [--tasks verbal,svr,hedge]

Builds N long answers (>= 1,000 tokens each): when the paper's released responses are found
(`DISPO_REFERENCE` or ../shared/reference/tinman-dd) each answer stitches 5 different real
responses together, otherwise the made-up Chef sentences of `chef_texts` are repeated. Times
`dispo.evaluation.evaluate.score_tasks` (what `dispo eval` / `dispo score` call) with the configured
default judge and tasks, best of `--repeats`. Target: 800 long answers in <= 120 s on the
2-core CI machine. The load average is recorded: shared CPUs make timings noisy. Writes
bench/results/judge.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from chef_texts import FIXES, HEDGED_FIX

HERE = Path(__file__).resolve().parent


def _reference() -> Path | None:
    for p in (
        os.environ.get("DISPO_REFERENCE"),
        HERE.parent.parent / "shared" / "reference" / "tinman-dd",
        Path("/work/shared/reference/tinman-dd"),
    ):
        if p and Path(p).is_dir():
            return Path(p)
    return None


def long_answers(n: int) -> tuple[list[str], str]:
    ref = _reference()
    if ref is not None:
        texts = []
        for f in sorted(ref.glob("*_step16_responses.jsonl")):
            texts += [
                json.loads(line)["response"] for line in f.read_text(encoding="utf-8").splitlines() if line.strip()
            ]
        if texts:
            return [
                "\n\n".join(texts[(i * 7 + k * 13) % len(texts)] for k in range(5)) for i in range(n)
            ], f"released responses x5 ({ref})"
    base = " ".join(FIXES + [HEDGED_FIX])
    return [" ".join([base] * 14) for _ in range(n)], "chef_texts sentences x14"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=800)
    ap.add_argument("--judge", default=None, help="judge name (default: the configured default judge)")
    ap.add_argument("--tasks", default=None, help="comma list (default: the configured default tasks)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(HERE / "results" / "judge.json"))
    args = ap.parse_args()

    from dispo.core.atomic import write_json
    from dispo.core.config import compose_config
    from dispo.core.types import Item
    from dispo.evaluation.eval_run import make_judge
    from dispo.evaluation.evaluate import score_tasks

    cfg = compose_config([f"judge={args.judge}"] if args.judge else [])
    tasks = args.tasks.split(",") if args.tasks else list(cfg["tasks"])
    judge = make_judge(cfg)
    texts, source = long_answers(args.n)
    items = [
        Item(id=str(i), prompt="Why did my sauce fail, and how do I fix it?", domain="bench", gold={})
        for i in range(args.n)
    ]
    words = [len(t.split()) for t in texts]
    load_before = os.getloadavg()
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        out = score_tasks(judge, items, texts, tasks)
        times.append(time.perf_counter() - t0)
    assert len(out) == args.n and all(f"{t}:{judge.name}" in out[0] for t in tasks if hasattr(judge, t))
    best = min(times)
    res = {
        "what": "dispo.evaluation.evaluate.score_tasks on N long answers with the default offline judge",
        "judge": judge.describe(),
        "tasks": tasks,
        "n": args.n,
        "answers": source,
        "words_per_answer": {"min": min(words), "mean": round(sum(words) / len(words), 1), "max": max(words)},
        "approx_tokens_per_answer_mean": round(1.3 * sum(words) / len(words)),  # ~1.3 tokens per English word
        "chars_per_answer_mean": round(sum(map(len, texts)) / len(texts)),
        "seconds": {"best": round(best, 3), "all": [round(t, 3) for t in times]},
        "answers_per_second": round(args.n / best, 1),
        "target_seconds": 120,
        "meets_target": best <= 120,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        },
    }
    write_json(Path(args.out), res)
    print(
        json.dumps(
            {
                k: res[k]
                for k in (
                    "n",
                    "tasks",
                    "seconds",
                    "answers_per_second",
                    "approx_tokens_per_answer_mean",
                    "meets_target",
                )
            }
        )
    )


if __name__ == "__main__":
    main()
