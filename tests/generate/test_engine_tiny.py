"""generate() on the random-init tiny models: every architecture runs, both paths agree
with each other and with plain model.generate, sampling is seeded per item, the cache
serves repeats without touching the model."""

from __future__ import annotations

import json

import pytest

from dispo.core.errors import DispoError
from dispo.generate.cache import ResponseCache
from dispo.generate.engine import DecodingParams, generate

QUESTIONS = [
    "What is 2+2?",
    "Name a French mother sauce and say how it is made, step by step.",
    "hi",
    "Write a haiku about rain.",
    "Explain recursion to a child in two sentences.",
    "Why?",
    "List three fruits that are red.",
]
REQUESTS = [(f"item-{i}", [{"role": "user", "content": q}]) for i, q in enumerate(QUESTIONS)]


@pytest.fixture(scope="module")
def models():
    from dispo.models.loading import load_model

    return {}, load_model


def _lm(models, name):
    loaded, load = models
    if name not in loaded:
        loaded[name] = load(name)
    return loaded[name]


def _reference_greedy(lm, messages, max_new_tokens):
    """One prompt alone through model.generate: the ground truth for greedy output."""
    import torch

    ids = lm.tokenizer(lm.render(messages), add_special_tokens=False, return_tensors="pt").input_ids
    with torch.no_grad():
        out = lm.model.generate(
            ids, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=lm.tokenizer.pad_token_id
        )
    return lm.tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)


@pytest.mark.parametrize(
    "name,engine",
    [("tiny-llama", "continuous"), ("tiny-qwen3", "continuous"), ("tiny-qwen3_5", "padded"), ("tiny-gemma4", "padded")],
)
def test_every_tiny_arch_generates_with_the_engine_its_cache_allows(models, name, engine):
    lm = _lm(models, name)
    gens = generate(lm, REQUESTS[:3], {"max_new_tokens": 6, "batch_size": 2}, cache=False, progress=False)
    assert [g.id for g in gens] == [r[0] for r in REQUESTS[:3]]
    for g, (_, messages) in zip(gens, REQUESTS):
        assert g.prompt == lm.render(messages)
        assert g.decoding["engine"] == engine and g.decoding["max_new_tokens"] == 6
        assert (g.finish_reason == "length") == (g.n_tokens == 6)
        assert 0 <= g.n_tokens <= 6 and not g.cached
    # greedy: the first item alone through model.generate gives the same text
    assert gens[0].output == _reference_greedy(lm, REQUESTS[0][1], 6)


def test_continuous_and_padded_agree_with_model_generate_under_refill(models):
    lm = _lm(models, "tiny-llama")
    # batch 3 < 7 items forces rows to leave and waiting prompts to be merged in
    cont = generate(
        lm, REQUESTS, {"max_new_tokens": 10, "batch_size": 3, "engine": "continuous"}, cache=False, progress=False
    )
    padded = generate(
        lm, REQUESTS, {"max_new_tokens": 10, "batch_size": 3, "engine": "padded"}, cache=False, progress=False
    )
    reference = [_reference_greedy(lm, m, 10) for _, m in REQUESTS]
    assert [g.output for g in cont] == reference
    assert [g.output for g in padded] == reference


def test_continuous_refuses_caches_it_cannot_slice(models):
    lm = _lm(models, "tiny-qwen3_5")
    with pytest.raises(DispoError, match="engine=continuous"):
        generate(lm, REQUESTS[:1], {"max_new_tokens": 2, "engine": "continuous"}, cache=False, progress=False)


@pytest.mark.parametrize("engine", ["continuous", "padded"])
def test_sampling_is_seeded_per_item(models, engine):
    lm = _lm(models, "tiny-llama")
    dec = {"max_new_tokens": 6, "temperature": 1.0, "top_k": 50, "batch_size": 3, "engine": engine}
    requests = REQUESTS[:5]
    a = generate(lm, requests, dec, seed=1, cache=False, progress=False)
    b = generate(lm, requests, dec, seed=1, cache=False, progress=False)
    c = generate(lm, requests, dec, seed=2, cache=False, progress=False)
    assert [g.output for g in a] == [g.output for g in b]
    assert sum(x.output != y.output for x, y in zip(a, c)) >= len(requests) - 1
    # other batch-mates, other order, other batch size: each item's sample is unchanged
    shuffled = list(reversed(requests[1:]))
    d = generate(lm, shuffled, {**dec, "batch_size": 1}, seed=1, cache=False, progress=False)
    by_id = {g.id: g.output for g in a}
    assert {g.id: g.output for g in d} == {i: by_id[i] for i, _ in shuffled}
    assert all(g.seed == 1 for g in a)


def test_greedy_is_independent_of_greedy_irrelevant_seed(models):
    lm = _lm(models, "tiny-qwen3")
    dec = {"max_new_tokens": 5, "batch_size": 4}
    a = generate(lm, REQUESTS, dec, seed=1, cache=False, progress=False)
    b = generate(lm, REQUESTS, dec, seed=7, cache=False, progress=False)
    assert [g.output for g in a] == [g.output for g in b]


