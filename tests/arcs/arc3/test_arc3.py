"""Arc 3 recipe end to end on tiny-llama: real generation, features, lexical judge; the content
labels come from a small fake Chef domain so both classes exist (a random-init model's answers
would all be wrong)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dispo.core.errors import ConfigError
from tests.helpers.fake_domains import FakeChef


@pytest.fixture
def arc3_env(tmp_path, monkeypatch):
    import dispo.arcs.arc3.recipe as A

    monkeypatch.setattr(A, "make_domain", lambda cfg: FakeChef())
    monkeypatch.setenv("DISPO_RUNS", str(tmp_path / "runs"))
    return tmp_path


def _cfg(tmp_path, *extra):
    from dispo.core.config import compose_config

    return compose_config(
        ["model=tiny-llama", "arc.preset=smoke", "judge=lexical", f"output_dir={tmp_path / 'runs'}", *extra],
        base={"arc": "arc3"},
    )


def test_arc3_smoke_end_to_end_and_resume(arc3_env, monkeypatch):
    from dispo.arcs.train_run import run_train
    from dispo.core.runs import Run
    from dispo.probes.features import load_npz

    cfg = _cfg(arc3_env, "arc.C=[1.0]")
    assert cfg["domain"]["name"] == "chef" and cfg["limit"] == 8 and cfg["arc"]["cv"] == 2
    run = run_train("arc3", [], cfg=cfg)
    m = run.manifest
    assert m["status"] == "completed", m.get("error")
    for st in (
        "arm:eval",
        "arm:fresh",
        "features:eval",
        "features:fresh",
        "step1_cv",
        "step2_fresh",
        "step3_axes",
        "step4_pool",
        "sidecar",
    ):
        assert run.stage_done(st), st

    # features: labels are the fake domain's truth, X is the frozen model's h_last
    tr = load_npz(run.dir / "artifacts/features_eval.npz")
    assert tr["X"].shape == (8, 64) and tr["X_pool"].shape == (8, 64)
    assert tr["y"].tolist() == [FakeChef.truth(i) for i in tr["ids"]]
    assert sorted(tr["ids"].tolist()) == sorted(f"fake/eval/{k}" for k in range(8))
    samples = {s["id"]: s for s in run.read_samples("eval")}
    import torch

    from dispo.models.loading import load_model

    lm = load_model("tiny-llama")
    s0 = samples[str(tr["ids"][0])]
    tok = lm.tokenizer
    ids = (
        tok(s0["prompt"], add_special_tokens=False)["input_ids"]
        + tok(s0["output"], add_special_tokens=False)["input_ids"]
    )
    with torch.inference_mode():
        h = lm.model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states[-1][0, -1].numpy()
    np.testing.assert_allclose(tr["X"][0], h, atol=1e-4)

    # the five steps: 1, 2, 4 computed; 3 from the lexical rubric or skipped with a reason; 5 skipped
    res = run.results
    steps = res["arc3"]["steps"]
    for name in ("step1_cv", "step2_fresh", "step4_pool"):
        row = steps[name]["rows"][0]
        assert row["status"] == "done" and row["mode"] in ("pass", "fail", "uniform-output", "capability-cliff")
    assert 0 <= steps["step1_cv"]["rows"][0]["cv"]["auc"] <= 1
    assert 0 <= steps["step2_fresh"]["rows"][0]["fresh"]["auc"] <= 1
    assert steps["step2_fresh"]["rows"][0]["fresh"]["n_pos"] == 4
    assert (
        steps["step5_second_model"]["status"] == "skipped" and "second_model" in steps["step5_second_model"]["reason"]
    )
    assert steps["step3_axes"]["status"] in ("done", "skipped") and (
        steps["step3_axes"].get("rows") or steps["step3_axes"]["reason"]
    )

    # sidecar: gated answers carry the hedge and are re-judged as hedges
    side = res["arc3"]["sidecar"]
    assert side["status"] == "done" and side["thr_source"] == "cv"
    gated = run.read_samples("sidecar")
    hedge = cfg["arc"]["sidecar"]["hedge_text"]
    base = {s["id"]: s for s in run.read_samples("fresh")}
    n_gated = 0
    for s in gated:
        g = s["meta"]["gate"]
        assert g["gated"] == (g["p_correct"] < g["thr"])
        if g["gated"]:
            n_gated += 1
            assert s["output"] == hedge + base[s["id"]]["output"]
            assert s["scores"]["verbal:lexical"]["value"] == "hedge"
        else:
            assert s["output"] == base[s["id"]]["output"]
    assert n_gated == side["n_gated"]
    cells = side["measured"]["sidecar"]["cells"]
    assert cells["hedged_right"] + cells["hedged_wrong"] >= n_gated

    # claims carry what falsify needs; figures and report exist
    probe_claims = [c for c in res["claims"] if c.get("kind") == "probe"]
    assert {c["id"] for c in probe_claims} >= {"probe.cv.auc@C=1", "probe.fresh.asymmetry@C=1"}
    for c in probe_claims:
        assert (run.dir / c["artifacts"]["train"]).exists() and (run.dir / c["artifacts"]["test"]).exists()
        assert c["holds"] == (c["value"] >= c["bar"] if c["op"] == ">=" else c["value"] <= c["bar"])
    assert any(c.get("id") == "sidecar.assertion_asymmetry" for c in res["claims"])
    for png in ("auc_collapse.png", "pca_fresh.png"):
        assert (run.dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (run.dir / "report.md").read_text()
    assert "five-step" in report and "Sidecar" in report and "auc_collapse.png" in report

    # resume: nothing finished is recomputed
    import dispo.arcs.arc3.recipe as A
    import dispo.probes.features as F

    def boom(*a, **k):
        raise AssertionError("recomputed a finished stage")

    monkeypatch.setattr(F, "extract", boom)
    monkeypatch.setattr(A, "load_lm", boom)
    before = json.loads((run.dir / "manifest.json").read_text())["stages"]
    run2 = run_train("arc3", [], cfg=cfg, run_dir=run.dir)
    after = Run.open(run2.dir).manifest
    assert after["status"] == "completed"
    assert all(after["stages"][k]["finished"] == v["finished"] for k, v in before.items())


def test_arc3_abstain_mode_and_fixed_threshold(arc3_env):
    from dispo.arcs.train_run import run_train

    cfg = _cfg(arc3_env, "arc.C=[1.0]", "arc.sidecar.mode=abstain", "arc.sidecar.threshold=0.99", "limit=6")
    run = run_train("arc3", [], cfg=cfg)
    assert run.manifest["status"] == "completed", run.manifest.get("error")
    side = run.results["arc3"]["sidecar"]
    assert side["thr"] == 0.99 and side["mode"] == "abstain"
    text = cfg["arc"]["sidecar"]["abstain_text"]
    for s in run.read_samples("sidecar"):
        if s["meta"]["gate"]["gated"]:
            assert s["output"] == text and s["scores"]["verbal:lexical"]["value"] == "hedge"


@pytest.mark.parametrize(
    "override, match",
    [
        ("arc.sidecar.mode=shout", "arc.sidecar.mode"),
        ("arc.sidecar.threshold=1.5", "arc.sidecar.threshold"),
        ("arc.C=[0]", "arc.C"),
        ("arc.cv=1", "arc.cv"),
        ("arc.layers=first", "arc.layers"),
    ],
)
def test_arc3_bad_config(arc3_env, override, match):
    from dispo.arcs.arc3.recipe import Arc3Sidecar

    cfg = _cfg(arc3_env, override)
    with pytest.raises(Exception, match=match) as e:
        Arc3Sidecar(cfg, run=None).setup()
    assert getattr(e.value, "code", None) == 2


def test_arc3_needs_a_domain_with_both_splits(tmp_path):
    from dispo.arcs.arc3.recipe import Arc3Sidecar
    from dispo.core.config import compose_config

    cfg = compose_config(["model=tiny-llama", "domain=mcas"], base={"arc": "arc3"})
    with pytest.raises(ConfigError, match="split 'fresh'.*domain=chef or domain=code"):
        Arc3Sidecar(cfg, run=None).setup()


def test_arc3_refuses_fresh_items_the_probe_was_trained_on(tmp_path):
    """code's fresh split is HumanEval/82-163: eval limit 100 would train on 18 of them."""
    from dispo.arcs.arc3.recipe import Arc3Sidecar
    from dispo.core.config import compose_config

    cfg = compose_config(["model=tiny-llama", "domain=code", "limit=100"], base={"arc": "arc3"})
    with pytest.raises(ConfigError, match=r"share 18 problems \(e.g. HumanEval/82\); lower limit"):
        Arc3Sidecar(cfg, run=None).setup()
    Arc3Sidecar(compose_config(["model=tiny-llama", "domain=code", "limit=82"], base={"arc": "arc3"}), run=None).setup()


