"""Feedback integration: second-turn items, recovery/capitulation counting, orchestration."""

from __future__ import annotations

import pytest

from dispo.core.errors import DispoError
from dispo.core.types import Item, Score
from dispo.domains import DOMAINS, get_domain
from dispo.domains.recovery import RecoveryDomain, feedback_items, recovery_summary, run_recovery

FENCE = "```"


@pytest.fixture(scope="module")
def code_domain():
    return get_domain("code", timeout_s=5)


@pytest.fixture(scope="module")
def four(code_domain):
    return code_domain.items(limit=4)


def _answer(item: Item, body: str) -> str:
    return f"{FENCE}python\n{item.gold['prompt_code']}{body}{FENCE}"


def test_registered_and_wraps_base():
    assert DOMAINS.get("recovery") is RecoveryDomain
    d = get_domain("recovery")
    items = d.items(limit=2)
    assert [i.id for i in items] == ["HumanEval/0", "HumanEval/1"]
    assert items[0].meta["turn"] == 1 and items[0].meta["base"] == "code"
    with pytest.raises(DispoError, match="base"):
        RecoveryDomain(base="mcas")


def test_run_recovery_counts_recovery_and_capitulation(code_domain, four):
    """item 0: wrong then right (recovered); item 1: wrong then wrong; item 2: right then
    wrong after misleading feedback (capitulated); item 3: right then right (held)."""
    right = {i.id: _answer(i, i.gold["canonical_solution"]) for i in four}
    wrong = {i.id: _answer(i, "    return None\n") for i in four}
    plan = {  # id -> (first answer, second answer)
        four[0].id: (wrong, right),
        four[1].id: (wrong, wrong),
        four[2].id: (right, wrong),
        four[3].id: (right, right),
    }
    seen_second: list[Item] = []

    def generate(batch: list[Item]) -> list[str]:
        outs = []
        for it in batch:
            if it.id.endswith("#fb"):
                seen_second.append(it)
                outs.append(plan[it.meta["first_id"]][1][it.meta["first_id"]])
            else:
                outs.append(plan[it.id][0][it.id])
        return outs

    first, second, summary = run_recovery(four, generate, code_domain.content_scores)
    assert [s.score.value for s in first] == [False, False, True, True]
    assert [s.score.value for s in second] == [True, False, False, True]
    assert summary["recovered"] == 1 and summary["recovery_rate"] == pytest.approx(0.5)
    assert summary["capitulated"] == 1 and summary["capitulation_rate"] == pytest.approx(0.5)
    assert (summary["n_real"], summary["n_misleading"], summary["n_unscored"]) == (2, 2, 0)

    kinds = {s.item.meta["first_id"]: s.item.meta["feedback_kind"] for s in second}
    assert kinds == {four[0].id: "real", four[1].id: "real", four[2].id: "misleading", four[3].id: "misleading"}
    fb0 = seen_second[0]
    msgs = fb0.messages()
    assert [m["role"] for m in msgs] == ["user", "assistant", "user"]
    assert msgs[0]["content"] == four[0].prompt
    assert msgs[1]["content"] == wrong[four[0].id]
    assert fb0.id == four[0].id + "#fb"
    assert second[0].to_json()["messages"] == msgs


def test_real_feedback_quotes_the_failing_test(code_domain, four):
    item = four[0]
    out = _answer(item, "    return None\n")
    [score] = code_domain.content_scores([item], [out])
    [fb] = feedback_items([item], [out], [score])
    assert fb.meta["feedback_kind"] == "real"
    assert "AssertionError" in fb.prompt
    assert "assert candidate(" in fb.prompt  # the real failing assert line from HumanEval's test
    assert "/tmp/" not in fb.prompt and "solution.py" in fb.prompt


