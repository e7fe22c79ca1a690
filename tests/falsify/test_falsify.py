"""Plant each of the paper's failure kinds in constructed arms and check falsify names it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dispo.core.config import compose_config
from dispo.core.runs import Run
from dispo.core.types import Score
from dispo.falsify.run import falsify_run
from dispo.stats.summary import claims

N = 40


def sample(i, output, correct=None, finish="stop", hedge=None, hedge_version="hedge-v1", decoding=None):
    scores = {}
    if correct is not None:
        scores["correct:tests"] = Score("tests.correct", "humaneval-v1", bool(correct)).to_json()
    if hedge is not None:
        scores["hedge:lexical"] = Score("lexical.hedge", hedge_version, bool(hedge)).to_json()
    return {
        "id": f"item/{i}",
        "prompt": f"q{i}",
        "messages": [{"role": "user", "content": f"q{i}"}],
        "output": output,
        "finish_reason": finish,
        "n_tokens": 10,
        "decoding": decoding or {},
        "seed": 0,
        "scores": scores,
    }


def make_run(tmp_path, arms: dict[str, list[dict]], metrics: list[str], has_model=True, extra_claim=None):
    cfg = compose_config(["model=tiny-llama", "decoding.max_new_tokens=512"])
    run = Run.create("eval", cfg, "tiny-llama", root=tmp_path)
    for arm, s in arms.items():
        run.write_samples(arm, s)
        run.complete_stage(
            f"arm:{arm}",
            {
                "decoding": cfg["decoding"],
                "seed": 0,
                "judge": {"name": "lexical"},
                "model": {"adapter": None},
                "system_prompt": None,
            },
        )
    cl = claims({"base": arms["base"], "treat": arms["treat"]}, "base", metrics)
    if extra_claim:
        cl.append(extra_claim)
    run.write_results({}, cl)
    if not has_model:
        run.record("has_model", False)
    run.finish()
    return run


def by_metric(result, metric):
    return next(c for c in result["claims"] if c["metric"] == metric)


def test_truncated_baseline_gain_is_falsified_as_truncation(tmp_path):
    # at 512 tokens 25 baseline answers are cut off (and fail); with the budget doubled they finish and pass
    def base_at(budget):
        out = []
        for i in range(N):
            truncated = 10 <= i < 35 and budget < 1024
            out.append(
                sample(
                    i,
                    "long reasoning ...",
                    correct=(i < 5) or (10 <= i < 35 and not truncated),
                    finish="length" if truncated else "stop",
                )
            )
        return out

    treat = [sample(i, "def f(): ...", correct=i < 20) for i in range(N)]
    run = make_run(tmp_path, {"base": base_at(512), "treat": treat}, ["pass@1"])
    calls = []

    def regenerate(arm, decoding, seed, ids=None):
        calls.append((arm, decoding["max_new_tokens"], decoding.get("temperature")))
        return base_at(decoding["max_new_tokens"]) if arm == "base" else treat

    res = falsify_run(run.dir, regenerate=regenerate, progress=False)
    c = by_metric(res, "pass@1")
    assert c["claimed"]["delta"] == pytest.approx(20 / 40 - 5 / 40)
    assert c["verdict"] == "FALSIFIED"
    assert any(r.startswith("truncation") for r in c["reasons"])
    tr = c["checks"]["truncation"]
    assert tr["truncation_before"]["base"] == pytest.approx(25 / 40)
    assert tr["steps"][0]["truncation_after"]["base"] == 0
    assert ("base", 1024, 0.0) in calls  # the budget was really doubled
    saved = json.loads((run.dir / "falsify" / "falsify.json").read_text())
    assert saved["claims"][0]["verdict"] == "FALSIFIED"
    assert (run.dir / "falsify" / "report.md").read_text().count("FALSIFIED") >= 1


def test_larger_budget_regenerates_only_the_outputs_that_hit_the_limit_when_greedy(tmp_path):
    # greedy arms: 4 base and 2 treat outputs were cut at 512 tokens; the others stopped earlier
    # and a larger budget cannot change them, so only the cut ones are generated again
    cut = {"base": {3, 11, 20, 33}, "treat": {5, 30}}

    def arm_at(arm, budget, ids=None):
        out = []
        for i in range(N):
            finished = i not in cut[arm] or budget >= 1024
            ok = (i < 8 if arm == "base" else i < 16) or (i in cut[arm] and budget >= 1024)
            out.append(sample(i, f"{arm} {i} @{budget}", correct=ok, finish="stop" if finished else "length"))
        return [s for s in out if ids is None or s["id"] in ids]

    run = make_run(tmp_path, {"base": arm_at("base", 512), "treat": arm_at("treat", 512)}, ["pass@1"])
    asked = {}

    def regenerate(arm, decoding, seed, ids=None):
        asked[arm] = ids
        return arm_at(arm, decoding["max_new_tokens"], ids)

    res = falsify_run(run.dir, ["falsify.checks=[truncation]"], regenerate=regenerate, progress=False)
    tr = by_metric(res, "pass@1")["checks"]["truncation"]
    assert {arm: sorted(ids) for arm, ids in asked.items()} == {
        arm: sorted(f"item/{i}" for i in cut[arm]) for arm in cut
    }
    step = tr["steps"][0]
    assert step["regenerated"] == {"base": 4, "treat": 2}
    assert step["truncation_after"] == {"base": 0, "treat": 0}
    # re-measured on all 40 pairs: the kept outputs plus the regenerated ones (now passing)
    assert step["remeasured"]["base"] == pytest.approx(11 / 40)  # 8 + items 11, 20, 33
    assert step["remeasured"]["treat"] == pytest.approx(17 / 40)  # 16 + item 30
    assert tr["evidence"]["tokens_regenerated"] == 6 * 10
    assert "74 greedy outputs that stopped before the limit are kept" in tr["evidence"]["how"]


def test_larger_budget_regenerates_a_sampled_arm_whole(tmp_path):
    dec = {"temperature": 0.7, "top_p": 0.95, "max_new_tokens": 512}
    base = [sample(i, "b", correct=i < 8, finish="length" if i == 3 else "stop", decoding=dec) for i in range(N)]
    treat = [sample(i, "t", correct=i < 20, decoding=dec) for i in range(N)]
    cfg = compose_config(["model=tiny-llama", "decoding=sampling", "decoding.max_new_tokens=512"])
    assert cfg["decoding"]["temperature"] > 0
    run = make_run(tmp_path, {"base": base, "treat": treat}, ["pass@1"])
    run.complete_stage("arm:base", {"decoding": cfg["decoding"], "seed": 0, "judge": {"name": "lexical"}})
    run.complete_stage("arm:treat", {"decoding": cfg["decoding"], "seed": 0, "judge": {"name": "lexical"}})
    asked = []

    def regenerate(arm, decoding, seed, ids=None):
        asked.append((arm, ids))
        return base if arm == "base" else treat

    falsify_run(run.dir, ["falsify.checks=[truncation]"], regenerate=regenerate, progress=False)
    assert asked and all(ids is None for _, ids in asked)


def test_arms_scored_with_different_judge_prompts_are_rescored_apples_to_apples(tmp_path):
    # identical hedging in both arms' text; the treatment arm was scored with a lenient prompt version
    text = ["The answer is 4." if i % 4 else "I think it might be 4, but I'm not sure." for i in range(N)]
    base = [sample(i, text[i], hedge="might" in text[i]) for i in range(N)]
    treat = [sample(i, text[i], hedge=True, hedge_version="hedge-v2-lenient") for i in range(N)]
    run = make_run(tmp_path, {"base": base, "treat": treat}, ["hedge_rate"])
    res = falsify_run(run.dir, regenerate=lambda a, d, s, ids=None: base if a == "base" else treat, progress=False)
    c = by_metric(res, "hedge_rate")
    assert c["claimed"]["delta"] > 0.5
    assert c["verdict"] == "FALSIFIED"
    a2a = c["checks"]["apples_to_apples"]
    assert a2a["status"] == "fail" and "judge-asymmetry" in a2a["reason"]
    assert a2a["remeasured"]["delta"] == pytest.approx(0.0)


def test_gain_that_disappears_with_new_seeds_is_falsified_as_seed_variance(tmp_path):
    base = [sample(i, "x", correct=i < 10) for i in range(N)]
    treat = [sample(i, "y", correct=i < 24) for i in range(N)]  # greedy seed-0 'win'
    run = make_run(tmp_path, {"base": base, "treat": treat}, ["pass@1"])

    def regenerate(arm, decoding, seed, ids=None):
        if decoding.get("temperature", 0) == 0:
            return base if arm == "base" else treat
        rng = np.random.default_rng(seed * 7 + (arm == "treat"))
        ok = rng.random(N) < 0.3  # under sampling both arms are the same 30% model
        return [sample(i, "z", correct=bool(ok[i])) for i in range(N)]

    res = falsify_run(run.dir, regenerate=regenerate, progress=False)
    c = by_metric(res, "pass@1")
    assert c["checks"]["statistics"]["status"] == "pass"  # the original paired test calls it significant
    assert c["verdict"] == "FALSIFIED"
    sv = c["checks"]["seed_variance"]
    assert sv["status"] == "fail" and "seed-variance" in sv["reason"]
    assert [s["seed"] for s in sv["per_seed"]] == [1, 2, 3]


def test_genuine_gain_survives(tmp_path):
    # the same model with a correct hint: the gain holds at any budget and seed
    base = [sample(i, "x", correct=i < 10) for i in range(N)]
    treat = [sample(i, "y", correct=i < 32) for i in range(N)]
    run = make_run(tmp_path, {"base": base, "treat": treat}, ["pass@1"])

    def regenerate(arm, decoding, seed, ids=None):
        rng = np.random.default_rng(seed)
        flip = rng.random(N) < 0.05  # a little sampling noise on both arms
        src = base if arm == "base" else treat
        return [
            sample(i, s["output"], correct=s["scores"]["correct:tests"]["value"] ^ bool(flip[i]))
            for i, s in enumerate(src)
        ]

    res = falsify_run(run.dir, regenerate=regenerate, progress=False)
    c = by_metric(res, "pass@1")
    assert c["verdict"] == "SURVIVES", c["reasons"]
    assert res["summary"]["SURVIVES"] == 1


def test_gain_inside_the_noise_is_inconclusive(tmp_path):
    base = [sample(i, "x", correct=i < 10) for i in range(N)]
    treat = [sample(i, "y", correct=i < 12) for i in range(N)]
    run = make_run(tmp_path, {"base": base, "treat": treat}, ["pass@1"])
    res = falsify_run(run.dir, regenerate=lambda a, d, s, ids=None: base if a == "base" else treat, progress=False)
    c = by_metric(res, "pass@1")
    assert c["verdict"] == "INCONCLUSIVE"
    assert any("inside the noise" in r for r in c["reasons"])


def test_imported_phase0_humaneval_significant_but_unverifiable(tmp_path, reference_dir):
    from dispo.evaluation.import_run import import_arm

    f = reference_dir / "phase0_humaneval_n512.jsonl"
    run = import_arm(f, "baseline", field_map={"passed": "baseline_passed"}, domain="code", root=tmp_path)
    run = import_arm(f, "dd", run_dir=run.dir, field_map={"passed": "dd_passed"})
    res = falsify_run(run.dir, progress=False)
    c = res["claims"][0]
    assert c["checks"]["statistics"]["status"] == "pass"  # resampling items calls the gain significant
    assert c["claimed"]["p"] < 1e-4
    assert c["verdict"] == "INCONCLUSIVE"
    assert c["checks"]["seed_variance"]["status"] == "skipped"
    assert c["checks"]["truncation"]["status"] == "skipped"  # no finish_reason in the file
    report = (run.dir / "falsify" / "report.md").read_text()
    assert "could not run" in report and "no model" in report


def _probe_claim(claim_id: str, value: float, C: float) -> dict:
    return {
        "id": claim_id,
        "kind": "probe",
        "metric": "probe_auc",
        "value": value,
        "C": C,
        "recompute": {"train": "artifacts/train.npz", "test": "artifacts/fresh.npz", "x_key": "X"},
    }


def _probe_run(tmp_path, claim: dict, train: dict, fresh: dict):
    """A finished arc-3 run whose one probe claim names artifacts/train.npz and fresh.npz."""
    run = Run.create("train-arc3", compose_config(["model=tiny-llama"]), "tiny-llama", root=tmp_path)
    run.write_npz("artifacts/train.npz", **train)
    run.write_npz("artifacts/fresh.npz", **fresh)
    run.write_results({}, [claim])
    run.finish()
    return run


def test_probe_that_separates_within_distribution_only_is_falsified(tmp_path):
    rng = np.random.default_rng(0)
    n, d = 120, 16
    y_tr = rng.random(n) < 0.5
    X_tr = rng.normal(size=(n, d))
    X_tr[:, 0] += np.where(y_tr, 2.5, -2.5)  # in distribution, dimension 0 gives the label away
    n_fr = 400  # enough fresh items that the AUC's whole interval sits below the bar
    y_fr = rng.random(n_fr) < 0.5
    X_fr = rng.normal(size=(n_fr, d))  # fresh prompts: that cue is gone
    claim = _probe_claim("probe.cv.auc@C=1", 0.97, 1.0)
    run = _probe_run(tmp_path, claim, {"X": X_tr, "y": y_tr.astype(int)}, {"X": X_fr, "y": y_fr.astype(int)})
    res = falsify_run(run.dir, progress=False)
    c = res["claims"][0]
    assert c["verdict"] == "FALSIFIED"
    assert "fresh-collapse" in c["reasons"][0]
    assert c["checks"]["arc_specific"]["fresh"]["auc_ci"][1] < 0.63
    # the same probe on a fresh split that keeps the cue survives the check
    X_ok = rng.normal(size=(n_fr, d))
    X_ok[:, 0] += np.where(y_fr, 2.5, -2.5)
    noise = {k: rng.integers(20, 300, size=m) for k, m in (("train", n), ("fresh", n_fr))}  # unrelated to y
    run2 = _probe_run(
        tmp_path,
        claim,
        {"X": X_tr, "y": y_tr.astype(int), "n_response_tokens": noise["train"]},
        {"X": X_ok, "y": y_fr.astype(int), "n_response_tokens": noise["fresh"]},
    )
    c2 = falsify_run(run2.dir, progress=False)["claims"][0]
    assert c2["checks"]["arc_specific"]["status"] == "pass"
    assert c2["verdict"] == "SURVIVES"
    assert c2["checks"]["arc_specific"]["evidence"]["length_baseline"]["auc"] < 0.7


def test_probe_that_answer_length_explains_is_not_shown_to_survive(tmp_path):
    """Found by the arc-3 run on code (2026-12-07): the hidden-state probe's fresh AUC 0.706
    was matched by a probe on the answer's token count (0.694). A probe that length alone
    explains is flagged (INCONCLUSIVE), and one with no token counts anywhere is not checked."""
    rng = np.random.default_rng(1)
    n, d = 120, 16
    claim = _probe_claim("probe.fresh.auc@C=1", 0.8, 1.0)

    def split(with_lengths: bool) -> dict:
        y = rng.random(n) < 0.5
        length = np.where(y, 80, 260) + rng.integers(0, 60, size=n)  # wrong answers run long
        X = rng.normal(size=(n, d))
        X[:, 0] += (length - 170) / 40.0  # the hidden state carries the length, nothing else
        return {"X": X, "y": y.astype(int), **({"n_response_tokens": length} if with_lengths else {})}

    def falsified(with_lengths: bool):
        run = _probe_run(tmp_path, claim, split(with_lengths), split(with_lengths))
        return falsify_run(run.dir, progress=False)["claims"][0]

    c = falsified(with_lengths=True)
    check = c["checks"]["arc_specific"]
    assert check["status"] == "flag" and c["verdict"] == "INCONCLUSIVE"
    assert "length-baseline" in check["reason"] and check["evidence"]["length_baseline"]["auc"] > 0.8
    c = falsified(with_lengths=False)
    assert c["checks"]["arc_specific"]["status"] == "flag" and c["verdict"] == "INCONCLUSIVE"
    assert "not checked against the answer-length baseline" in c["checks"]["arc_specific"]["reason"]


def test_probe_a_hair_above_answer_length_on_82_items_is_not_shown_to_survive(tmp_path):
    """The arc-3 run on code (2026-12-07, bf16): fresh AUC 0.695 against 0.673 for answer length,
    a margin of 0.02 on 82 items, survived a point-estimate rule. Here the hidden state carries
    the length and a weak cue of its own: its AUC is above length's by more than 0.02, but the
    paired interval over the 82 fresh items reaches 0, so the claim is INCONCLUSIVE; with 3000
    items the same generator's gain is shown and the claim survives."""

    def run_with(n: int):
        rng = np.random.default_rng(5)

        def split() -> dict:
            y = rng.random(n) < 0.35
            length = np.where(y, 120, 180) + rng.normal(0, 90, size=n)
            X = rng.normal(size=(n, 16))
            X[:, 0] += (length - 150) / 60.0
            X[:, 1] += np.where(y, 0.35, -0.35)  # a weak cue the token count does not carry
            return {"X": X, "y": y.astype(int), "n_response_tokens": length}

        claim = _probe_claim("probe.fresh.auc@C=1", 0.7, 1.0)
        return falsify_run(_probe_run(tmp_path, claim, split(), split()).dir, progress=False)["claims"][0]

    c = run_with(82)
    a = c["checks"]["arc_specific"]
    lb = a["evidence"]["length_baseline"]
    assert a["evidence"]["auc"] >= 0.63 and a["evidence"]["auc_ci"][0] > 0.5  # clears the bars and chance
    assert lb["auc_difference"] > 0.02  # what the old point rule passed
    assert lb["difference_ci"][0] <= 0 < lb["difference_ci"][1]
    assert a["status"] == "flag" and c["verdict"] == "INCONCLUSIVE" and "length-baseline" in a["reason"]
    c = run_with(3000)
    a = c["checks"]["arc_specific"]
    assert a["evidence"]["length_baseline"]["difference_ci"][0] > 0, a["evidence"]
    assert a["status"] == "pass" and c["verdict"] == "SURVIVES", a["reason"]


