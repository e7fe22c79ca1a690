"""load_model returns a model whose weights load on first use: prompts render, cache keys and
describe() need no weights, and anything that touches `.model` gets the real one. Prompts a
tokenizer rendered before come from the prompt memo without loading the tokenizer."""

import pytest

from dispo.models.loading import LoadedModel, load_model

MSGS = [{"role": "user", "content": "hi"}]


def _no_weights(*a, **k):
    raise AssertionError("weights were loaded")


def test_tokenizer_and_fingerprint_without_weights(dispo_cache, monkeypatch):
    import dispo.models.tiny as tiny

    monkeypatch.setattr(tiny, "build_tiny", _no_weights)
    lm = load_model("tiny-qwen3_5")
    assert not lm.loaded
    assert "hi" in lm.render(MSGS)
    assert lm.fingerprint and lm.tokenizer.padding_side == "left"
    assert lm.describe()["model_type"] == "qwen3_5_text"
    assert not lm.loaded


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-gemma4"])
def test_first_model_access_loads_once_and_describes_the_same(dispo_cache, name):
    lazy = load_model(name)
    before = lazy.describe()
    assert not lazy.loaded
    model = lazy.model
    assert lazy.loaded and lazy.model is model and not model.training
    assert lazy.describe() == before  # the config's model_type is the loaded model's
    eager = load_model(name, lazy=False)
    assert eager.loaded and eager.fingerprint == lazy.fingerprint


def test_device_and_layout_load_on_demand(dispo_cache):
    lm = load_model("tiny-llama")
    assert str(lm.device) == "cpu" and lm.loaded
    lm2 = load_model("tiny-llama")
    assert lm2.attention_layout()["attention"] and lm2.loaded


def test_a_cache_miss_loads_the_weights_a_hit_does_not(dispo_cache, tmp_path, monkeypatch):
    from dispo.generate.cache import ResponseCache
    from dispo.generate.engine import generate

    req = [("a", MSGS)]
    cache = ResponseCache(tmp_path / "responses")
    lm = load_model("tiny-llama")
    first = generate(lm, req, {"max_new_tokens": 4}, cache=cache, progress=False)
    assert lm.loaded and not first[0].cached
    import dispo.models.tiny as tiny

    monkeypatch.setattr(tiny, "build_tiny", _no_weights)
    again = load_model("tiny-llama")
    second = generate(again, req, {"max_new_tokens": 4}, cache=cache, progress=False)
    assert not again.loaded and second[0].cached and second[0].output == first[0].output
    with pytest.raises(AssertionError, match="weights were loaded"):
        generate(again, req, {"max_new_tokens": 5}, cache=cache, progress=False)


def test_rendered_prompts_come_back_from_the_memo_without_the_tokenizer(dispo_cache):
    first = load_model("smollm2-135m")
    assert first._tokenizer is not None  # nothing memoised yet: loaded (and checked) now
    text = first.render(MSGS)
    desc = first.describe()
    _ = first.model  # memoises the model_type too
    again = load_model("smollm2-135m")
    assert again._tokenizer is None
    assert again.render(MSGS) == text and again.fingerprint == first.fingerprint
    assert again.describe() == desc and again._tokenizer is None and not again.loaded
    # a prompt not rendered before loads the tokenizer, and renders exactly as it would
    other = [{"role": "user", "content": "something new"}]
    assert again.render(other) == first.render(other) and again._tokenizer is not None
    # what the memo holds is what the tokenizer renders
    assert again._render(MSGS, True) == text


def test_the_memo_keys_on_the_template_kwargs_and_skips_clock_templates(dispo_cache, tmp_path):
    from dispo.models.prompt_memo import PromptMemo

    class Tok:
        chat_template = "{{ strftime_now('%d') }}"

        def __len__(self):
            return 3

    memo = PromptMemo("abc", root=tmp_path / "p")
    memo.put_facts(Tok())
    memo.put(MSGS, True, {}, "x")
    assert memo.get(MSGS, True, {}) is None  # a template that reads the clock is never memoised
    Tok.chat_template = "{{ messages }}"
    memo = PromptMemo("abc", root=tmp_path / "p")
    memo.put_facts(Tok())
    memo.put(MSGS, True, {}, "x")
    assert memo.get(MSGS, True, {}) == "x"
    assert memo.get(MSGS, False, {}) is None and memo.get(MSGS, True, {"enable_thinking": False}) is None
    assert PromptMemo("other", root=tmp_path / "p").get(MSGS, True, {}) is None


def test_a_bad_adapter_or_dtype_fails_at_load_not_at_first_use(dispo_cache, tmp_path):
    from dispo.core.errors import ConfigError, DispoError
    from dispo.models.registry import get_spec

    with pytest.raises(DispoError, match="adapter_config.json"):
        load_model("tiny-llama", adapter=str(tmp_path))
    with pytest.raises(ConfigError, match="model.dtype"):
        load_model({**get_spec("tiny-llama"), "dtype": "float8"})


def test_loaded_model_still_takes_a_model():
    lm = LoadedModel(name="x", model="M", tokenizer=None, spec={}, fingerprint="f")
    assert lm.loaded and lm.model == "M"
    with pytest.raises(ValueError):
        LoadedModel(name="x")


def test_loading_the_weights_leaves_torch_rng_as_it_was(dispo_cache):
    import torch

    lm = load_model("tiny-llama")
    torch.manual_seed(3)
    expected = torch.rand(4)
    torch.manual_seed(3)
    _ = lm.model  # a tiny model's init reseeds torch; a trainer that just seeded must not see it
    assert torch.equal(torch.rand(4), expected)
