"""o_proj tempering: scale chosen attention heads' outputs by lambda during a forward pass.

    with temper(lm.model, [(12, 3), (20, 7)], 0.8):
        evaluate_arm(..., intervention=tempering_spec([(12, 3), (20, 7)], 0.8))

A forward *pre*-hook on each affected layer's o_proj multiplies the input `[..., heads*head_dim]`
by a per-column scale vector (1 everywhere, lam on the chosen heads' slices). The product is a new
tensor, so the attention module's output tensor is never modified in place, and columns scaled by
1.0 are bit-identical. The hooks sit on the module at `self_attn.o_proj`: with a PEFT LoRA adapter
that is the `lora.Linear` wrapper, so the scaled input reaches both the base weight and the LoRA
path. Works at prefill and at every decode step (the hook sees `[B, T, width]` either way).
lam == 1 registers nothing. Hooks are removed on exit, also when the body raises.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from typing import Iterable, Iterator

from dispo.core.errors import DispoError
from dispo.models.heads import layer_map, validate_heads


def tempering_spec(heads: Iterable, lam: float) -> dict:
    """The intervention description that goes into cache keys and sample records."""
    hs = sorted((int(layer), int(h)) for layer, h in heads)
    return {"tempering": {"heads": [list(p) for p in hs], "lambda": float(lam)}}


def _make_hook(scale_cpu):
    cache: dict = {}

    def hook(module, args, kwargs):
        if args:
            x = args[0]
        else:  # called as o_proj(input=...) / (x=...)
            key = next((k for k in ("input", "x", "hidden_states") if k in kwargs), None)
            if key is None:
                return None
            x = kwargs[key]
        if x.shape[-1] != scale_cpu.shape[0]:
            raise DispoError(
                f"tempering hook: o_proj input width {x.shape[-1]} != expected {scale_cpu.shape[0]}; "
                f"the head layout of this model was read wrongly"
            )
        s = cache.get(x.device)
        if s is None:
            s = cache[x.device] = scale_cpu.to(device=x.device)
        # new tensor (the shared attention output is left untouched); the product is taken in
        # float32 so lam is exact-ish for bf16 models too, then cast back
        y = (x * s).to(x.dtype)
        if args:
            return (y, *args[1:]), kwargs
        kwargs = dict(kwargs)
        kwargs[key] = y
        return args, kwargs

    return hook


@contextlib.contextmanager
def temper(model, heads: Iterable, lam: float) -> Iterator[list]:
    """Scale the o_proj input slices of `heads` ([(layer, head), ...]) by `lam` inside the block.

    Yields the list of hook handles (empty when lam == 1 or no heads)."""
    import torch

    lam = float(lam)
    if not (lam == lam) or lam < 0:  # NaN or negative
        raise DispoError(f"tempering lambda must be a number >= 0, got {lam}")
    pairs = validate_heads(model, list(heads))
    handles: list = []
    if lam == 1.0 or not pairs:
        yield handles
        return
    lm = layer_map(model)
    by_layer: dict[int, set[int]] = defaultdict(set)
    for layer, h in pairs:
        by_layer[layer].add(h)
    try:
        for layer, hs in sorted(by_layer.items()):
            hl = lm[layer]
            scale = torch.ones(hl.width, dtype=torch.float32)
            for h in hs:
                scale[hl.head_slice(h)] = lam
            handles.append(hl.o_proj.register_forward_pre_hook(_make_hook(scale), with_kwargs=True))
        yield handles
    finally:
        for hd in handles:
            hd.remove()
