"""Arc 2 end to end on tiny models: base -> cohorts -> attribution -> sweep -> replication."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.helpers.arcs import run_arc2
from tests.helpers.fake_domains import CohortChef as FakeChef


def _cfg(model="tiny-llama", *over):
    from dispo.core.config import compose_config

    return compose_config([f"model={model}", "arc.preset=smoke", "judge=lexical", *over], base={"arc": "arc2"})


@pytest.fixture()
def recipe_env(monkeypatch, tmp_path):
    import dispo.arcs.arc2.recipe as A

    monkeypatch.setattr(A, "make_domain", lambda cfg: FakeChef())
    return A, tmp_path


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    """One smoke run on tiny-llama, shared by the end-to-end and the resume test."""
    import dispo.arcs.arc2.recipe as A

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(A, "make_domain", lambda cfg: FakeChef())
        run, out = run_arc2(A, tmp_path_factory.mktemp("arc2"), _cfg())
    return run, out


def test_end_to_end_tiny_llama(e2e):
    run, out = e2e
    res = json.loads((run.dir / "results.json").read_text())
    arc2 = res["arc2"]
    # cohorts: humble -> hedging_appropriateness >= 4 in the base arm's lexical rubric
    coh = json.loads((run.dir / "artifacts/cohorts.json").read_text())
    expect = [
        int(s["scores"]["rubric:lexical"]["value"]["hedging_appropriateness"] >= 4) for s in run.read_samples("base")
    ]
    assert coh["labels"] == expect and arc2["cohorts"]["n_a"] == sum(expect)
    assert min(sum(expect), 8 - sum(expect)) >= 2
    # attribution artefacts
    for f in ("head_ranking.csv", "head_ranking.md", "head_heatmap.png", "head_activations.npz", "sweep.png"):
        assert (run.dir / "artifacts" / f).stat().st_size > 0, f
    rows = (run.dir / "artifacts/head_ranking.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 4  # 2 layers x 4 heads
    assert len(arc2["heads"]) == 2
    # the tempered heads are the top of the configured ranking
    rank = json.loads((run.dir / "artifacts/head_ranking.json").read_text())["magnitude"]["rows"]
    assert [[r["layer"], r["head"]] for r in rank[:2]] == arc2["heads"]
    # sweep arms, paired claims per lambda vs 1.0, on the disposition rate and on content
    assert set(run.arms()) == {"base", "lam1.0", "lam0.5", "rep.lam1.0", "rep.lam0.5"}
    sweep_claims = [c for c in res["claims"] if c["family"] == "sweep"]
    assert {(c["arm"], c["metric"]) for c in sweep_claims} == {
        ("lam0.5", "rubric.hedging_appropriateness.ge4"),
        ("lam0.5", "accuracy"),
    }
    assert all(c["baseline"] == "lam1.0" and c["n_pairs"] == 8 for c in sweep_claims)
    # lam1.0 reuses the base generations; lam0.5 ran with the hooks (different outputs, recorded intervention)
    base = {s["id"]: s["output"] for s in run.read_samples("base")}
    lam1 = {s["id"]: s["output"] for s in run.read_samples("lam1.0")}
    lam05 = run.read_samples("lam0.5")
    assert lam1 == base
    assert any(s["output"] != base[s["id"]] for s in lam05)
    assert lam05[0]["meta"]["intervention"]["tempering"] == {"heads": sorted(arc2["heads"]), "lambda": 0.5}
    # replication: sampling decoding, pooled arm ids item@seed
    rep = run.read_samples("rep.lam0.5")
    assert len(rep) == 8 and all(s["id"].endswith("@seed1") for s in rep)
    assert rep[0]["decoding"]["temperature"] == 0.7
    assert arc2["replication"]["outcome"] in {
        "replicated",
        "same_direction_not_significant",
        "not_replicated",
        "no_effect_to_replicate",
    }
    assert arc2["best_lambda"] == 0.5 and "monotonicity" in arc2
    report = (run.dir / "report.md").read_text()
    assert "Arc 2" in report and "Replication" in report and "lam0.5" in report


def test_resume_recomputes_nothing(e2e, recipe_env, monkeypatch):
    A, _ = recipe_env
    run, _ = e2e
    import dispo.arcs.arc2.attribution as attr
    import dispo.evaluation.evaluate as ev

    calls = []
    monkeypatch.setattr(ev, "generate_texts", lambda *a, **k: calls.append("gen") or [])
    monkeypatch.setattr(attr, "capture_head_activations", lambda *a, **k: calls.append("capture"))
    monkeypatch.setattr(A, "load_lm", lambda cfg: calls.append("load"))
    cfg = dict(run.config)
    rec = A.Arc2Tempering(cfg, run)
    rec.setup()
    before = (run.dir / "results.json").read_text()
    rec.run()
    assert calls == []
    assert json.loads((run.dir / "results.json").read_text())["arc2"]["heads"] == json.loads(before)["arc2"]["heads"]


def test_too_few_in_a_cohort_gives_a_verdict(recipe_env):
    A, tmp = recipe_env
    run, out = run_arc2(A, tmp, _cfg("tiny-llama", "arc.min_cohort=5"))
    assert out["verdict"]["status"] == "insufficient_cohorts"
    assert "need >= 5 each" in out["verdict"]["reason"]
    assert set(run.arms()) == {"base"}
    assert "insufficient_cohorts" in (run.dir / "report.md").read_text()


def test_config_errors(recipe_env):
    from dispo.core.errors import ConfigError
    from dispo.core.runs import Run

    A, tmp = recipe_env
    for over, msg in (
        ("disposition=brave", "unknown disposition"),
        ("arc.method=cosine", "arc.method"),
        ("arc.lambdas=[1.0]", "at least one value"),
    ):
        cfg = _cfg("tiny-llama", over)
        rec = A.Arc2Tempering(cfg, Run.create("train-arc2", cfg, "tiny-llama", root=tmp))
        with pytest.raises(ConfigError, match=msg):
            rec.setup()


@pytest.mark.parametrize("model", ["tiny-qwen3", "tiny-qwen3_5", "tiny-gemma4"])
def test_attribution_and_two_lambda_sweep_each_arch(recipe_env, model):
    A, tmp = recipe_env
    run, out = run_arc2(
        A, tmp, _cfg(model, "arc.replicate.seeds=[]", "arc.method=directional", "limit=6", "decoding.max_new_tokens=12")
    )
    att = out["attribution"]
    heads = [tuple(h) for h in out["heads"]]
    assert len(heads) == 2
    if model == "tiny-qwen3_5":
        assert {h[0] for h in heads} == {3}  # only the full-attention layer has heads
        assert [s["index"] for s in att["skipped_layers"]] == [0, 1, 2]
        assert "layer 0 skipped" in (run.dir / "report.md").read_text()
    assert set(run.arms()) == {"base", "lam1.0", "lam0.5"}
    lam05 = run.read_samples("lam0.5")
    base = {s["id"]: s["output"] for s in run.read_samples("base")}
    assert any(s["output"] != base[s["id"]] for s in lam05)
    assert out["replication"]["outcome"] == "not_run"


def test_monotonicity_and_replication_helpers():
    m = A_helpers().monotonicity([1.0, 0.5, 0.8], [0.5, 0.2, 0.4])
    assert m["lambdas"] == [1.0, 0.8, 0.5] and m["direction"] == "decreasing as lambda decreases" and m["monotone"]
    m = A_helpers().monotonicity([1.0, 0.9, 0.5], [0.5, 0.6, 0.4])
    assert m["monotone"] is False
    assert A_helpers().monotonicity([1.0, 0.5], [0.3, 0.3])["direction"] == "flat"
    ro = A_helpers().replication_outcome(0.25, {"delta": 0.2, "p": 0.01}, [{"delta": 0.2}])
    assert ro["outcome"] == "replicated"
    assert (
        A_helpers().replication_outcome(0.25, {"delta": -0.1, "p": 0.01}, [{"delta": -0.1}])["outcome"]
        == "not_replicated"
    )
    assert (
        A_helpers().replication_outcome(0.25, {"delta": 0.1, "p": 0.4}, [])["outcome"]
        == "same_direction_not_significant"
    )
    assert A_helpers().replication_outcome(0.0, {"delta": 0.1, "p": 0.4}, [])["outcome"] == "no_effect_to_replicate"


def A_helpers():
    import dispo.arcs.arc2.recipe as A

    return A


def test_cohort_labels_from_rubric_and_correct():
    A = A_helpers()
    samples = [
        {
            "id": "a",
            "scores": {
                "rubric:lexical": {"value": {"completeness": 4}, "status": "ok"},
                "correct:x": {"value": True, "status": "ok"},
            },
        },
        {
            "id": "b",
            "scores": {
                "rubric:lexical": {"value": {"completeness": 3}, "status": "ok"},
                "correct:x": {"value": False, "status": "ok"},
            },
        },
        {
            "id": "c",
            "scores": {
                "rubric:lexical": {"value": None, "status": "unscored"},
                "correct:x": {"value": True, "status": "ok"},
            },
        },
    ]
    lab = A.cohort_labels(samples, "persistent")
    assert list(lab["y"]) == [1, 0, -1] and lab["n_unscored"] == 1
    lab = A.cohort_labels(samples, "persistent", source="correct")
    assert list(lab["y"]) == [1, 0, 1] and lab["names"] == ("correct", "wrong")
    assert list(A.cohort_labels(samples, "correctness")["y"]) == [1, 0, 1]
    assert np.array_equal(A.cohort_labels(samples, "persistent", axis_min=3)["y"], [1, 1, -1])
