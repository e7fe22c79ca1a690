"""Where the attention heads are: each softmax-attention layer's o_proj and its head layout.

Arc 2 works on the *input* of o_proj: in every supported architecture that input is the
concatenation of the attention heads' outputs, `[..., n_heads * head_dim]`, so head h is the
slice `[h*head_dim : (h+1)*head_dim]`. The head dim is read per layer from the attention module
(Gemma 4's full-attention layers use a wider head_dim than its sliding layers, and neither equals
hidden_size / n_heads in general), then checked against `o_proj.in_features`.

Supported: Llama / SmolLM2, Qwen3 (every layer), Gemma 4 (per-layer head dim), Qwen3.5
(hybrid: only the full-attention layers have per-head o_proj; the Gated-DeltaNet layers are
reported by `skipped_layers`). A PEFT-wrapped model works too: the returned o_proj is the
module sitting at `self_attn.o_proj` (a `lora.Linear` wrapper when a LoRA adapter targets it),
so hooks placed on it see the input of both the base and the LoRA paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dispo.core.errors import DispoError


@dataclass(frozen=True)
class HeadLayer:
    index: int  # decoder layer index
    o_proj: Any  # the module at self_attn.o_proj (lora.Linear wrapper if LoRA-adapted)
    n_heads: int
    head_dim: int
    kind: str = "full_attention"  # layer type as the config names it

    @property
    def width(self) -> int:
        return self.n_heads * self.head_dim

    def head_slice(self, head: int) -> slice:
        if not 0 <= head < self.n_heads:
            raise DispoError(f"layer {self.index} has heads 0..{self.n_heads - 1}; got head {head}")
        return slice(head * self.head_dim, (head + 1) * self.head_dim)


@dataclass(frozen=True)
class SkippedLayer:
    index: int
    kind: str
    reason: str


def _unwrap(model):
    """The innermost transformers *ForCausalLM under PEFT wrappers."""
    m = model
    for _ in range(4):  # PeftModel -> LoraModel -> ForCausalLM
        if hasattr(m, "get_base_model") and m is not m.get_base_model():
            m = m.get_base_model()
            continue
        if type(m).__name__ in ("LoraModel",) and hasattr(m, "model"):
            m = m.model
            continue
        break
    return m


def decoder_layers(model) -> list[Any]:
    """The decoder layers of a causal LM (through PEFT wrappers)."""
    import torch.nn as nn

    m = _unwrap(model)
    for path in ("model.layers", "model.language_model.layers", "transformer.h", "layers"):
        obj = m
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if isinstance(obj, nn.ModuleList):
            return list(obj)
    # fallback: the longest ModuleList named *layers
    best = None
    for name, mod in m.named_modules():
        if (
            isinstance(mod, nn.ModuleList)
            and name.split(".")[-1] in ("layers", "h")
            and (best is None or len(mod) > len(best))
        ):
            best = mod
    if best is None:
        raise DispoError(
            f"cannot find the decoder layers of {type(m).__name__}; arc 2 supports llama, qwen3, qwen3_5 and gemma4"
        )
    return list(best)


def _layer_types(model) -> list[str] | None:
    cfg = getattr(_unwrap(model), "config", None)
    cfg = getattr(cfg, "text_config", None) or cfg
    try:
        lt = getattr(cfg, "layer_types", None)
    except Exception:  # heterogeneous configs may refuse global access
        lt = None
    return list(lt) if lt else None


def _config_int(cfg, name: str) -> int | None:
    try:
        v = getattr(cfg, name, None)
    except Exception:  # transformers' heterogeneous configs raise on per-layer attributes
        return None
    return int(v) if isinstance(v, int) else None


def _head_dim(attn, o_proj, layer_idx: int, model) -> int:
    hd = getattr(attn, "head_dim", None)
    if isinstance(hd, int) and hd > 0:
        return hd
    cfg = getattr(attn, "config", None) or getattr(_unwrap(model), "config", None)
    hd = _config_int(cfg, "head_dim")
    if hd:
        return hd
    n = _config_int(cfg, "num_attention_heads")
    if n:
        return int(o_proj.in_features) // n
    raise DispoError(f"layer {layer_idx}: cannot determine the attention head dim of {type(attn).__name__}")


def _scan(model) -> tuple[list[HeadLayer], list[SkippedLayer]]:
    layers = decoder_layers(model)
    types = _layer_types(model)
    found: list[HeadLayer] = []
    skipped: list[SkippedLayer] = []
    for i, layer in enumerate(layers):
        kind = types[i] if types and i < len(types) else "full_attention"
        attn = getattr(layer, "self_attn", None)
        o_proj = getattr(attn, "o_proj", None) if attn is not None else None
        if o_proj is None:
            if hasattr(layer, "linear_attn"):
                reason = (
                    f"{kind}: {type(layer.linear_attn).__name__} (Gated DeltaNet) has no softmax "
                    f"attention heads feeding an o_proj; arc 2 attributes and tempers only "
                    f"full-attention layers"
                )
            else:
                reason = f"{kind}: layer has no self_attn.o_proj"
            skipped.append(SkippedLayer(index=i, kind=kind, reason=reason))
            continue
        in_features = getattr(o_proj, "in_features", None)
        if in_features is None and hasattr(o_proj, "base_layer"):
            in_features = o_proj.base_layer.in_features
        hd = _head_dim(attn, o_proj, i, model)
        if in_features % hd:
            raise DispoError(
                f"layer {i}: o_proj input width {in_features} is not a multiple of head_dim {hd}; "
                f"cannot slice heads of {type(attn).__name__}"
            )
        n_heads = in_features // hd
        cfg_heads = _config_int(getattr(attn, "config", None), "num_attention_heads")
        if cfg_heads and cfg_heads != n_heads:
            raise DispoError(
                f"layer {i}: o_proj input {in_features} / head_dim {hd} = {n_heads} heads, but the "
                f"config says num_attention_heads={cfg_heads}"
            )
        found.append(HeadLayer(index=i, o_proj=o_proj, n_heads=n_heads, head_dim=hd, kind=kind))
    if not found:
        raise DispoError(
            f"{type(_unwrap(model)).__name__} has no attention layer with an o_proj; arc 2 cannot run on it"
        )
    return found, skipped


def attention_layers(model) -> list[HeadLayer]:
    """Every decoder layer whose heads feed an o_proj, in layer order."""
    return _scan(model)[0]


def skipped_layers(model) -> list[SkippedLayer]:
    """Decoder layers without per-head o_proj input (e.g. Qwen3.5's Gated-DeltaNet), with why."""
    return _scan(model)[1]


def layer_map(model) -> dict[int, HeadLayer]:
    return {hl.index: hl for hl in attention_layers(model)}


def validate_heads(model, heads) -> list[tuple[int, int]]:
    """Normalise [(layer, head), ...] and check every pair exists in `model`."""
    lm = layer_map(model)
    out = []
    for pair in heads:
        layer, head = int(pair[0]), int(pair[1])
        if layer not in lm:
            sk = {s.index: s for s in skipped_layers(model)}
            why = f" ({sk[layer].reason})" if layer in sk else ""
            raise DispoError(f"layer {layer} has no attention heads to address{why}; attention layers: {sorted(lm)}")
        lm[layer].head_slice(head)  # raises on a bad head index
        out.append((layer, head))
    return out
