"""The non-degeneracy checks measure the run's own files: each can fail."""

from __future__ import annotations

import json

from dispo.reporting.health import health


def _run(tmp_path, metrics, data=None):
    (tmp_path / "results.json").write_text(json.dumps({"metrics": metrics, "claims": []}))
    if data is not None:
        (tmp_path / "data_report.json").write_text(json.dumps(data))
    return tmp_path


def _m(trunc, **content):
    return {"truncation_rate": {"value": trunc}, **{k: {"value": v} for k, v in content.items()}}


def _claim(cid, delta, evidence):
    checks = {"truncation": {"status": "pass", **({"evidence": {"n": 8}} if evidence else {})}}
    return {"id": cid, "claimed": {"delta": delta}, "checks": checks}


def test_a_degenerate_arc1_run_fails_every_check(tmp_path):
    # the smoke preset's shape: every answer cut, pass@1 0, reference targets, a claim with no evidence
    run = _run(
        tmp_path,
        {"base": _m(1.0, **{"pass@1": 0.0}), "student": _m(1.0, **{"pass@1": 0.0})},
        {"distilled_sft": 0, "distilled_pairs": 0, "counts": {"reference": 6}, "pairs": {"reference": 2}},
    )
    h = health(run, "arc1", {"claims": [_claim("student/svr_rate", 0.125, evidence=False)]})
    assert {k: v["ok"] for k, v in h.items()} == {
        "no_arm_fully_truncated": False,
        "some_content_score_above_0": False,
        "distilled_training_data": False,
        "verdict_with_evidence_for_every_nonzero_claim": False,
    }
    assert "8 reference" in h["distilled_training_data"]["detail"]
    assert "student/svr_rate" in h["verdict_with_evidence_for_every_nonzero_claim"]["detail"]


def test_a_healthy_arc1_run_passes_and_zero_claims_need_no_evidence(tmp_path):
    run = _run(
        tmp_path,
        {"base": _m(0.25, **{"pass@1": 0.0}), "student": _m(0.5, **{"pass@1": 0.0625})},
        {
            "distilled_sft": 7,
            "distilled_pairs": 3,
            "counts": {"gold": 7, "reference": 0},
            "pairs": {"counterexample": 3},
        },
    )
    falsified = {"claims": [_claim("student/pass@1", 0.0625, evidence=True), _claim("student/hedge_rate", 0.0, False)]}
    h = health(run, "arc1", falsified)
    assert all(v["ok"] for v in h.values()), h
    # one arm fully truncated is enough to fail, whatever the other does
    (tmp_path / "b").mkdir()
    run2 = _run(tmp_path / "b", {"base": _m(0.2, accuracy=0.3), "t": _m(1.0, accuracy=0.0)})
    assert health(run2, "arc2", {})["no_arm_fully_truncated"]["ok"] is False
    assert "distilled_training_data" not in health(run2, "arc2", {})  # arc 1 only


def test_arc3_needs_both_probe_classes(tmp_path):
    import numpy as np

    (tmp_path / "artifacts").mkdir()
    np.savez(tmp_path / "artifacts" / "features_eval.npz", y=np.zeros(10, dtype=int))
    (tmp_path / "results.json").write_text(
        json.dumps(
            {
                "metrics": {"eval": _m(0.1, accuracy=0.0)},
                "claims": [],
                "arc3": {"features": {"train": "artifacts/features_eval.npz"}},
            }
        )
    )
    (tmp_path / "manifest.json").write_text(json.dumps({"stages": {}}))
    (tmp_path / "config.yaml").write_text("model: {name: m}\n")
    h = health(tmp_path, "arc3", {})
    assert h["both_probe_classes"]["ok"] is False and "0 positives of 10" in h["both_probe_classes"]["detail"]
    np.savez(tmp_path / "artifacts" / "features_eval.npz", y=np.array([0, 1, 0, 1]))
    assert health(tmp_path, "arc3", {})["both_probe_classes"]["ok"] is True


def test_power_for_a_10_point_effect_is_measured_from_the_runs_paired_content_claims(tmp_path):
    """The three-arc run of 2026-12-07 tested arc 1 on 64 items and arc 2 on 48: a 10-point
    pass@1 change is found by the exact McNemar test with probability 0.63 and 0.35 even when
    every moved item moves one way. 120 items clear 0.8; more churn between the arms costs power."""

    def claims(n, up, down):
        return [
            {
                "id": "student:pass@1",
                "metric": "pass@1",
                "test": "mcnemar_exact",
                "n_pairs": n,
                "flips": {"up": up, "down": down},
            },
            {"id": "student:hedge_rate", "metric": "hedge_rate", "test": "mcnemar_exact", "n_pairs": 4, "flips": {}},
        ]

    def power_check(n, up, down):
        (tmp_path / "results.json").write_text(
            json.dumps({"metrics": {"base": _m(0.1)}, "claims": claims(n, up, down)})
        )
        return health(tmp_path, "arc1", {"settings": {"alpha": 0.05}})["power_for_10_points"]

    low = power_check(64, 1, 0)
    assert low["ok"] is False and "student:pass@1 0.63 (n 64, discordance 0.02)" in low["detail"], low
    assert "hedge_rate" not in low["detail"]  # a content score's test, not the disposition markers'
    assert power_check(120, 1, 0)["ok"] is True
    assert power_check(120, 20, 16)["ok"] is False  # 30% of items move: the same 10 points drown
    (tmp_path / "results.json").write_text(json.dumps({"metrics": {"base": _m(0.1)}, "claims": []}))
    assert "power_for_10_points" not in health(tmp_path, "arc1", {})  # no paired content claim: not measured
