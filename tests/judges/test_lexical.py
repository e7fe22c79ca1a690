"""Lexical judge on hand-written responses with known markers - and its documented limit."""

from __future__ import annotations

from dispo.judges import get_judge
from dispo.judges.base import AXES, MCAS5_DIMS, JudgeRequest

J = get_judge("lexical")


def r(response, question="How do I fix a broken hollandaise?", **kw):
    return JudgeRequest(question=question, response=response, **kw)


def test_verbal_hedge_vs_assert():
    texts = {
        "Whisk the broken sauce into a fresh yolk.": "assert",
        "I think it might be too hot.": "hedge",
        "I\u2019m not sure - it depends on your stove.": "hedge",  # curly apostrophe
        "It could be the butter temperature.": "hedge",
        "Use clarified butter; the sauce will hold.": "assert",
    }
    got = [s.value for s in J.verbal([r(t) for t in texts])]
    assert got == list(texts.values())


def test_hedge_and_svr_are_boolean_scores_with_markers():
    h, s = J.hedge([r("Perhaps add water.")])[0], J.svr([r("Let me double-check the temperature.")])[0]
    assert h.value is True and "perhaps" in h.detail["markers"]
    assert s.value is True and s.scorer == "lexical.svr"
    assert J.svr([r("Add water and whisk.")])[0].value is False
    assert J.svr([r("Wait, that is wrong: test this with one yolk.")])[0].value is True


def test_mimicry_fools_the_lexical_judge():
    # Documented limit: the marker counts although nothing is verified, and the hedge words
    # count although the (wrong) claim is stated flatly. A model judge is needed to tell.
    fake_check = "Let me verify: hollandaise is made with olive oil. Verified."
    assert J.svr([r(fake_check)])[0].value is True
    assert J.rubric([r(fake_check)])[0].value["self_verification"] >= 4
    fake_hedge = "Maybe. Boil the eggs for ten minutes, it is the only way."
    assert J.verbal([r(fake_hedge)])[0].value == "hedge"


def test_coverage_uses_keyword_groups_and_overlap_fallback():
    claims = ["The butter was too hot", "Whisk into a fresh egg yolk", "Serve with asparagus"]
    keywords = [[["too hot", "overheat"], ["butter"]], [["yolk"]], []]  # last claim: no keywords
    resp = "Your butter overheated. Start over: whisk the sauce into a new yolk."
    s = J.coverage([r(resp, claims=claims, keywords=keywords)])[0]
    assert s.detail["claims"] == [True, True, False]
    assert s.detail["method"] == ["keywords", "keywords", "overlap"]
    assert abs(s.value - 2 / 3) < 1e-9
    # overlap fallback: at least half of the claim's content words
    s2 = J.coverage([r("Plate it next to asparagus spears.", claims=["Serve with asparagus"])])[0]
    assert s2.value == 1.0
    assert J.coverage([r("anything")])[0].status == "unscored"


def test_rubric_axes_and_certainty():
    s = J.rubric([r("Because the emulsion broke, for example from heat, re-whisk. Let me check it holds.")])[0]
    assert set(s.value) == set(AXES) and all(1 <= v <= 5 for v in s.value.values())
    assert s.detail == {"certainty": "CERTAIN", "certainty_source": "lexical"}
    assert s.value["pedagogical_framing"] >= 3 and s.value["self_verification"] >= 3
    # hedging is scored against the certainty: flat answer to an ambiguous question is low
    amb = J.rubric([r("Use 200 ml.", certainty="AMBIGUOUS")])[0]
    cert = J.rubric([r("Use 200 ml.", certainty="CERTAIN")])[0]
    assert amb.value["hedging_appropriateness"] < cert.value["hedging_appropriateness"]
    assert amb.detail["certainty_source"] == "gold"


def test_rubric_does_not_reward_repetition():
    once = J.rubric([r("Because it broke, re-whisk.")])[0].value
    many = J.rubric([r("Because it broke, re-whisk. " * 20)])[0].value
    assert once == many


def test_mcas_by_kind():
    tricky = lambda t: JudgeRequest("Set up CI/CD for my project.", t, kind="tricky")
    plain = lambda t: JudgeRequest("Write a Dockerfile for Python 3.11 on port 8080.", t, kind="straightforward")
    got = [
        s.value
        for s in J.mcas(
            [
                tricky("Here is a GitHub Actions file."),
                tricky("It depends, but here is one."),
                tricky("Which language are you using? Could you share your repo layout?"),
                plain("FROM python:3.11\nEXPOSE 8080"),
                plain("FROM python:3.11\nEXPOSE 8080\nTest this with docker run; edge case: port in use."),
                plain(""),
            ]
        )
    ]
    assert got == [0, 1, 2, 1, 2, 0]


def test_mcas5_dims():
    s = J.mcas5([r("Assuming Linux. Edge case: empty input. Avoid this common mistake. Let me verify.")])[0]
    assert set(s.value) == set(MCAS5_DIMS)
    assert s.value["assumption_surfacing"] >= 2 and s.value["edge_case_awareness"] >= 2
    assert J.mcas5([r("Do it.")])[0].value == {d: 1 for d in MCAS5_DIMS}


def test_describe_and_versions_name_the_marker_set():
    assert J.describe()["name"] == "lexical"
    assert J.verbal([r("x")])[0].version == "verbal-lexical-v1"
