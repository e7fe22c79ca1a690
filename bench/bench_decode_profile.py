"""Where one decode step of dispo's continuous engine spends its time (issue 18's profile).

One greedy decode step of SmolLM2-135M (fp32, CPU) for a batch of B rows with L tokens already
cached, timed whole and in parts, each part run alone on the step's shapes:

- the transformer's linear layers (q/k/v/o, gate/up/down in every layer) at M = B rows;
- the lm_head (vocabulary projection) for the one position kept;
- scaled-dot-product attention of one query token against the L cached ones, every layer;
- the KV-cache append: torch.cat of the whole cache (transformers' DynamicLayer) vs the
  engine's growing layer, which writes the new column in place;
- the rest (norms, rotary, masks, residuals, Python) = the step minus the parts.

It also times the linear layers in bfloat16, the explicit `model.dtype=bfloat16` option (it
changes outputs, so it is never the default). Not a target: the numbers say what an engine
change can win. Wall-clock medians of repeated runs; torch.profiler was not used because its
per-op overhead made torch.cat look like half of the step.

    .venv/bin/python bench/bench_decode_profile.py                 # B=16, L=300
    .venv/bin/python bench/bench_decode_profile.py --batch 32 --cached 400

Writes bench/results/decode_profile.json (or $DISPO_BENCH_RESULTS/...).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_vs_lm_eval import machine, out_path  # noqa: E402


def _ms(fn, repeats: int) -> float:
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 2)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--cached", type=int, default=300, help="tokens already in the cache")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--model", default="smollm2-135m")
    a = ap.parse_args(argv)

    import torch
    from transformers import DynamicCache

    from dispo.generate.engine import _growing
    from dispo.models.loading import load_model

    torch.manual_seed(0)
    model = load_model(a.model).model
    cfg = model.config
    B, L = a.batch, a.cached
    ids = torch.randint(0, cfg.vocab_size, (B, L))
    nxt = torch.randint(0, cfg.vocab_size, (B, 1))
    mask = torch.ones(B, L + 1, dtype=torch.long)
    pos = torch.full((B, 1), L)
    step_ms = {}
    with torch.no_grad():
        for kind, grow in (("dynamic_layer", False), ("growing_layer", True)):
            cache = DynamicCache(config=cfg)
            if grow:
                cache.layers = [_growing(layer) for layer in cache.layers]
            model(input_ids=ids, past_key_values=cache, use_cache=True, logits_to_keep=1)

            def step(cache=cache, grow=grow):
                for layer in cache.layers:  # back to L cached tokens: every step sees the same length
                    if grow:
                        layer.__dict__["_n_keys"] = layer.__dict__["_n_values"] = L
                    else:
                        layer.keys, layer.values = layer.keys[:, :, :L], layer.values[:, :, :L]
                model(
                    input_ids=nxt,
                    attention_mask=mask,
                    position_ids=pos,
                    past_key_values=cache,
                    use_cache=True,
                    logits_to_keep=1,
                )

            step_ms[kind] = _ms(step, a.repeats)

        lins = [m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and "lm_head" not in n]
        xs = {m.in_features: torch.randn(B, 1, m.in_features) for m in lins}

        def linears(dtype=torch.float32):
            for m in lins:
                m(xs[m.in_features] if dtype == torch.float32 else xs_bf[m.in_features])

        lin_ms = _ms(linears, a.repeats)
        head = model.get_output_embeddings()
        h = torch.randn(B, 1, head.in_features)
        head_ms = _ms(lambda: head(h), a.repeats)

        n_layers, n_kv = cfg.num_hidden_layers, cfg.num_key_value_heads
        d = cfg.hidden_size // cfg.num_attention_heads
        rep = cfg.num_attention_heads // n_kv
        q = torch.randn(B, n_kv, rep, d)  # one query token per head, packed by KV group
        k, v = torch.randn(B, n_kv, L + 1, d), torch.randn(B, n_kv, L + 1, d)
        am = torch.ones(B, 1, 1, L + 1, dtype=torch.bool)
        sdpa = torch.nn.functional.scaled_dot_product_attention
        attn_ms = round(_ms(lambda: sdpa(q, k, v, attn_mask=am), a.repeats) * n_layers, 2)
        full = torch.randn(B, n_kv, L, d)
        col = torch.randn(B, n_kv, 1, d)
        buf = torch.empty(B, n_kv, L + 64, d)
        cat_ms = round(_ms(lambda: torch.cat([full, col], dim=-2), a.repeats) * 2 * n_layers, 2)
        write_ms = round(_ms(lambda: buf[:, :, L : L + 1].copy_(col), a.repeats) * 2 * n_layers, 2)

        for m in lins:
            m.to(torch.bfloat16)
        xs_bf = {k: x.bfloat16() for k, x in xs.items()}
        lin_bf_ms = _ms(lambda: linears(torch.bfloat16), a.repeats)

    step = step_ms["growing_layer"]
    rest = round(step - lin_ms - head_ms - attn_ms - write_ms, 2)
    n_lin = sum(m.in_features * m.out_features for m in lins)
    rows = [
        {"part": "whole step, DynamicLayer cache (torch.cat)", "ms": step_ms["dynamic_layer"]},
        {"part": "whole step, growing cache (dispo's engine)", "ms": step, "share": 1.0},
        {"part": "linear layers (fp32)", "ms": lin_ms, "share": round(lin_ms / step, 3)},
        {"part": "lm_head (fp32, last position)", "ms": head_ms, "share": round(head_ms / step, 3)},
        {"part": f"attention (SDPA x {n_layers} layers)", "ms": attn_ms, "share": round(attn_ms / step, 3)},
        {"part": "KV append: in-place write (growing cache)", "ms": write_ms, "share": round(write_ms / step, 3)},
        {"part": "KV append: torch.cat of the cache (DynamicLayer)", "ms": cat_ms},
        {"part": "rest: norms, rotary, mask, residuals, Python", "ms": rest, "share": round(rest / step, 3)},
        {"part": "linear layers in bfloat16 (model.dtype=bfloat16)", "ms": lin_bf_ms},
    ]
    result = {
        "name": "decode_profile",
        "title": f"One decode step, where the time goes ({a.model}, batch {B}, {L} cached tokens)",
        "machine": machine(),
        "settings": {"model": a.model, "batch": B, "cached_tokens": L, "repeats": a.repeats, "timing": "median ms"},
        "rows": rows,
        "linear_gflops": round(2 * n_lin * B / (lin_ms / 1000) / 1e9, 1),
        "linear_bf16_speedup": round(lin_ms / lin_bf_ms, 2),
        "growing_over_dynamic_step": round(step_ms["dynamic_layer"] / step, 3),
        "notes": "The linear layers run at M = batch rows, where fp32 GEMM on this CPU reaches a fraction "
        "of its large-matrix rate; identical greedy outputs rule out changing the math, so an engine "
        "can win only the cache copies, the rest, and rows that would compute after they finished.",
    }
    p = out_path("decode_profile")
    p.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(rows, indent=1))
    print(f"wrote {p}")
    return result


if __name__ == "__main__":
    main()