def test_probe_on_few_fresh_items_reads_the_interval_not_the_point(tmp_path):
    """On 30 fresh items neither a collapse nor a separation is shown by a point AUC: below the
    bar with an interval that reaches it is INCONCLUSIVE (not FALSIFIED); above the bar with an
    interval that reaches chance is INCONCLUSIVE (not SURVIVES)."""
    rng = np.random.default_rng(2)
    n_tr, n_fr, d = 200, 30, 8
    y_tr = rng.random(n_tr) < 0.5
    X_tr = rng.normal(size=(n_tr, d))
    X_tr[:, 0] += np.where(y_tr, 1.0, -1.0)
    claim = _probe_claim("probe.fresh.auc@C=1", 0.8, 1.0)
    seen = set()
    for shift in (0.1, 0.45):  # a weak cue on fresh: the point lands on either side of the bar
        for seed in range(40):
            r = np.random.default_rng(seed)
            y_fr = np.arange(n_fr) < 15
            X_fr = r.normal(size=(n_fr, d))
            X_fr[:, 0] += np.where(y_fr, shift, -shift)
            lengths = {"n_response_tokens": r.integers(20, 300, size=n_fr)}
            run = _probe_run(
                tmp_path,
                claim,
                {"X": X_tr, "y": y_tr.astype(int), "n_response_tokens": rng.integers(20, 300, size=n_tr)},
                {"X": X_fr, "y": y_fr.astype(int), **lengths},
            )
            c = falsify_run(run.dir, progress=False)["claims"][0]
            a = c["checks"]["arc_specific"]
            auc, (lo, hi) = a["evidence"]["auc"], a["evidence"]["auc_ci"]
            assert lo <= auc <= hi
            if auc < 0.63 and hi >= 0.63:
                assert a["status"] == "flag" and c["verdict"] == "INCONCLUSIVE", a["reason"]
                assert "collapse is not shown" in a["reason"]
                seen.add("below")
            elif auc >= 0.63 and lo <= 0.5 and (a["evidence"]["asymmetry"] or 0) <= -0.15:
                assert a["status"] == "flag" and c["verdict"] == "INCONCLUSIVE", a["reason"]
                assert "reaches chance" in a["reason"]
                seen.add("above")
            if len(seen) == 2:
                return
    raise AssertionError(f"the generator never produced both cases: {seen}")


