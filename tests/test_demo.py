"""`make demo`'s last screen: the outcome in plain words, from the run's own files."""

from __future__ import annotations

import json

from dispo.demo import FALSIFY_OVERRIDES, OVERRIDES, outcome_lines


def _claim(cid, delta, verdict, checks, reasons=None):
    return {
        "id": cid,
        "verdict": verdict,
        "claimed": {"delta": delta, "n_pairs": 16},
        "checks": checks,
        "reasons": reasons or [],
    }


def test_outcome_names_training_data_claims_evidence_and_reports(tmp_path):
    (tmp_path / "falsify").mkdir()
    (tmp_path / "falsify" / "deltas.png").write_bytes(b"png")
    (tmp_path / "data_report.json").write_text(
        json.dumps(
            {"n_sft": 7, "distilled_sft": 7, "counts": {"gold": 7, "reference": 0}, "n_pairs": 5, "distilled_pairs": 5}
        )
    )
    falsified = {
        "summary": {"SURVIVES": 0, "FALSIFIED": 1, "INCONCLUSIVE": 1},
        "claims": [
            _claim(
                "student/mean_tokens",
                -31.5,
                "FALSIFIED",
                {"truncation": {"status": "fail", "steps": [{"budget_factor": 2, "remeasured": {"delta": 4.0}}]}},
                ["truncation: with the token budget x2: sign flipped"],
            ),
            _claim("student/pass@1", 0.0, "INCONCLUSIVE", {}, ["statistics: no effect"]),
        ],
    }
    lines = outcome_lines(tmp_path, falsified)
    text = "\n".join(lines)
    assert lines[0].startswith("Trained on 7 SFT examples (7 distilled") and "0 reference" in lines[0]
    assert "on 16 held-out items" in text
    # the nonzero claim with its verdict and the delta re-measured by regeneration; the zero one is not a claim shown
    assert "student/mean_tokens: -31.5000 -> FALSIFIED; re-measured: budget x2 +4.0000" in text
    assert "why: truncation: with the token budget x2: sign flipped" in text
    assert "student/pass@1" not in text
    assert "0 survive, 1 falsified, 1 inconclusive" in text
    assert str(tmp_path / "falsify" / "report.md") in text and str(tmp_path / "falsify" / "deltas.png") in text


def test_outcome_says_so_when_nothing_differs(tmp_path):
    falsified = {"claims": [_claim("student/pass@1", 0.0, "INCONCLUSIVE", {})]}
    text = "\n".join(outcome_lines(tmp_path, falsified))
    assert "did not differ from the base model on 16 held-out items" in text
    assert "Trained on" not in text  # no data_report.json: nothing invented


def test_demo_uses_its_own_preset_and_a_short_falsify():
    from dispo.core.config import compose_config

    cfg = compose_config(list(OVERRIDES), base={"arc": "arc1"})
    arc = cfg["arc"]
    assert arc["preset"] == "demo" and arc["data"]["allow_reference_targets"] is False
    # the target-writing stage is a model stronger than the 135M student; decoding leaves room to finish
    assert arc["teachers"]["stages"]["synthesizer"]["model"] != cfg["model"]["name"]
    assert cfg["decoding"]["max_new_tokens"] >= 192 and cfg["limit"] >= 16
    fcfg = compose_config(list(FALSIFY_OVERRIDES))["falsify"]
    assert fcfg["seeds"] == [1] and fcfg["budget_factor_max"] == 2


def test_demo_teachers_follow_the_students_dtype():
    """One override switches the whole demo to fp32 (for CPUs without bf16 instructions)."""
    from dispo.core.config import compose_config

    for extra, want in (([], "bfloat16"), (["model.dtype=float32"], "float32")):
        cfg = compose_config([*OVERRIDES, *extra], base={"arc": "arc1"})
        stages = cfg["arc"]["teachers"]["stages"]
        assert cfg["model"]["dtype"] == want and {s["dtype"] for s in stages.values()} == {want}
    assert compose_config(list(OVERRIDES), base={"arc": "arc1"})["domain"]["order"] == "easiest"
