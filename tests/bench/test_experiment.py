"""bench/experiment.py --compare: a rerun matches the committed results only when every claim
keeps its verdict and its delta (within the tolerance) and every health check its outcome."""

from __future__ import annotations

import json

from tests.helpers.bench import load_bench


def _result(delta=0.1, verdict="FALSIFIED", ok=True, extra_claim=False):
    rows = [
        {"arc": "arc1", "claim": "student:pass@1", "claimed_delta": delta, "verdict": verdict},
        {"arc": "arc3", "claim": "probe.fresh_auc", "claimed_delta": None, "verdict": "INCONCLUSIVE"},
    ]
    if extra_claim:
        rows.append({"arc": "arc2", "claim": "arc2.lam0.5.pass@1", "claimed_delta": -0.02, "verdict": "FALSIFIED"})
    runs = [{"arc": "arc1", "health": {"distilled_data": {"ok": ok, "detail": "24/24"}}}]
    return {"rows": rows, "runs": runs}


def test_identical_results_match():
    c = load_bench("experiment").compare(_result(), _result(), 0.0)
    assert c["all_match"] and c["claims_matching"] == c["claims"] == 2 and c["health_differs"] == []


def test_a_moved_delta_a_changed_verdict_a_lost_claim_or_health_each_break_the_match():
    compare = load_bench("experiment").compare
    moved = compare(_result(), _result(delta=0.1 + 1e-6), 0.0)
    assert not moved["all_match"] and moved["rows"][0]["abs_diff"] > 0
    assert compare(_result(), _result(delta=0.1 + 1e-6), 1e-3)["all_match"]  # within the tolerance
    assert not compare(_result(), _result(verdict="SURVIVES"), 1.0)["all_match"]
    lost = compare(_result(extra_claim=True), _result(), 0.0)
    assert not lost["all_match"] and lost["claims"] == 3 and lost["claims_matching"] == 2
    sick = compare(_result(), _result(ok=False), 0.0)
    assert not sick["all_match"] and sick["health_differs"] == ["arc1:distilled_data"]


def test_nothing_to_compare_is_not_a_match():
    assert not load_bench("experiment").compare({"rows": []}, {"rows": []}, 0.0)["all_match"]


def test_summary_shows_the_comparison(tmp_path):
    exp = load_bench("experiment")
    doc = _result(delta=0.2)
    doc["comparison"] = {"rerun_of": "arcs_small", **exp.compare(_result(), doc, 0.0)}
    (tmp_path / "arcs_small_rerun.json").write_text(json.dumps(doc))
    md = load_bench("run_all").summarise(tmp_path).read_text()
    assert "Rerun of `arcs_small`: 1/2 claims match" in md
    assert "| arc1 | student:pass@1 | 0.1 | 0.2 |" in md


def test_a_probe_claims_value_is_compared_and_each_number_is_placed_in_the_committed_ci():
    """The rerun of 2026-12-07: a probe claim has no delta, only a value (its AUC), and a rerun
    that moved it must not match by having two Nones; within_ci says whether the rerun's number
    lies in the committed claim's own interval (the stated noise)."""
    compare = load_bench("experiment").compare

    def doc(auc, delta):
        return {
            "rows": [
                {"arc": "arc3", "claim": "probe.cv.auc@C=1", "claimed_value": auc, "verdict": "INCONCLUSIVE"},
                {
                    "arc": "arc1",
                    "claim": "s:pass@1",
                    "claimed_delta": delta,
                    "ci_lo": 0.0,
                    "ci_hi": 0.05,
                    "verdict": "X",
                },
            ],
            "runs": [],
        }

    c = compare(doc(0.84, 0.025), doc(0.81, 0.06), 0.0)
    rows = {r["claim"]: r for r in c["rows"]}
    assert rows["probe.cv.auc@C=1"]["match"] is False and abs(rows["probe.cv.auc@C=1"]["abs_diff"] - 0.03) < 1e-12
    assert rows["s:pass@1"]["within_ci"] is False and c["within_ci"] == "0/1"
    assert c["verdicts_matching"] == 2
    assert compare(doc(0.84, 0.025), doc(0.84, 0.01), 0.0)["within_ci"] == "1/1"
