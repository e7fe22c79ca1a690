"""bench/run_all.py's summary: every row of an experiment's claims, runs and health checks
reaches bench/results.md (the file README links for the measured numbers)."""

from __future__ import annotations

import json

from tests.helpers.bench import load_bench


def _run_all():
    return load_bench("run_all")


def test_summary_renders_claims_runs_and_every_health_check(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    doc = {
        "title": "The three arcs",
        "settings": {"preset": "small", "falsify_overrides": ["falsify.seeds=[1]"]},
        "runs": [{"arc": "arc2", "train_s": 812.5, "healthy": False, "health": {"nested": {"ok": True}}}],
        "rows": [{"arc": "arc2", "claim": "lam0.5:pass@1", "claimed_delta": -0.0208, "verdict": "INCONCLUSIVE"}],
        "checks": [
            {"arc": "arc2", "check": "no_arm_fully_truncated", "ok": True, "detail": "base 0.00, lam0.5 0.02"},
            {"arc": "arc3", "check": "both_probe_classes", "ok": False, "detail": "0 positives of 64 train items"},
        ],
    }
    (results / "arcs_small.json").write_text(json.dumps(doc))
    md = _run_all().summarise(results).read_text()
    assert "## The three arcs" in md and "falsify.seeds=[1]" in md
    assert "| arc2 | lam0.5:pass@1 | -0.0208 | INCONCLUSIVE |" in md
    assert "| arc2 | 812.5 | False |" in md  # the nested health dict is left to the checks table
    assert "| arc3 | both_probe_classes | False | 0 positives of 64 train items |" in md
    assert "| arc2 | no_arm_fully_truncated | True | base 0.00, lam0.5 0.02 |" in md


def test_headline_has_a_row_per_lm_eval_workload_and_marks_a_missed_target(tmp_path):
    def write(name, ratio, prompts):
        doc = {
            "speedup_dispo_over_lm_eval": ratio,
            "settings": {"prompts": prompts, "max_new_tokens": 256, "batch_size": 16},
            "agreement": {"exact": prompts, "n": prompts},
        }
        (tmp_path / f"{name}.json").write_text(json.dumps(doc))

    write("vs_lm_eval", 1.6, 16)
    write("vs_lm_eval_refill", 1.32, 64)
    rows = [r for r in _run_all().headline(tmp_path) if "lm-eval HFLM" in r["measure"]]
    assert [r["measured"] for r in rows] == [1.6, 1.32]
    assert rows[0]["target"] == ">= 1.5" and rows[1]["target"] == ">= 1.5 (not met)"
    assert "64 prompts" in rows[1]["measure"] and "identical 64/64" in rows[1]["detail"]


def test_sft_headline_says_where_each_side_spent_its_training_time(tmp_path):
    doc = {
        "ratio_dispo_over_trl": 0.8,
        "dispo": {"tokens_per_s": 170.0},
        "trl": {"tokens_per_s": 212.5},
        "profile": {
            "dispo": {
                "step_seconds_total": 19.5,
                "between_steps_seconds": 1.9,
                "top_ops_self_cpu_share": {"aten::mm": 0.41},
            },
            "trl": {"step_seconds_total": 15.0, "between_steps_seconds": 1.6, "top_ops_self_cpu_share": {}},
        },
    }
    (tmp_path / "sft_vs_trl.json").write_text(json.dumps(doc))
    (row,) = [r for r in _run_all().headline(tmp_path) if "LoRA SFT" in r["measure"]]
    assert row["target"] == ">= 1.0 (not met)"
    assert "dispo 19.5 s in optimizer steps + 1.9 s between (top ops by self CPU: aten::mm 41%)" in row["detail"]
    assert "trl 15.0 s in optimizer steps + 1.6 s between" in row["detail"]
    del doc["profile"]
    (tmp_path / "sft_vs_trl.json").write_text(json.dumps(doc))
    (row,) = [r for r in _run_all().headline(tmp_path) if "LoRA SFT" in r["measure"]]
    assert row["detail"] == "170.0 vs 212.5 tok/s"
