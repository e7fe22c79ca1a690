"""The verdict rule, the evidence ledger and the statistics falsify relies on."""

from __future__ import annotations

import numpy as np
import pytest

from dispo.core.config import compose_config
from dispo.core.runs import Run
from dispo.core.types import Score
from dispo.falsify.run import falsify_run, verdict
from dispo.stats.summary import claims, paired_claim, repeated_claim

N = 30


def sample(i, correct, hedge, text=None):
    out = text if text is not None else ("I think it might be %d, not sure." if hedge else "The answer is %d.") % i
    return {
        "id": f"q{i}",
        "prompt": f"q{i}",
        "messages": [{"role": "user", "content": f"q{i}"}],
        "output": out,
        "finish_reason": "stop",
        "n_tokens": 10,
        "decoding": {},
        "seed": 0,
        "scores": {
            "correct:tests": Score("tests.correct", "v1", bool(correct)).to_json(),
            "verbal:lexical": Score("lexical.verbal", "v1", "hedge" if hedge else "assert").to_json(),
        },
    }


def lexical_run(tmp_path):
    base = [sample(i, i < 15, False) for i in range(N)]
    treat = [sample(i, i < 15, i >= 15) for i in range(N)]
    cfg = compose_config(["model=tiny-llama"])
    run = Run.create("eval", cfg, "tiny-llama", root=tmp_path)
    for a, s in (("base", base), ("treat", treat)):
        run.write_samples(a, s)
        run.complete_stage(
            f"arm:{a}",
            {
                "decoding": cfg["decoding"],
                "seed": 0,
                "judge": {"name": "lexical"},
                "model": {"adapter": None},
                "system_prompt": None,
            },
        )
    run.write_results({}, claims({"base": base, "treat": treat}, "base", ["assertion_asymmetry"]))
    run.finish()
    return run


def test_second_judge_that_scores_nothing_is_not_agreement(tmp_path):
    """An unreachable model judge leaves every item unscored: no re-measured delta, so the
    judge swap is 'not checked' and the claim cannot survive."""
    run = lexical_run(tmp_path)
    opts = [
        f"+falsify.second_judge_options.{k}"
        for k in ("base_url=http://127.0.0.1:9/v1", "max_retries=0", "timeout_s=2", "cache=false", "model=m")
    ]
    res = falsify_run(
        run.dir,
        ["falsify.checks=[statistics,judge_swap]", "falsify.second_judge=openai", *opts],
        regenerate=lambda *a, **k: None,
        progress=False,
    )
    c = res["claims"][0]
    assert c["checks"]["statistics"]["status"] == "pass"
    js = c["checks"]["judge_swap"]
    assert js["status"] == "skipped" and js["reason"].startswith("under openai: no re-measured delta"), js
    assert js["evidence"]["items_unscored_by_second"] == 2 * N
    assert c["verdict"] == "INCONCLUSIVE" and c["not_checked"][0] == "judge_swap"  # then the left-out checks
    assert c["reasons"][-1].startswith("not checked: judge_swap (")


def test_second_judge_of_the_same_kind_is_refused(tmp_path):
    run = lexical_run(tmp_path)
    res = falsify_run(
        run.dir,
        ["falsify.checks=[statistics,judge_swap]", "falsify.second_judge=lexical"],
        regenerate=lambda *a, **k: None,
        progress=False,
    )
    js = res["claims"][0]["checks"]["judge_swap"]
    assert js["status"] == "skipped" and "same kind" in js["reason"]


def test_unknown_check_name_is_a_config_error(tmp_path):
    from dispo.core.errors import ConfigError

    run = lexical_run(tmp_path)
    with pytest.raises(ConfigError, match="unknown check 'truncaton'"):
        falsify_run(run.dir, ["falsify.checks=[truncaton]"], regenerate=lambda *a, **k: None, progress=False)