def test_labels_and_gate_helpers():
    from dispo.arcs.arc3.recipe import gate_outputs, labels_from_samples

    def smp(i, correct, rubric=None):
        sc = {
            "correct:keywords": {"status": "ok", "value": correct}
            if correct is not None
            else {"status": "unscored", "value": None},
            "coverage:keywords": {"status": "ok", "value": 1.0 if correct else 0.0},
        }
        if rubric:
            sc["rubric:lexical"] = {"status": "ok", "value": rubric}
        return {"id": str(i), "scores": sc}

    lab = labels_from_samples(
        [smp(0, True, {"completeness": 5, "factual_accuracy": 3}), smp(1, False), smp(2, None, {"completeness": 4})]
    )
    assert lab["y"].tolist() == [1, 0, -1]
    assert lab["axes"]["completeness"].tolist() == [1, -1, 1]
    assert lab["axes"]["factual_accuracy"].tolist() == [0, -1, -1]
    out, g = gate_outputs(["a", "b", "c"], np.array([0.2, 0.5, 0.9]), 0.5, "hedge", "H: ", "X")
    assert out == ["H: a", "b", "c"] and g.tolist() == [True, False, False]
    out, _ = gate_outputs(["a", "b"], np.array([0.1, 0.6]), 0.5, "abstain", "H: ", "X")
    assert out == ["X", "b"]


