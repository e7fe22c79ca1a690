"""o_proj tempering hooks: effect, exact restoration, equivalence with zeroed o_proj columns."""

import copy
from functools import lru_cache

import pytest
import torch

from dispo.core.errors import DispoError
from dispo.interventions.tempering import temper, tempering_spec
from dispo.models.heads import attention_layers

ARCHS = ["tiny-qwen3", "tiny-qwen3_5", "tiny-gemma4", "tiny-llama"]
PROMPTS = ["Why does my hollandaise split?", "Fix: roux lumpy, what now? Explain the steps carefully."]


@lru_cache(maxsize=None)
def _lm(name):
    from dispo.models.loading import load_model

    return load_model(name)


def _batch(lm):
    texts = [lm.render([{"role": "user", "content": p}]) for p in PROMPTS]
    return lm.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)


def _logits(model, enc):
    with torch.no_grad():
        return model(**enc).logits


def _last_layer(model):
    return attention_layers(model)[-1]


def _zero_columns_copy(model, layer_index, head, lora=False):
    m2 = copy.deepcopy(model)
    hl = {h.index: h for h in attention_layers(m2)}[layer_index]
    sl = hl.head_slice(head)
    with torch.no_grad():
        base = hl.o_proj.base_layer if hasattr(hl.o_proj, "base_layer") else hl.o_proj
        base.weight[:, sl] = 0
        if lora:
            for a in hl.o_proj.lora_A.values():
                a.weight[:, sl] = 0
    return m2


@pytest.mark.parametrize("name", ARCHS)
def test_scaling_changes_logits_and_exit_restores_bitwise(name):
    lm = _lm(name)
    enc = _batch(lm)
    base = _logits(lm.model, enc)
    hl = _last_layer(lm.model)
    with temper(lm.model, [(hl.index, 1)], 0.5) as handles:
        assert len(handles) == 1
        tempered = _logits(lm.model, enc)
    assert not torch.allclose(base, tempered, atol=1e-6)
    assert torch.equal(_logits(lm.model, enc), base)
    assert all(len(h.o_proj._forward_pre_hooks) == 0 for h in attention_layers(lm.model))


@pytest.mark.parametrize("name", ARCHS)
def test_lambda_one_registers_nothing_and_is_identical(name):
    lm = _lm(name)
    enc = _batch(lm)
    base = _logits(lm.model, enc)
    hl = _last_layer(lm.model)
    with temper(lm.model, [(hl.index, 0), (hl.index, 2)], 1.0) as handles:
        assert handles == []
        assert torch.equal(_logits(lm.model, enc), base)


@pytest.mark.parametrize("name", ARCHS)
def test_zeroing_a_head_equals_zeroing_its_o_proj_columns(name):
    lm = _lm(name)
    enc = _batch(lm)
    hl = _last_layer(lm.model)
    head = hl.n_heads - 1  # gemma4's full layer: columns 96:128, beyond hidden_size
    ref = _logits(_zero_columns_copy(lm.model, hl.index, head), enc)
    with temper(lm.model, [(hl.index, head)], 0.0):
        got = _logits(lm.model, enc)
    assert torch.allclose(got, ref, atol=1e-5, rtol=1e-4)
    # a different head's columns give a different model: the slice really is head-specific
    other = _logits(_zero_columns_copy(lm.model, hl.index, 0), enc)
    assert not torch.allclose(got, other, atol=1e-5)


def test_gemma4_sliding_layer_head_slice():
    lm = _lm("tiny-gemma4")
    enc = _batch(lm)
    ref = _logits(_zero_columns_copy(lm.model, 0, 2), enc)
    with temper(lm.model, [(0, 2)], 0.0):
        assert torch.allclose(_logits(lm.model, enc), ref, atol=1e-5, rtol=1e-4)


def test_hooks_removed_on_exception():
    lm = _lm("tiny-llama")
    enc = _batch(lm)
    base = _logits(lm.model, enc)
    with pytest.raises(RuntimeError, match="boom"):
        with temper(lm.model, [(0, 0), (1, 3)], 0.2):
            raise RuntimeError("boom")
    assert all(len(h.o_proj._forward_pre_hooks) == 0 for h in attention_layers(lm.model))
    assert torch.equal(_logits(lm.model, enc), base)


def test_input_tensor_not_modified_in_place():
    lm = _lm("tiny-llama")
    hl = attention_layers(lm.model)[0]
    x = torch.randn(2, 3, hl.width)
    x0 = x.clone()
    with temper(lm.model, [(0, 1)], 0.0):
        y = hl.o_proj(x)
    assert torch.equal(x, x0)
    w = hl.o_proj.weight.detach().clone()
    w[:, hl.head_slice(1)] = 0
    assert torch.allclose(y, x @ w.T, atol=1e-6)