def test_repeat_run_is_served_from_cache_without_running_the_model(models, tmp_path):
    lm = _lm(models, "tiny-llama")
    cache = ResponseCache(tmp_path / "responses")
    dec = DecodingParams(max_new_tokens=6, batch_size=4)
    seen = []
    first = generate(lm, REQUESTS, dec, cache=cache, progress=False, on_result=seen.append)
    assert sorted(g.id for g in seen) == sorted(r[0] for r in REQUESTS)
    assert cache.misses == len(REQUESTS) and cache.generated_tokens == sum(g.n_tokens for g in first)

    calls = {"n": 0}
    original = lm.model.forward

    def counting_forward(*args, **kwargs):
        calls["n"] += 1
        return original(*args, **kwargs)

    lm.model.forward = counting_forward
    try:
        again = generate(lm, REQUESTS, {**dec.to_dict(), "batch_size": 2}, cache=cache, progress=False)
        assert calls["n"] == 0
        assert [g.output for g in again] == [g.output for g in first]
        assert all(g.cached for g in again) and cache.hits == len(REQUESTS)
        assert [g.decoding["engine"] for g in again] == ["continuous"] * len(REQUESTS)
        # a different budget or intervention is a different request
        generate(lm, REQUESTS[:1], {"max_new_tokens": 7}, cache=cache, progress=False)
        generate(lm, REQUESTS[:1], dec, cache=cache, progress=False, intervention={"damp": [[0, 1]]})
        assert calls["n"] > 0 and cache.misses == len(REQUESTS) + 2
    finally:
        del lm.model.forward


def test_batch_variant_model_reuses_answers_only_within_the_same_call(models, tmp_path):
    # bf16/GPU: an answer depends on its batch-mates, so a warm cache must not hand one call
    # the answers another call made (a run's numbers would depend on what ran before it)
    lm = _lm(models, "tiny-llama")
    cache = ResponseCache(tmp_path / "responses")
    dec = DecodingParams(max_new_tokens=4, batch_size=4)
    lm.batch_invariant = False
    try:
        generate(lm, REQUESTS, dec, cache=cache, progress=False)
        generate(lm, REQUESTS, dec, cache=cache, progress=False)
        assert (cache.misses, cache.hits) == (len(REQUESTS), len(REQUESTS))
        # the same prompts in a smaller call, or batched 2 at a time: other batch-mates, regenerated
        generate(lm, REQUESTS[:3], dec, cache=cache, progress=False)
        generate(lm, REQUESTS, {**dec.to_dict(), "batch_size": 2}, cache=cache, progress=False)
        assert (cache.misses, cache.hits) == (2 * len(REQUESTS) + 3, len(REQUESTS))
        entry = json.loads(next(cache.root.glob("??/*.json")).read_text())
        assert len(entry["call"]) == 64
    finally:
        lm.batch_invariant = True
    # fp32 on a CPU (the default): the first call's answers serve the smaller call
    before = cache.hits
    generate(lm, REQUESTS, dec, cache=cache, progress=False)
    generate(lm, REQUESTS[:3], dec, cache=cache, progress=False)
    assert cache.hits - before == 3


def test_only_fp32_on_cpu_unquantised_counts_as_batch_invariant():
    from dispo.models.loading import _batch_invariant

    assert _batch_invariant(None, None, False) and _batch_invariant("float32", "cpu", False)
    assert not _batch_invariant("bfloat16", None, False)
    assert not _batch_invariant("float16", "cpu", False)
    assert not _batch_invariant("auto", "cpu", False)
    assert not _batch_invariant("float32", "cuda:0", False)
    assert not _batch_invariant("float32", "cpu", True)


def test_cache_false_writes_nothing_and_progress_is_silent_off_tty(models, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DISPO_CACHE", str(tmp_path))
    lm = _lm(models, "tiny-llama")
    generate(lm, REQUESTS[:2], {"max_new_tokens": 3}, cache=False, progress=True)
    assert not list(tmp_path.rglob("*.json"))
    generate(lm, REQUESTS[:2], {"max_new_tokens": 3}, cache=True, progress=True)
    assert len(list((tmp_path / "responses").rglob("*.json"))) == 2
    captured = capsys.readouterr()
    assert captured.out == ""


def test_growing_cache_layer_holds_what_dynamic_layer_holds_through_keep_and_merge():
    """The continuous engine's cache layer writes decode steps into spare room instead of
    copying the cache; through prefill, steps, keep/trim (assignments) and reallocation it
    must return exactly the tensors DynamicLayer returns."""
    import torch
    from transformers.cache_utils import DynamicLayer

    from dispo.generate.engine import _SLACK, _growing

    grow, ref = _growing(DynamicLayer()), DynamicLayer()
    assert type(grow) is not DynamicLayer and isinstance(grow, DynamicLayer)
    g = torch.Generator().manual_seed(0)

    def kv(b, n):
        return torch.randn(b, 2, n, 4, generator=g), torch.randn(b, 2, n, 4, generator=g)

    def both(k, v):
        a, b = grow.update(k, v), ref.update(k, v)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
        assert grow.get_seq_length() == ref.get_seq_length()

    both(*kv(3, 5))  # prefill
    for _ in range(_SLACK + 10):  # decode steps, past the first spare room
        both(*kv(3, 1))
    for layer in (grow, ref):  # what _Batch.keep does: drop a row, then trim leading columns
        idx = torch.tensor([0, 2])
        layer.keys = layer.keys.index_select(0, idx)
        layer.values = layer.values.index_select(0, idx)
        layer.keys = layer.keys[:, :, 2:]
        layer.values = layer.values[:, :, 2:]
    both(*kv(2, 1))
    for layer in (grow, ref):  # what _Batch.merge does
        extra = torch.zeros(1, 2, layer.keys.shape[-2], 4)
        layer.keys = torch.cat([layer.keys, extra])
        layer.values = torch.cat([layer.values, extra])
    for _ in range(3):
        both(*kv(3, 1))
    assert grow.keys.shape == ref.keys.shape == (3, 2, 5 + _SLACK + 10 - 2 + 1 + 3, 4)
