"""Arm summaries and paired claims: the paper's published numbers, plus hand-made arms."""

from __future__ import annotations

import json

import pytest
from scipy.stats import binomtest

from dispo.core.errors import ConfigError
from dispo.evaluation.importer import read_arm_jsonl
from dispo.stats.summary import arm_metrics, claims, paired_claim, per_item


def ok(value, scorer="x", version="v1"):
    return {"scorer": scorer, "version": version, "value": value, "status": "ok", "reason": None, "detail": {}}


UNSCORED = {"scorer": "x", "version": "v1", "value": None, "status": "unscored", "reason": "timeout", "detail": {}}


def sample(i, scores, finish_reason="stop", n_tokens=10):
    return {
        "id": str(i),
        "prompt": "p",
        "output": "o",
        "finish_reason": finish_reason,
        "n_tokens": n_tokens,
        "scores": scores,
    }


# ---------------------------------------------------------------- published numbers


@pytest.mark.parametrize(
    "fname, cells, acc, asym",
    [
        ("smollm2-1.7b_step16_responses.jsonl", (45, 11, 33, 11), 0.56, -0.0536),
        ("qwen3.5-0.8b_step16_responses.jsonl", (64, 11, 18, 7), 0.75, -0.1333),
    ],
)
def test_disposition_profiles_match_paper(reference_dir, fname, cells, acc, asym):
    m = arm_metrics(read_arm_jsonl(reference_dir / fname), n_boot=200)
    c = m["cells"]["value"]
    assert (c["confident_right"], c["hedged_right"], c["confident_wrong"], c["hedged_wrong"]) == cells
    assert m["accuracy"]["value"] == pytest.approx(acc)
    assert round(m["assertion_asymmetry"]["value"], 4) == asym
    assert m["accuracy"]["n"] == 100 and m["accuracy"]["n_unscored"] == 0
    lo, hi = m["assertion_asymmetry"]["ci"]
    assert lo < asym < hi


def _two_arms(reference_dir, fname, field, base_col, dd_col):
    path = reference_dir / fname
    return read_arm_jsonl(path, {field: base_col}), read_arm_jsonl(path, {field: dd_col})


def test_phase0_humaneval_gain_is_significant_on_paired_test(reference_dir):
    base, dd = _two_arms(reference_dir, "phase0_humaneval_n512.jsonl", "passed", "baseline_passed", "dd_passed")
    mb, md = arm_metrics(base, n_boot=200), arm_metrics(dd, n_boot=200)
    assert round(mb["accuracy"]["value"] * 100, 2) == 12.80  # 21/164
    assert round(md["accuracy"]["value"] * 100, 2) == 30.49  # 50/164
    assert mb["accuracy"]["value"] == 21 / 164 and md["accuracy"]["value"] == 50 / 164
    c = paired_claim(base, dd, "accuracy", n_boot=200)
    assert c["flips"] == {"up": 35, "down": 6}
    assert c["test"] == "mcnemar_exact" and c["n_pairs"] == 164
    # exact McNemar = two-sided binomial test on the 41 discordant pairs
    assert c["p"] == pytest.approx(binomtest(6, 41, 0.5).pvalue)
    assert c["p"] < 0.05
    assert c["delta"] == pytest.approx(29 / 164)
    assert c["ci"][0] > 0


def test_phase0_mcas_matches_paper(reference_dir):
    base, dd = _two_arms(reference_dir, "phase0_mcas_prompts.jsonl", "score", "baseline_score", "dd_score")
    mb, md = arm_metrics(base, n_boot=200), arm_metrics(dd, n_boot=200)
    assert round(mb["mcas"]["value"], 1) == 53.1
    assert round(md["mcas"]["value"], 1) == 87.0
    out = claims({"base": base, "dd": dd}, "base", n_boot=200)
    assert [c["metric"] for c in out] == ["mcas"]
    assert out[0]["delta"] == pytest.approx(87.0 - 53.1, abs=0.05)
    assert out[0]["significant"] is True


# ---------------------------------------------------------------- hand-made arms


