"""Feature-extraction throughput: batched vs one at a time, on the embedded SmolLM2-135M.

    .venv/bin/python bench/bench_features.py [--repeats 3] [--batch-sizes 1 8 16] [--threads 1]

32 made-up Chef prompt + response pairs (varied lengths), frozen forward pass with hidden
states (dispo.probes.features.extract, layers=last4). Reports items/s per batch size (best of
`repeats` after a warm-up), the speed-up over batch 1, and the largest feature difference
between batched and one-at-a-time (must stay < 1e-4). Writes bench/results/features.json.
The machine's load average is recorded: shared CPUs make timings noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from chef_texts import pairs as _pairs


def pairs(n: int = 32) -> tuple[list[list[dict]], list[str]]:
    return _pairs(n)  # 1-4 sentences


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 16])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads (default: torch's choice); "
        "on a shared, oversubscribed CPU 1 thread is much faster than 2",
    )
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "features.json"))
    args = ap.parse_args()

    import numpy as np
    import torch

    from dispo.models.loading import load_model
    from dispo.probes.features import extract

    if args.threads:
        torch.set_num_threads(args.threads)
    lm = load_model(args.model)
    prompts, responses = pairs(32)
    extract(lm, prompts[:4], responses[:4], layers="last4", batch_size=4)  # warm-up
    n_tokens = [
        len(lm.tokenizer(lm.render(p), add_special_tokens=False)["input_ids"])
        + len(lm.tokenizer(r, add_special_tokens=False)["input_ids"])
        for p, r in zip(prompts, responses)
    ]
    results, feats = {}, {}
    for bs in args.batch_sizes:
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            feats[bs] = extract(lm, prompts, responses, layers="last4", batch_size=bs)
            times.append(time.perf_counter() - t)
        best = min(times)
        results[str(bs)] = {
            "seconds_best": round(best, 3),
            "seconds_all": [round(x, 3) for x in times],
            "items_per_s": round(len(prompts) / best, 2),
        }
    ref = feats[args.batch_sizes[0]]
    for bs in args.batch_sizes:
        diff = max(
            float(np.nanmax(np.abs(feats[bs][k] - ref[k]))) for k in ("h_last", "h_last4", "nll_mean", "entropy_mean")
        )
        results[str(bs)]["max_abs_diff_vs_bs%d" % args.batch_sizes[0]] = diff
        results[str(bs)]["speedup_vs_bs%d" % args.batch_sizes[0]] = round(
            results[str(args.batch_sizes[0])]["seconds_best"] / results[str(bs)]["seconds_best"], 2
        )
    out = {
        "bench": "features.extract (frozen forward, hidden states, layers=last4)",
        "model": args.model,
        "n_items": len(prompts),
        "tokens_per_item": {
            "min": min(n_tokens),
            "mean": round(sum(n_tokens) / len(n_tokens), 1),
            "max": max(n_tokens),
        },
        "repeats": args.repeats,
        "results": results,
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
        },
    }
    if args.threads:
        out["machine"]["threads_forced"] = args.threads
    p = Path(args.out)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
