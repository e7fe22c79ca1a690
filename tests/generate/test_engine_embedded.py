"""The real embedded model (SmolLM2-135M-Instruct): greedy output does not depend on batch
size or engine path, and stop/length bookkeeping matches plain model.generate."""

from __future__ import annotations

import pytest

from dispo.generate.engine import generate

pytestmark = pytest.mark.slow

QUESTIONS = [
    "What is 2+2?",
    "Name one French mother sauce.",
    "Write a haiku about rain.",
    "Give me a Python one-liner that reverses a string.",
]
REQUESTS = [(f"q{i}", [{"role": "user", "content": q}]) for i, q in enumerate(QUESTIONS)]
MAX_NEW = 16


@pytest.fixture(scope="module")
def lm():
    from dispo.models.loading import load_model

    return load_model("smollm2-135m")


def test_greedy_text_is_the_same_at_batch_1_and_8_and_on_both_paths(lm):
    runs = {
        (engine, bs): generate(
            lm, REQUESTS, {"max_new_tokens": MAX_NEW, "batch_size": bs, "engine": engine}, cache=False, progress=False
        )
        for engine, bs in [("continuous", 1), ("continuous", 8), ("padded", 8)]
    }
    texts = {k: [g.output for g in v] for k, v in runs.items()}
    assert texts[("continuous", 1)] == texts[("continuous", 8)] == texts[("padded", 8)]
    assert len(set(texts[("continuous", 8)])) == len(REQUESTS)  # real, prompt-dependent answers


def test_stop_and_token_count_match_model_generate(lm):
    import torch

    gens = generate(lm, REQUESTS[:1], {"max_new_tokens": 32, "batch_size": 4}, cache=False, progress=False)
    ids = lm.tokenizer(lm.render(REQUESTS[0][1]), add_special_tokens=False, return_tensors="pt").input_ids
    with torch.no_grad():
        out = lm.model.generate(ids, max_new_tokens=32, do_sample=False)
    new = out[0, ids.shape[1] :].tolist()
    eos = lm.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert new[-1] == eos  # the short arithmetic answer ends well within budget
    assert gens[0].finish_reason == "stop"
    assert gens[0].n_tokens == len(new) - 1
    assert gens[0].output == lm.tokenizer.decode(new[:-1], skip_special_tokens=True)
