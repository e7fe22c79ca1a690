"""Scaled-down random-init models of the five students' architectures.

The students' weights live on the hub, which tests cannot reach. Their code paths (LoRA
targets, o_proj head slicing, hidden-state extraction) are exercised instead on models built
from the *same transformers config classes*, shrunk so a forward pass takes milliseconds.
The tokenizer is the embedded SmolLM2 one (vocab resized to fit), so chat templates and
generation run exactly as for a real model.
"""

from __future__ import annotations

from typing import Any

# hidden 64, 4 query heads of 16, 2 kv heads: small but with GQA like the real students.
_COMMON: dict[str, Any] = dict(
    hidden_size=64,
    intermediate_size=128,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    max_position_embeddings=2048,
)

TINY_ARCHS: dict[str, dict[str, Any]] = {
    # Qwen3-0.6B / 1.7B
    "qwen3": dict(model_type="qwen3", num_hidden_layers=2),
    # SmolLM2-1.7B-Instruct
    "llama": dict(model_type="llama", num_hidden_layers=2),
    # Qwen3.5-0.8B: Gated-DeltaNet layers with one softmax-attention layer every four
    "qwen3_5": dict(
        model_type="qwen3_5_text",
        num_hidden_layers=4,
        layer_types=["linear_attention"] * 3 + ["full_attention"],
        linear_key_head_dim=16,
        linear_value_head_dim=16,
        linear_num_key_heads=2,
        linear_num_value_heads=4,
    ),
    # Gemma 4 E2B: sliding + full attention, full layers use a wider global head_dim, so
    # o_proj's input is heads*global_head_dim (not hidden_size)
    "gemma4": dict(
        model_type="gemma4_text",
        num_hidden_layers=2,
        layer_types=["sliding_attention", "full_attention"],
        sliding_window=64,
        global_head_dim=32,
        hidden_size_per_layer_input=16,
        vocab_size_per_layer_input=None,  # filled with the vocab size
    ),
}


def build_tiny(
    arch: str,
    vocab_size: int,
    seed: int = 0,
    pad_token_id: int | None = None,
    eos_token_id: int | None = None,
    bos_token_id: int | None = None,
):
    """Random-init model of architecture `arch` (a key of TINY_ARCHS)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    spec = dict(TINY_ARCHS[arch])
    model_type = spec.pop("model_type")
    if "vocab_size_per_layer_input" in spec:
        spec["vocab_size_per_layer_input"] = vocab_size
    kwargs = {**_COMMON, **spec, "vocab_size": vocab_size}
    for k, v in (("pad_token_id", pad_token_id), ("eos_token_id", eos_token_id), ("bos_token_id", bos_token_id)):
        if v is not None:
            kwargs[k] = v
    config = AutoConfig.for_model(model_type, **kwargs)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.eval()
    return model
