"""Do dispo's greedy outputs depend on which prompts share a batch? (found by the rerun of the
three-arc experiment, 2026-12-07: arms batched differently differed on 7-78 items).

    .venv/bin/python bench/batch_invariance.py                     # bf16 and fp32
    .venv/bin/python bench/batch_invariance.py --dtypes float32

Same 32 HumanEval prompts, qwen2.5-coder-0.5b, greedy, 192 new tokens, batch_size 16, response
cache off: one call of 32, the same call again, and two calls of 16. Counts the outputs that
differ. Writes bench/results/batch_invariance.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_vs_lm_eval import machine, out_path  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dtypes", nargs="+", default=["bfloat16", "float32"])
    ap.add_argument("-n", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=192)
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args(argv)

    from dispo.core.config import compose_config
    from dispo.domains import get_domain
    from dispo.evaluation.evaluate import generate_texts
    from dispo.models.loading import load_model

    items = get_domain("code").items("eval", args.n)
    half = len(items) // 2
    dec = {"max_new_tokens": args.max_new_tokens, "batch_size": args.batch_size}
    rows = []
    for dtype in args.dtypes:
        cfg = compose_config(["model=qwen2.5-coder-0.5b", f"model.dtype={dtype}"], base={"arc": "none"})
        lm = load_model(cfg["model"])

        def outputs(part, lm=lm):
            return [g.output for g in generate_texts(lm, part, dec, progress=False, cache=False)]

        t0 = time.perf_counter()
        whole, again = outputs(items), outputs(items)
        halves = outputs(items[:half]) + outputs(items[half:])
        rows.append(
            {
                "dtype": dtype,
                "n": len(items),
                "differ_same_call_again": sum(a != b for a, b in zip(whole, again)),
                "differ_one_call_vs_two_halves": sum(a != b for a, b in zip(whole, halves)),
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
        print(rows[-1], flush=True)
    result = {
        "title": "Greedy outputs vs batch composition (bench/batch_invariance.py)",
        "machine": machine(),
        "settings": {"model": "qwen2.5-coder-0.5b", "prompts": "HumanEval eval split", **dec, "cache": False},
        "rows": rows,
    }
    out_path("batch_invariance").write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out_path('batch_invariance')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