def test_arc2_intervention_record_is_reapplied_by_falsify():
    """falsify regenerates tempered arms from the intervention recorded with their samples
    (dispo.interventions.tempering.tempering_spec): the record must re-apply the same damping, then lift it."""
    import torch

    from dispo.falsify.context import _intervention_context
    from dispo.interventions.tempering import tempering_spec
    from dispo.models.heads import attention_layers
    from dispo.models.loading import load_model

    lm = load_model("tiny-llama")
    ids = lm.tokenizer("The sauce split because the butter was too hot.", return_tensors="pt")["input_ids"]

    def logits():
        with torch.no_grad():
            return lm.model(input_ids=ids).logits

    base = logits()
    layer = attention_layers(lm.model)[-1].index
    with _intervention_context(lm, tempering_spec([(layer, 0)], 0.0)):
        damped = logits()
    assert not torch.allclose(base, damped, atol=1e-6)
    assert torch.equal(logits(), base)


def test_probe_on_a_handful_of_positives_is_not_checked_never_survives(tmp_path):
    """The first real experiment's arc 3 (Qwen2.5-Coder-0.5B on chef): 2 correct of 40 train
    items and 1 of 36 fresh; the refit probe's fresh AUC cleared the bar on that one item. An AUC
    on one positive is noise: the claim must stay INCONCLUSIVE, with the class counts as the reason."""
    rng = np.random.default_rng(1)
    d = 16
    y_tr = np.zeros(40, dtype=int)
    y_tr[:2] = 1
    y_fr = np.zeros(36, dtype=int)
    y_fr[0] = 1
    X_tr, X_fr = rng.normal(size=(40, d)), rng.normal(size=(36, d))
    X_tr[:, 0] += np.where(y_tr == 1, 3.0, -3.0)  # the cue holds on both splits: the refit would "pass"
    X_fr[:, 0] += np.where(y_fr == 1, 3.0, -3.0)
    claim = _probe_claim("probe.fresh.auc@C=0.1", 0.86, 0.1)
    for fresh_y in (y_fr, np.zeros(36, dtype=int)):  # one positive; then one class only
        run = _probe_run(tmp_path, claim, {"X": X_tr, "y": y_tr}, {"X": X_fr, "y": fresh_y})
        c = falsify_run(run.dir, progress=False)["claims"][0]
        a = c["checks"]["arc_specific"]
        assert a["status"] == "skipped" and c["verdict"] == "INCONCLUSIVE", c
        assert "train 2 positive / 38 negative" in a["reason"], a["reason"]
        assert f"fresh {int(fresh_y.sum())} positive" in a["reason"] and "need >= 15" in a["reason"], a["reason"]
    # the bar is a setting: at 1 the same one-positive probe is refit and judged on its numbers
    run = _probe_run(tmp_path, claim, {"X": X_tr, "y": y_tr}, {"X": X_fr, "y": y_fr})
    c = falsify_run(run.dir, ["falsify.probe_min_class=1"], progress=False)["claims"][0]
    a = c["checks"]["arc_specific"]
    assert a["status"] != "skipped" and "auc" in a["evidence"], a  # refit and judged (no lengths here: flagged)