def test_arc3_real_chef_and_lexical_judge(tmp_path, monkeypatch):
    """No fakes: the real Chef generators (eval = generator A, fresh = generator B) and the lexical
    judge. A random-init model's answers are labelled by checklist coverage like any other."""
    from dispo.arcs.train_run import run_train
    from dispo.probes.features import load_npz

    monkeypatch.setenv("DISPO_RUNS", str(tmp_path / "runs"))
    cfg = _cfg(tmp_path, "arc.C=[1.0]", "limit=6")
    run = run_train("arc3", [], cfg=cfg)
    assert run.manifest["status"] == "completed", run.manifest.get("error")
    for split, gen in (("eval", "chef/a/"), ("fresh", "chef/b/")):
        f = load_npz(run.dir / f"artifacts/features_{split}.npz")
        samples = {s["id"]: s for s in run.read_samples(split)}
        assert len(f["ids"]) == 6 and all(str(i).startswith(gen) for i in f["ids"])
        for i, y, cov in zip(f["ids"], f["y"], f["coverage"]):
            sc = samples[str(i)]["scores"]
            ckey = next(k for k in sc if k.startswith("correct:"))
            assert bool(y) == sc[ckey]["value"] and bool(y) == (cov >= 0.5)
    steps = run.results["arc3"]["steps"]
    row = steps["step1_cv"]["rows"][0]
    n_pos = int(load_npz(run.dir / "artifacts/features_eval.npz")["y"].sum())
    if n_pos in (0, 6):
        assert row["status"] == "skipped" and "single class" in row["reason"]
        assert run.results["arc3"]["sidecar"]["status"] == "skipped"
    else:
        assert row["status"] == "done"
