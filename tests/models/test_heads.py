"""Head layout per architecture: which layers have per-head o_proj input, and its slicing."""

from functools import lru_cache

import pytest

from dispo.core.errors import DispoError
from dispo.models.heads import attention_layers, skipped_layers, validate_heads

ARCHS = ["tiny-qwen3", "tiny-qwen3_5", "tiny-gemma4", "tiny-llama"]


@lru_cache(maxsize=None)
def _lm(name):
    from dispo.models.loading import load_model

    return load_model(name)


@pytest.mark.parametrize("name", ARCHS)
def test_o_proj_width_is_heads_times_head_dim(name):
    model = _lm(name).model
    hls = attention_layers(model)
    assert hls
    for hl in hls:
        assert hl.o_proj.in_features == hl.n_heads * hl.head_dim
        assert hl.n_heads == 4  # the tiny configs have 4 query heads


def test_gemma4_reads_per_layer_head_dim():
    hls = {hl.index: hl for hl in attention_layers(_lm("tiny-gemma4").model)}
    # sliding layer: 4 x 16 = 64; full layer: 4 x global_head_dim 32 = 128 (not hidden_size 64)
    assert (hls[0].head_dim, hls[0].o_proj.in_features) == (16, 64)
    assert (hls[1].head_dim, hls[1].o_proj.in_features) == (32, 128)
    assert hls[1].head_slice(3) == slice(96, 128)


def test_qwen3_5_only_full_attention_layers():
    model = _lm("tiny-qwen3_5").model
    assert [hl.index for hl in attention_layers(model)] == [3]
    sk = skipped_layers(model)
    assert [s.index for s in sk] == [0, 1, 2]
    assert all("linear_attention" in s.reason and "DeltaNet" in s.reason for s in sk)
    with pytest.raises(DispoError, match="layer 1 has no attention heads"):
        validate_heads(model, [(1, 0)])


def test_llama_and_qwen3_every_layer():
    for name in ("tiny-llama", "tiny-qwen3"):
        model = _lm(name).model
        assert [hl.index for hl in attention_layers(model)] == [0, 1]
        assert skipped_layers(model) == []


def test_bad_head_index_is_a_clear_error():
    with pytest.raises(DispoError, match="heads 0..3"):
        validate_heads(_lm("tiny-llama").model, [(0, 4)])


def test_through_peft_wrapper():
    import copy

    from peft import LoraConfig, get_peft_model

    model = copy.deepcopy(_lm("tiny-llama").model)
    pm = get_peft_model(model, LoraConfig(r=4, target_modules=["o_proj"]))
    hls = attention_layers(pm)
    assert [hl.index for hl in hls] == [0, 1]
    assert type(hls[0].o_proj).__name__ == "Linear" and hasattr(hls[0].o_proj, "base_layer")
    assert hls[0].n_heads == 4 and hls[0].head_dim == 16


@pytest.mark.slow
def test_smollm2_layout():
    hls = attention_layers(_lm("smollm2-135m").model)
    assert len(hls) == 30 and {(h.n_heads, h.head_dim) for h in hls} == {(9, 64)}