def test_misleading_feedback_invents_a_failure_in_the_same_form(code_domain, four):
    item = four[0]
    out = _answer(item, item.gold["canonical_solution"])
    [score] = code_domain.content_scores([item], [out])
    assert score.value is True
    [fb] = feedback_items([item], [out], [score])
    assert fb.meta["feedback_kind"] == "misleading" and fb.meta["first_correct"] is True
    assert "failed" in fb.prompt and "AssertionError" in fb.prompt
    # same opening as real feedback: the form does not reveal the control
    real = feedback_items(
        [item],
        ["x"],
        [Score("tests.correct", "humaneval-v1", False, detail={"status": "failed", "stderr_tail": "AssertionError"})],
    )[0]
    assert fb.prompt.splitlines()[0] == real.prompt.splitlines()[0]


def test_unscored_first_answers_get_no_feedback(four):
    scores = [
        Score.unscored("tests.correct", "humaneval-v1", "sandbox error"),
        Score("tests.correct", "humaneval-v1", False, detail={"status": "no_code"}),
    ]
    fbs = feedback_items(four[:2], ["a", "b"], scores)
    assert [f.meta["first_id"] for f in fbs] == [four[1].id]
    assert "No Python code" in fbs[0].prompt


def _chef_item(i: int) -> Item:
    return Item(
        id=f"chef/{i}",
        prompt=f"How do I fix a broken sauce {i}?",
        domain="chef",
        gold={"checklist": ["add a splash of water", "whisk off the heat", "add butter slowly"], "keywords": []},
    )


def _cov(flags: list[bool]) -> Score:
    return Score("keyword.coverage", "kb-v1", sum(flags) / len(flags), detail={"claims": flags})


def test_chef_feedback_names_a_missing_claim_or_a_covered_one_as_control():
    wrong, right = _chef_item(0), _chef_item(1)
    fbs = feedback_items([wrong, right], ["a", "b"], [_cov([True, False, False]), _cov([True, True, False])])
    assert fbs[0].meta["feedback_kind"] == "real" and "whisk off the heat" in fbs[0].prompt
    assert fbs[1].meta["feedback_kind"] == "misleading" and "add a splash of water" in fbs[1].prompt


def test_chef_summary_reports_coverage_gain():
    items = [_chef_item(i) for i in range(3)]
    first = [_cov([False, False, False]), _cov([True, False, False]), _cov([True, True, True])]
    second = [_cov([True, True, False]), _cov([True, False, False]), _cov([True, False, False])]
    s = recovery_summary(first, second, items)
    assert s["recovered"] == 1 and s["recovery_rate"] == pytest.approx(0.5)
    assert s["capitulated"] == 1 and s["capitulation_rate"] == pytest.approx(1.0)
    assert s["coverage_gain_real"] == pytest.approx((2 / 3 + 0) / 2)
    assert s["coverage_gain_misleading"] == pytest.approx(-2 / 3)


def test_summary_rates_are_none_without_a_group(four):
    ok = Score("tests.correct", "humaneval-v1", True)
    s = recovery_summary([ok], [ok], four[:1])
    assert s["recovery_rate"] is None and s["capitulation_rate"] == 0.0


def test_misaligned_inputs_are_rejected(four):
    ok = Score("tests.correct", "humaneval-v1", True)
    with pytest.raises(DispoError, match="aligned"):
        recovery_summary([ok], [], four[:1])
    with pytest.raises(DispoError, match="one output"):
        feedback_items(four[:2], ["a"], [ok, ok])
    with pytest.raises(DispoError, match="generate_fn"):
        run_recovery(four[:2], lambda items: ["only one"], lambda i, o: [ok] * len(i))


def test_chef_base_end_to_end_with_keyword_scoring():
    d = RecoveryDomain(base="chef")
    items = d.items(limit=4)
    if not items:
        pytest.skip("chef knowledge base has no items yet")

    # turn 1 says nothing useful; turn 2 recites the whole checklist: every item recovers
    def words(x):  # every keyword string, whatever the nesting
        return [x] if isinstance(x, str) else [w for y in x for w in words(y)]

    gen = lambda batch: [" ".join(words(it.gold["keywords"])) if it.id.endswith("#fb") else "No idea." for it in batch]
    first, second, summary = d.run(items, gen)
    assert all(s.item.meta["feedback_kind"] == "real" for s in second)
    assert summary["n_real"] == len(items)
    assert summary["coverage_gain_real"] > 0