def test_verdict_names_errors_and_left_out_checks():
    res = {
        "statistics": {"status": "pass", "reason": "ok"},
        "judge_swap": {"status": "error", "reason": "JudgeFailed: hf did not load"},
    }
    v, why = verdict({}, res, ["truncation"])
    assert v == "INCONCLUSIVE"
    assert why == [
        "not checked: judge_swap (error: JudgeFailed: hf did not load), truncation (left out of falsify.checks)"
    ]
    assert verdict({}, {"statistics": {"status": "pass", "reason": "ok"}}, []) == ("SURVIVES", ["ok"])
    assert verdict({}, {"a": {"status": "n/a", "reason": "x"}}, [])[0] == "INCONCLUSIVE"


def _binary_run(seed_rows):
    return [
        {"id": f"q{i}", "scores": {"correct:tests": Score("tests.correct", "v1", bool(v)).to_json()}}
        for i, v in enumerate(seed_rows)
    ]


def test_seeds_are_repeated_measures_not_extra_items():
    """Three seeds that reproduce the same per-item outcomes carry the evidence of one: the
    repeated-measures claim counts 20 items, and its p is no smaller than one seed's test,
    where pooling seeds as 60 independent pairs would overstate significance."""
    base = [1] * 6 + [0] * 14
    treat = [1] * 12 + [0] * 8
    b, t = [_binary_run(base)] * 3, [_binary_run(treat)] * 3
    rc = repeated_claim(b, t, "accuracy", alpha=0.05)
    one = paired_claim(b[0], t[0], "accuracy", alpha=0.05)
    pooled_b = [{**s, "id": f"{s['id']}#{k}"} for k in range(3) for s in b[k]]
    pooled_t = [{**s, "id": f"{s['id']}#{k}"} for k in range(3) for s in t[k]]
    naive = paired_claim(pooled_b, pooled_t, "accuracy", alpha=0.05)
    assert rc["n_pairs"] == 20 and rc["n_repeats"] == 3
    assert rc["delta"] == pytest.approx(0.3)
    assert naive["p"] < 0.01 < rc["p"]
    assert rc["p"] >= one["p"] * 0.5  # same evidence as one seed, not three times as much


def test_cells_metric_keeps_an_item_s_seeds_together():
    rng = np.random.default_rng(0)

    def arm(hedge_when_wrong):
        out = []
        for _k in range(2):
            out.append([sample(i, i < 15, (i >= 15 and hedge_when_wrong) or rng.random() < 0.1) for i in range(N)])
        return out

    rc = repeated_claim(arm(False), arm(True), "assertion_asymmetry", alpha=0.05)
    assert rc["aggregation"] == "cluster by item" and rc["n_pairs"] == N
    assert rc["delta"] < -0.5 and rc["p"] < 0.05


def test_undefined_statistic_is_null_and_outside_holm():
    base = [sample(i, False, False) for i in range(N)]  # no correct item
    treat = [sample(i, i < 15, i >= 15) for i in range(N)]
    cl = claims({"base": base, "treat": treat}, "base", ["accuracy", "assertion_asymmetry"])
    acc, asym = cl
    assert asym["delta"] is None and asym["p"] is None and asym["p_holm"] is None and asym["significant"] is False
    assert asym["undefined"] == "assertion_asymmetry is undefined: no correct item in baseline"
    assert acc["p_holm"] == pytest.approx(acc["p"])  # a Holm family of one
    wrongless = [sample(i, True, False) for i in range(N)]
    assert (
        paired_claim(wrongless, treat, "hallucination_rate")["undefined"]
        == "hallucination_rate is undefined: no wrong item in baseline"
    )


def test_a_reproduced_zero_is_a_vanished_effect_and_a_reversal_is_a_flip():
    from dispo.falsify.checks import compare

    claim = {"delta": -0.0625, "p_holm": 0.75, "p": 0.125}
    kind, why = compare(claim, {"delta": 0.0, "p": 1.0, "n_pairs": 64}, 0.05)
    assert kind == "flip" and why.startswith("effect vanished: claimed -0.0625, re-measured +0.0000 (n 64)"), why
    kind, why = compare(claim, {"delta": 0.05, "p": 0.5, "n_pairs": 64}, 0.05)
    assert kind == "flip" and why.startswith("sign flipped: claimed -0.0625, re-measured +0.0500"), why
    assert compare(claim, {"delta": -0.03, "p": 0.5, "n_pairs": 64}, 0.05) == ("ok", "")
