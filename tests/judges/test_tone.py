"""`tone` judge: answer-level ASSERT/HEDGE with shipped weights."""

from __future__ import annotations

import json
import time

import pytest

from dispo.core.errors import ConfigError
from dispo.judges import get_judge
from dispo.judges.base import JudgeRequest
from dispo.judges.lexical import LexicalJudge

CONFIDENT = (
    "Hollandaise splits when the butter is added too fast or the base gets too hot. "
    "Whisk the yolks with the reduction over barely simmering water until they form ribbons. "
    "Take the bowl off the heat and add the clarified butter in a thin stream while whisking. "
)
HEDGED = (
    "I'm sorry, but as a text-based AI I don't have the ability to taste your sauce. "
    "It might be the heat, but it depends on your recipe; it could also be the butter. "
    "These are just general suggestions, and you may want to consult a chef. "
)


def _req(text):
    return JudgeRequest(question="Why did my hollandaise split?", response=text)


def test_resolves_from_a_config_string_and_records_the_weights():
    j = get_judge("tone")
    d = j.describe()
    assert d["name"] == "tone" and len(d["weights"]["sha12"]) == 12
    assert set(d["weights"]["fitted_on"]) == {
        "smollm2-1.7b_step16_responses.jsonl",
        "qwen3.5-0.8b_step16_responses.jsonl",
    }
    assert j.verbal([_req(CONFIDENT)])[0].version.endswith(d["weights"]["sha12"])


def test_a_stray_might_in_a_long_confident_answer_is_not_a_hedge():
    # ~1,500 words: confident throughout, one "might" deep inside
    long_answer = CONFIDENT * 12 + "If the sauce looks greasy it might need a spoon of water. " + CONFIDENT * 12
    assert LexicalJudge().verbal([_req(long_answer)])[0].value == "hedge"  # the screening judge is fooled
    assert get_judge("tone").verbal([_req(long_answer)])[0].value == "assert"


def test_a_disclaiming_contingent_answer_is_a_hedge():
    s = get_judge("tone").verbal([_req(HEDGED + CONFIDENT)])[0]
    assert s.value == "hedge" and s.detail["p_hedge"] >= 0.5


def test_threshold_moves_the_cut_and_empty_is_unscored():
    text = HEDGED + CONFIDENT * 3
    p = get_judge("tone").verbal([_req(text)])[0].detail["p_hedge"]
    assert 0.0 < p < 1.0
    assert get_judge("tone", threshold=min(0.9999, p + 1e-3)).verbal([_req(text)])[0].value == "assert"
    assert get_judge("tone", threshold=max(1e-4, p - 1e-3)).verbal([_req(text)])[0].value == "hedge"
    assert get_judge("tone").verbal([_req("   ")])[0].status == "unscored"
    with pytest.raises(ConfigError, match="strictly between 0 and 1"):
        get_judge("tone", threshold=1.5)


def test_unknown_or_foreign_weights_are_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="shipped: .*v1"):
        get_judge("tone", weights="v9")
    bad = tmp_path / "w.json"
    bad.write_text(
        json.dumps({"features": ["x"], "mean": [0], "scale": [1], "coef": [1], "intercept": 0, "feature_version": "f0"})
    )
    with pytest.raises(ConfigError, match="refit"):
        get_judge("tone", weights=str(bad))


def test_other_tasks_use_the_lexical_rules_under_the_tone_name():
    r = JudgeRequest(question="q", response="Let me verify: it works.", kind="tricky")
    s = get_judge("tone").svr([r])[0]
    assert s.scorer == "tone.svr" and s.value is True
    assert get_judge("tone").mcas([r])[0].value == LexicalJudge().mcas([r])[0].value


def test_800_long_answers_are_fast():
    texts = [_req((CONFIDENT + HEDGED) * 20) for _ in range(100)]  # ~1,400 words each
    j = get_judge("tone")
    t0 = time.perf_counter()
    out = j.verbal(texts)
    dt = time.perf_counter() - t0
    assert len(out) == 100 and dt * 8 < 60, f"{dt:.2f}s per 100 long answers"


@pytest.mark.parametrize("fit,test", [("v1-fit-smollm2", "qwen3.5-0.8b"), ("v1-fit-qwen35", "smollm2-1.7b")])
def test_cross_model_beats_lexical_and_keeps_the_asymmetry_sign(reference_dir, fit, test):
    from dispo.evaluation.agree import agree_sets, load_sets

    sets = load_sets([reference_dir / f"{test}_step16_responses.jsonl"])
    tone = agree_sets(get_judge("tone", weights=fit), sets, tasks=["verbal"], n_boot=200)["sets"][sets[0].name][
        "verbal"
    ]
    lex = agree_sets(LexicalJudge(), sets, tasks=["verbal"], n_boot=200)["sets"][sets[0].name]["verbal"]
    # lexical: 0.204 / 0.166 with the sign flipped (docs/judges.md); tone fitted on the OTHER model
    assert tone["kappa"]["value"] >= 0.4 > lex["kappa"]["value"]
    assert tone["paper_metrics"]["asymmetry_sign_preserved"] is True
    assert lex["paper_metrics"]["asymmetry_sign_preserved"] is False


def test_tone_is_the_default_judge_and_lexical_stays_selectable():
    from dispo.core.config import compose_config

    assert compose_config([])["judge"]["name"] == "tone"
    assert compose_config(["judge=lexical"])["judge"]["name"] == "lexical"
    j = get_judge("tone", **{k: v for k, v in compose_config([])["judge"].items() if k != "name"})
    assert j.weights_name == "v1" and j.threshold == 0.5
