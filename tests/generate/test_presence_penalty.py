"""presence_penalty: validated, in the cache key when on, applied by both transformers paths
(subtracting the penalty from the logit of every token already in the output) and passed to vLLM."""

from __future__ import annotations

import pytest

from dispo.core.errors import ConfigError
from dispo.generate.engine import DecodingParams, _select_tokens, generate

REQUESTS = [
    (f"item-{i}", [{"role": "user", "content": q}])
    for i, q in enumerate(["Say hello.", "Count to ten.", "Name a French sauce."])
]


def test_presence_penalty_is_validated_and_in_the_cache_key_only_when_on():
    with pytest.raises(ConfigError, match="presence_penalty must be in"):
        DecodingParams(presence_penalty=2.5)
    with pytest.raises(ConfigError, match="presence_penalty must be in"):
        DecodingParams.from_config({"presence_penalty": -3})
    off, on = DecodingParams(), DecodingParams(presence_penalty=2.0)
    assert "presence_penalty" not in off.cache_dict()  # caches made before it existed stay valid
    assert on.cache_dict()["presence_penalty"] == 2.0 and on.cache_dict() != off.cache_dict()
    assert on.to_dict()["presence_penalty"] == 2.0  # recorded with every generation


def test_penalty_is_subtracted_from_tokens_already_generated_only():
    import torch

    logits = torch.tensor([[5.0, 4.0, 3.0, 0.0]])
    hist = [torch.tensor([0, 1, 2])]  # prompt + output: the prompt's tokens must not count
    p = DecodingParams(presence_penalty=1.5)
    # token 0 generated once, twice: penalised once (presence, not frequency) -> 3.5 < 4.0
    assert _select_tokens(logits, p, hist, None, [[0, 0]]).tolist() == [1]
    # nothing generated yet: no penalty, even though token 0 is in the prompt history
    assert _select_tokens(logits, p, hist, None, [[]]).tolist() == [0]
    assert _select_tokens(logits, DecodingParams(), hist, None, [[0]]).tolist() == [0]
    # a negative penalty rewards repetition
    assert _select_tokens(
        torch.tensor([[5.0, 4.0]]), DecodingParams(presence_penalty=-2.0), None, None, [[1]]
    ).tolist() == [1]


def _distinct_ratio(text_ids):
    return len(set(text_ids)) / max(1, len(text_ids))


# continuous and padded paths. The random-init qwen3_5 rarely repeats a token, so there a
# negative penalty (a reward for repeating) is what must show.
@pytest.mark.parametrize("name,penalty", [("tiny-llama", 2.0), ("tiny-qwen3_5", -2.0)])
def test_presence_penalty_changes_greedy_outputs_in_its_direction(name, penalty):
    from dispo.models.loading import load_model

    lm = load_model(name)
    base = generate(lm, REQUESTS, {"max_new_tokens": 24, "batch_size": 2}, cache=False, progress=False)
    pen = generate(
        lm, REQUESTS, {"max_new_tokens": 24, "batch_size": 2, "presence_penalty": penalty}, cache=False, progress=False
    )
    assert [g.output for g in base] != [g.output for g in pen]
    for b, p in zip(base, pen):
        assert p.decoding["presence_penalty"] == penalty and b.decoding["presence_penalty"] == 0.0
    tok = lm.tokenizer
    rb = sum(_distinct_ratio(tok(g.output, add_special_tokens=False).input_ids) for g in base)
    rp = sum(_distinct_ratio(tok(g.output, add_special_tokens=False).input_ids) for g in pen)
    assert (rp > rb) if penalty > 0 else (rp < rb)  # fewer repeats when penalised, more when rewarded


def test_cached_entry_is_not_reused_across_presence_penalties(tmp_path):
    from dispo.generate.cache import ResponseCache
    from dispo.models.loading import load_model

    lm = load_model("tiny-llama")
    cache = ResponseCache(tmp_path / "cache")
    generate(lm, REQUESTS[:1], {"max_new_tokens": 8}, cache=cache, progress=False)
    again = generate(lm, REQUESTS[:1], {"max_new_tokens": 8, "presence_penalty": 1.0}, cache=cache, progress=False)
    assert not again[0].cached
    same = generate(lm, REQUESTS[:1], {"max_new_tokens": 8, "presence_penalty": 1.0}, cache=cache, progress=False)
    assert same[0].cached
