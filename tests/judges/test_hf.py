"""Local-model judge: labels come from next-token logits, batching changes nothing."""

from __future__ import annotations

import pytest

from dispo.judges import get_judge
from dispo.judges.base import JudgeRequest
from dispo.judges.prompts import YES_NO, load_prompt

REQS = [
    JudgeRequest(
        "How do I fix a split hollandaise?",
        "Whisk it into a fresh yolk over low heat.",
        claims=["fresh yolk", "low heat"],
    ),
    JudgeRequest("Why did my souffle fall?", "I think the oven door was opened too early, maybe."),
    JudgeRequest("What is a roux?", "Equal weights of flour and fat cooked together.", claims=["flour and fat"]),
]


@pytest.fixture(scope="module")
def tiny():
    return get_judge("hf", model="tiny-llama", cache=False, batch_size=8)


def test_label_is_the_argmax_of_the_label_tokens_logits(tiny):
    import torch

    scores = tiny.verbal(REQS)
    p = load_prompt("verbal")
    for r, s in zip(REQS, scores):
        text = tiny.loaded.render(p.messages(question=r.question, response=r.response))
        ids = tiny.loaded.tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
        row = tiny.loaded.model(input_ids=ids).logits[0, -1]
        assert_ids, hedge_ids = tiny.label_token_ids(("ASSERT", "HEDGE"))
        expect = "assert" if torch.logsumexp(row[assert_ids], 0) > torch.logsumexp(row[hedge_ids], 0) else "hedge"
        assert s.value == expect
        assert abs(sum(s.detail["p"].values()) - 1) < 1e-3


def test_batched_equals_unbatched(tiny):
    one = get_judge("hf", model="tiny-llama", cache=False, batch_size=1)
    one._loaded = tiny.loaded  # same weights, different batching
    batched, single = tiny.coverage(REQS), one.coverage(REQS)
    assert [s.detail.get("claims") for s in batched] == [s.detail.get("claims") for s in single]
    pb, ps = tiny.verbal(REQS), one.verbal(REQS)
    for a, b in zip(pb, ps):
        assert a.value == b.value
        assert abs(a.detail["p"]["ASSERT"] - b.detail["p"]["ASSERT"]) < 1e-3


def test_label_tokens_are_distinct_per_label(tiny):
    yes, no = tiny.label_token_ids(YES_NO)
    assert yes and no and not set(yes) & set(no)


def test_noise_model_digits_are_unscored_not_guessed(tiny):
    # a random-init model's top token is essentially never a digit: strict digits -> unscored
    rub = tiny.rubric(REQS[:1])[0]
    mc = tiny.mcas([JudgeRequest("Set up CI.", "Here is a workflow.", kind="tricky")])[0]
    assert rub.status == "unscored" and rub.value is None and "not one of" in rub.reason
    assert mc.status == "unscored" and "not one of 0/1/2" in mc.reason


def test_answers_are_cached_across_judges(tmp_path, tiny):
    a = get_judge("hf", model="tiny-llama", cache_dir=str(tmp_path))
    a._loaded = tiny.loaded
    first = a.verbal(REQS)
    files = list(tmp_path.rglob("*.json"))
    assert len(files) == len(REQS)

    b = get_judge("hf", model="tiny-llama", cache_dir=str(tmp_path))
    b._loaded = tiny.loaded
    b.next_token_logits = lambda texts: (_ for _ in ()).throw(AssertionError("model was called"))
    assert [s.value for s in b.verbal(REQS)] == [s.value for s in first]


def test_unscored_results_are_not_cached(tmp_path, tiny):
    j = get_judge("hf", model="tiny-llama", cache_dir=str(tmp_path))
    j._loaded = tiny.loaded
    assert j.mcas([JudgeRequest("Set up CI.", "ok", kind="tricky")])[0].status == "unscored"
    assert not list(tmp_path.rglob("*.json"))


@pytest.mark.slow
def test_smollm2_judges_obvious_cases():
    j = get_judge("hf", model="smollm2-135m", cache=False)
    reqs = [
        JudgeRequest("What colour is the sky on a clear day?", "The sky is blue.", claims=["the sky is blue"]),
        JudgeRequest(
            "What colour is the sky on a clear day?", "I'm not sure, it might be blue, maybe grey, I don't know."
        ),
    ]
    cov = j.coverage(reqs[:1])[0]
    assert cov.status == "ok" and cov.version == "coverage-v1"
    verbal = j.verbal(reqs)
    assert all(s.status == "ok" for s in verbal)
    # the hedged response must be rated more HEDGE-like than the flat assertion
    assert verbal[1].detail["p"]["HEDGE"] > verbal[0].detail["p"]["HEDGE"]
    assert "fingerprint" in j.describe() and j.describe()["temperature"] == 0.0
