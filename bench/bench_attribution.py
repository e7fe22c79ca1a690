"""Head-attribution cost vs a plain forward pass, on the embedded SmolLM2-135M (30 layers x 9 heads).

    .venv/bin/python bench/bench_attribution.py [--n 100] [--batch-size 8] [--repeats 3] [--last-n 32]

100 made-up Chef prompt + response pairs (already "generated" text, varied lengths). Times, on the
same length-sorted, left-padded batches:
  plain        model(input_ids, attention_mask) per batch, full logits (what any forward costs)
  plain_last   the same with logits_to_keep=1 (attribution needs no logits)
  attribution  dispo.arcs.arc2.attribution.capture_head_activations: o_proj pre-hooks on all 30 layers,
               per-head mean norm + mean vector over the last N response tokens, one pass per batch
  rank         rank_heads, magnitude and directional (incl. held-out d), on a 50/50 cohort split
Target: attribution ~= plain (one pass per item, not one per head: 270 heads would be ~270x).
Best of `repeats` after a warm-up, measured in alternating order. The load average is recorded:
shared CPUs make timings noisy. Writes bench/results/attribution.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from chef_texts import FIXES, HEDGED_FIX
from chef_texts import pairs as _pairs


def pairs(n: int) -> tuple[list[list[dict]], list[str]]:
    return _pairs(n, FIXES + [HEDGED_FIX], max_sentences=5)  # 1-5 sentences, one of them hedged


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--last-n", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--device", default=None)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "attribution.json"))
    args = ap.parse_args()

    import numpy as np
    import torch

    from dispo.arcs.arc2.attribution import capture_head_activations, rank_heads
    from dispo.models.heads import attention_layers
    from dispo.models.loading import load_model

    lm = load_model(args.model, device=args.device)
    dev = lm.device
    msgs, responses = pairs(args.n)
    prompts = [lm.render(m) for m in msgs]
    tok = lm.tokenizer
    p_ids = tok(prompts, add_special_tokens=False)["input_ids"]
    r_ids = tok(responses, add_special_tokens=False)["input_ids"]
    seqs = [p + r for p, r in zip(p_ids, r_ids)]
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    batches = []
    for b0 in range(0, len(order), args.batch_size):
        idx = order[b0 : b0 + args.batch_size]
        T = max(len(seqs[i]) for i in idx)
        ids = torch.full((len(idx), T), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(idx), T), dtype=torch.long)
        for row, i in enumerate(idx):
            ids[row, T - len(seqs[i]) :] = torch.tensor(seqs[i])
            mask[row, T - len(seqs[i]) :] = 1
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        batches.append((ids.to(dev), mask.to(dev), pos.to(dev)))

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def plain(last: bool):
        with torch.inference_mode():
            for ids, mask, pos in batches:
                kw = {"logits_to_keep": 1} if last else {}
                lm.model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False, **kw)
        sync()

    acts_holder = {}

    def attribution():
        acts_holder["acts"] = capture_head_activations(
            lm.model, tok, prompts, responses, last_n_tokens=args.last_n, batch_size=args.batch_size
        )
        sync()

    fns = {"plain": lambda: plain(False), "plain_last": lambda: plain(True), "attribution": attribution}
    for f in fns.values():  # warm-up
        f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}  # process CPU time: less sensitive to other load
    for _ in range(args.repeats):
        for k, f in fns.items():
            t0, c0 = time.perf_counter(), time.process_time()
            f()
            times[k].append(time.perf_counter() - t0)
            cpu[k].append(time.process_time() - c0)
    acts = acts_holder["acts"]
    cohort = np.arange(args.n) % 2 == 0
    t0 = time.perf_counter()
    for method in ("magnitude", "directional"):
        rank_heads(acts, cohort, method=method)
    t_rank = time.perf_counter() - t0

    best = {k: min(v) for k, v in times.items()}
    best_cpu = {k: min(v) for k, v in cpu.items()}
    hls = attention_layers(lm.model)
    n_heads = sum(h.n_heads for h in hls)
    n_tokens = sum(len(s) for s in seqs)
    res = {
        "model": lm.name,
        "n_items": args.n,
        "batch_size": args.batch_size,
        "last_n_tokens": args.last_n,
        "tokens_total": n_tokens,
        "tokens_per_item_mean": n_tokens / args.n,
        "n_layers_hooked": len(hls),
        "n_heads": n_heads,
        "seconds_best": best,
        "seconds_all": times,
        "rank_heads_seconds_both_methods": t_rank,
        "ms_per_item": {k: 1000 * v / args.n for k, v in best.items()},
        "ratio_attribution_vs_plain": best["attribution"] / best["plain"],
        "ratio_attribution_vs_plain_last": best["attribution"] / best["plain_last"],
        "cpu_seconds_best": best_cpu,
        "cpu_seconds_all": cpu,
        "cpu_ratio_attribution_vs_plain": best_cpu["attribution"] / best_cpu["plain"],
        "cpu_ratio_attribution_vs_plain_last": best_cpu["attribution"] / best_cpu["plain_last"],
        "one_pass_per_head_estimate_seconds": n_heads * best["plain_last"],
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "device": str(dev),
            "gpu": torch.cuda.get_device_name(0) if dev.type == "cuda" else None,
            "loadavg_at_end": os.getloadavg() if hasattr(os, "getloadavg") else None,
        },
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(
        json.dumps(
            {
                k: res[k]
                for k in (
                    "seconds_best",
                    "ms_per_item",
                    "ratio_attribution_vs_plain",
                    "ratio_attribution_vs_plain_last",
                    "cpu_seconds_best",
                    "cpu_ratio_attribution_vs_plain",
                    "cpu_ratio_attribution_vs_plain_last",
                    "rank_heads_seconds_both_methods",
                    "tokens_per_item_mean",
                )
            },
            indent=2,
        )
    )
    print(f"load average: {res['machine']['loadavg_at_end']}; wrote {out}")


if __name__ == "__main__":
    main()