def test_batched_generation_prefill_and_decode():
    """Greedy batched generation under temper(lam=0) equals the zeroed-column model's, and the
    hook sees [B, T, width] at prefill (T > 1) and at each decode step (T == 1)."""
    lm = _lm("tiny-llama")
    enc = _batch(lm)
    kw = dict(max_new_tokens=6, do_sample=False, pad_token_id=lm.tokenizer.pad_token_id)
    ref_model = _zero_columns_copy(lm.model, 1, 2)
    with torch.no_grad():
        ref = ref_model.generate(**enc, **kw)
    hl = {h.index: h for h in attention_layers(lm.model)}[1]
    shapes = []
    probe = hl.o_proj.register_forward_pre_hook(lambda m, a: shapes.append(tuple(a[0].shape)))
    try:
        with temper(lm.model, [(1, 2)], 0.0), torch.no_grad():
            got = lm.model.generate(**enc, **kw)
    finally:
        probe.remove()
    assert torch.equal(got, ref)
    assert shapes[0][0] == 2 and shapes[0][1] > 1 and shapes[0][2] == hl.width
    assert any(s[1] == 1 and s[0] == 2 for s in shapes[1:])
    # sanity: the ablation must matter for the equality above to mean anything
    assert not torch.allclose(_logits(lm.model, enc), _logits(ref_model, enc), atol=1e-6)


def test_with_peft_lora_adapter():
    """Hook on the lora.Linear wrapper: scaled input reaches base weight AND the LoRA path."""
    from peft import LoraConfig, get_peft_model

    lm = _lm("tiny-llama")
    enc = _batch(lm)
    torch.manual_seed(0)
    pm = get_peft_model(
        copy.deepcopy(lm.model),
        LoraConfig(r=4, lora_alpha=8, target_modules=["o_proj", "q_proj"], init_lora_weights=False),
    )
    pm.eval()
    base = _logits(pm, enc)
    assert not torch.allclose(base, _logits(lm.model, enc), atol=1e-4)  # adapter is active
    ref = _logits(_zero_columns_copy(pm, 1, 3, lora=True), enc)
    base_only = _logits(_zero_columns_copy(pm, 1, 3, lora=False), enc)
    assert not torch.allclose(ref, base_only, atol=1e-5)  # LoRA path carries that head's input
    with temper(pm, [(1, 3)], 0.0):
        got = _logits(pm, enc)
    assert torch.allclose(got, ref, atol=1e-5, rtol=1e-4)
    assert torch.equal(_logits(pm, enc), base)


def test_bad_inputs():
    lm = _lm("tiny-qwen3_5")
    with pytest.raises(DispoError, match="no attention heads"):
        with temper(lm.model, [(0, 0)], 0.5):
            pass
    with pytest.raises(DispoError, match="lambda"):
        with temper(lm.model, [(3, 0)], -1):
            pass


def test_spec_is_order_independent():
    assert tempering_spec([(3, 1), (0, 2)], 0.8) == tempering_spec([(0, 2), (3, 1)], 0.8)
    assert tempering_spec([(0, 2)], 0.8) != tempering_spec([(0, 2)], 0.5)


@pytest.mark.slow
def test_smollm2_zero_head_equals_zeroed_columns():
    """The real embedded model (9 heads x 64): tempering a head to 0 == removing its o_proj columns."""
    lm = _lm("smollm2-135m")
    enc = lm.tokenizer(
        [lm.render([{"role": "user", "content": "Why did my roux turn lumpy?"}])],
        return_tensors="pt",
        add_special_tokens=False,
    )
    base = _logits(lm.model, enc)
    hl = {h.index: h for h in attention_layers(lm.model)}[20]
    w = hl.o_proj.weight
    saved = w.detach()[:, hl.head_slice(5)].clone()
    with torch.no_grad():
        w[:, hl.head_slice(5)] = 0
    try:
        ref = _logits(lm.model, enc)
    finally:
        with torch.no_grad():
            w[:, hl.head_slice(5)] = saved
    assert torch.equal(_logits(lm.model, enc), base)
    with temper(lm.model, [(20, 5)], 0.0):
        got = _logits(lm.model, enc)
    assert not torch.allclose(got, base, atol=1e-4)
    assert torch.allclose(got, ref, atol=1e-4, rtol=1e-4)