def test_unscored_are_excluded_and_counted():
    s = [
        sample(0, {"correct:lexical": ok(True)}),
        sample(1, {"correct:lexical": ok(False)}),
        sample(2, {"correct:lexical": UNSCORED}),
        sample(3, {}),
    ]
    m = arm_metrics(s, n_boot=50)
    assert m["accuracy"]["value"] == 0.5  # 1 of the 2 scored, not 1 of 4
    assert (m["accuracy"]["n"], m["accuracy"]["n_unscored"]) == (2, 2)
    assert per_item(s, "accuracy") == {"0": True, "1": False}


def test_source_choice_and_pass_at_1_name():
    s = [sample(i, {"correct:tests": ok(i < 3), "correct:lexical": ok(True)}) for i in range(4)]
    m = arm_metrics(s, n_boot=50)
    assert "accuracy" not in m
    assert m["pass@1"]["value"] == 0.75 and m["pass@1"]["source"] == "tests"
    m2 = arm_metrics(s, prefer={"correct": "lexical"}, n_boot=50)
    assert m2["accuracy"]["value"] == 1.0 and m2["accuracy"]["source"] == "lexical"
    with pytest.raises(ConfigError, match="openai"):
        arm_metrics(s, prefer={"correct": "openai"})


def test_generation_rubric_mcas_and_markers():
    rub = [
        {
            "factual_accuracy": 5,
            "hedging_appropriateness": 2,
            "pedagogical_framing": 4,
            "self_verification": 1,
            "completeness": 3,
        },
        {
            "factual_accuracy": 3,
            "hedging_appropriateness": 4,
            "pedagogical_framing": 4,
            "self_verification": 1,
            "completeness": 5,
        },
    ]
    dims = {
        "uncertainty_calibration": 5,
        "self_verification": 4,
        "error_detection": 3,
        "assumption_surfacing": 2,
        "edge_case_awareness": 1,
    }  # sum 15
    s = [
        sample(
            0,
            {
                "rubric:hf": ok(rub[0]),
                "mcas:hf": ok(2),
                "mcas5:hf": ok(dims),
                "svr:lexical": ok(True),
                "hedge:lexical": ok(False),
            },
            "length",
            512,
        ),
        sample(
            1,
            {
                "rubric:hf": ok(rub[1]),
                "mcas:hf": ok(1),
                "mcas5:hf": ok({**dims, "error_detection": 5}),
                "svr:lexical": ok(False),
                "hedge:lexical": ok(False),
            },
            "stop",
            100,
        ),
    ]
    m = arm_metrics(s, n_boot=50)
    assert m["truncation_rate"]["value"] == 0.5
    assert m["mean_tokens"]["value"] == 306.0  # (512 + 100) / 2
    assert m["rubric.factual_accuracy"]["value"] == 4.0  # (5 + 3) / 2
    assert m["rubric.factual_accuracy.ge4"]["value"] == 0.5  # only the 5
    assert m["rubric.pedagogical_framing.ge4"]["value"] == 1.0  # 4 counts as >= 4
    assert m["mcas"]["value"] == 75.0  # (2 + 1) / 4 * 100
    assert m["mcas25"]["value"] == 16.0  # sums 15 and 17
    assert m["svr_rate"]["value"] == 0.5 and m["hedge_rate"]["value"] == 0.0
    assert "coverage" not in m and "assertion_asymmetry" not in m


def test_undefined_metrics_serialise_as_null():
    # everything right: P(assert|wrong) undefined -> asymmetry None, not 0
    s = [sample(i, {"correct:lexical": ok(True), "verbal:lexical": ok("assert")}) for i in range(3)]
    m = arm_metrics(s, n_boot=50)
    assert m["assertion_asymmetry"]["value"] is None
    assert m["over_hedging"]["value"] == 0.0
    json.dumps(m, allow_nan=False)


def test_paired_claim_pairs_by_id_and_flags_scorer_change():
    base = [sample(i, {"coverage:hf": ok(0.2, version="cov-v1")}) for i in range(4)]
    treat = [sample(i, {"coverage:hf": ok(0.6, version="cov-v2")}) for i in reversed(range(1, 5))]
    c = paired_claim(base, treat, "coverage", n_boot=100)
    assert c["n_pairs"] == 3 and c["n_unpaired"] == 2  # ids 1..3 in both; 0 and 4 alone
    assert c["delta"] == pytest.approx(0.4)
    assert c["test"] == "paired_permutation"
    assert c["same_scorers"] is False
    # 3 equal positive diffs: exact two-sided permutation p = 2/8
    assert c["p"] == pytest.approx(0.25)


def test_claims_holm_across_run():
    base = [sample(i, {"correct:tests": ok(False), "coverage:hf": ok(0.1)}) for i in range(12)]
    treat = [sample(i, {"correct:tests": ok(i < 6), "coverage:hf": ok(0.1 + 0.05 * (i % 3))}) for i in range(12)]
    out = claims({"base": base, "t": treat}, "base", n_boot=100)
    by = {c["metric"]: c for c in out}
    assert set(by) == {"pass@1", "coverage"}
    # McNemar: 6 discordant, all one way -> 2 * 0.5**6
    assert by["pass@1"]["p"] == pytest.approx(2 * 0.5**6)
    p = sorted(c["p"] for c in out)
    # Holm with two tests: smallest * 2, then max(that, largest * 1)
    expect = {p[0]: min(1, 2 * p[0]), p[1]: max(min(1, 2 * p[0]), p[1])}
    for c in out:
        assert c["p_holm"] == pytest.approx(expect[c["p"]])
        assert c["significant"] == (c["p_holm"] < 0.05)
    json.dumps(out, allow_nan=False)


def test_claims_errors():
    base = [sample(0, {"correct:tests": ok(True)})]
    with pytest.raises(ConfigError, match="baseline arm 'nope'"):
        claims({"base": base}, "nope")
    with pytest.raises(ConfigError, match="unknown metric"):
        per_item(base, "accurasy")
    with pytest.raises(ConfigError, match="no scores"):
        paired_claim(base, base, "coverage")


def test_per_item_mcas_mean_is_mcas(reference_dir):
    base = read_arm_jsonl(reference_dir / "phase0_mcas_prompts.jsonl", {"score": "baseline_score"})
    vals = per_item(base, "mcas")
    assert len(vals) == 500
    assert round(sum(vals.values()) / len(vals), 1) == 53.1


def test_asymmetry_claim_on_paired_items():
    # 10 right + 10 wrong items in both arms; baseline asserts everything (asymmetry 1 - 1 = 0),
    # treatment hedges every wrong item (0 - 1 = -1)
    def arm(hedge_wrong):
        return [
            sample(i, {"correct:hf": ok(i < 10), "verbal:hf": ok("hedge" if hedge_wrong and i >= 10 else "assert")})
            for i in range(20)
        ]

    base, treat = arm(False), arm(True)
    assert per_item(treat, "assertion_asymmetry")["15"] == (False, False)
    c = paired_claim(base, treat, "assertion_asymmetry", n_boot=200)
    assert (c["base"], c["treat"], c["delta"]) == (0.0, -1.0, -1.0)
    assert c["test"] == "paired_permutation" and c["p"] < 0.01
    same = paired_claim(base, base, "assertion_asymmetry", n_boot=50)
    assert same["delta"] == 0.0 and same["p"] == 1.0


def test_no_paired_item_names_the_scorers_own_reason():
    # an imported arm whose re-scoring failed: every item unscored with the scorer's reason
    why = "lm-eval could not rebuild task 'gsm8k' here (dataset not found)"
    base = [sample(i, {"correct:import": ok(True)}) for i in range(3)]
    treat = [sample(i, {"correct:import": {**UNSCORED, "reason": why}}) for i in range(3)]
    c = paired_claim(base, treat, "accuracy", n_boot=50)
    assert c["n_pairs"] == 0 and c["delta"] is None and c["p"] is None
    assert c["undefined"] == f"no item scored in the treatment arm: {why}"
    # the baseline arm is named when it is the empty one; no reason recorded -> no colon
    bare = [sample(i, {"correct:import": {**UNSCORED, "reason": None}}) for i in range(3)]
    assert paired_claim(bare, base, "accuracy", n_boot=50)["undefined"] == "no item scored in the baseline arm"
