"""What the three arcs share: settings from the arc YAML only, one merge, one resume idiom."""

from __future__ import annotations

from dispo.arcs.base import Recipe, arc_defaults, arc_settings, merge
from dispo.core.runs import Run


def test_merge_is_deep_and_leaves_its_inputs_alone():
    base = {"a": 1, "n": {"x": 1, "y": 2}, "l": [1, 2]}
    over = {"n": {"y": 3}, "l": [9]}
    out = merge(base, over)
    assert out == {"a": 1, "n": {"x": 1, "y": 3}, "l": [9]}
    out["n"]["x"] = 7
    assert base["n"]["x"] == 1 and over == {"n": {"y": 3}, "l": [9]}


def test_paper_settings_come_from_the_arc_yaml():
    # the paper's settings (DESIGN.md: LoRA r 64, alpha 2r, lr 2e-4, 3 epochs; DPO beta 0.1,
    # lr 5e-6, 2 epochs; arc 2 lambdas 1.0/0.9/0.8/0.5, top-5; arc 3 C 1.0 and 0.1)
    a1 = arc_defaults("arc1")
    assert (a1["sft"]["r"], a1["sft"]["alpha"], a1["sft"]["lr"], a1["sft"]["epochs"]) == (64, 128, 2e-4, 3)
    assert (a1["dpo"]["beta"], a1["dpo"]["lr"], a1["dpo"]["epochs"]) == (0.1, 5e-6, 2)
    a2 = arc_defaults("arc2")
    assert a2["lambdas"] == [1.0, 0.9, 0.8, 0.5] and a2["top_k"] == 5
    assert arc_defaults("arc3")["C"] == [1.0, 0.1]
    assert "defaults" not in a1  # the Hydra defaults list is not a setting


def test_arc_settings_fill_a_hand_built_config_from_the_yaml():
    s = arc_settings({"arc": {"top_k": 2, "replicate": {"seeds": []}}}, "arc2")
    assert s["top_k"] == 2 and s["replicate"]["seeds"] == []
    assert s["replicate"]["decoding"] == arc_defaults("arc2")["replicate"]["decoding"]
    assert s["lambdas"] == [1.0, 0.9, 0.8, 0.5]


def test_training_defaults_are_the_yaml_ones():
    from dispo.arcs.arc1.training import dpo_defaults, sft_defaults

    y = arc_defaults("arc1")
    assert sft_defaults() == y["sft"]
    assert "enabled" not in dpo_defaults() and dpo_defaults() == {k: v for k, v in y["dpo"].items() if k != "enabled"}


class _Toy(Recipe):
    calls = 0

    def work(self, n):
        _Toy.calls += 1
        return {"n": n}


def test_stage_runs_once_and_is_read_back(tmp_path):
    run = Run.create("train-toy", {"model": {"name": "m"}}, "m", root=tmp_path)
    r = _Toy({}, run)
    first = r.stage("a", r.work, 3)
    assert first["n"] == 3 and "seconds" in first and _Toy.calls == 1
    again = _Toy({}, Run.open(run.dir)).stage("a", r.work, 4)
    assert again["n"] == 3 and _Toy.calls == 1  # finished: read back, not redone
    res = r.stage(
        "b", lambda: {"mode": "pass", "rows": [1]}, artifact="artifacts/b.json", summary=lambda x: {"mode": x["mode"]}
    )
    assert run.read_json("artifacts/b.json") == res and run.stage_info("b")["path"] == "artifacts/b.json"
    assert run.stage_info("b")["mode"] == "pass"
    # the stage's file gone: not finished, so it runs again
    (run.dir / "artifacts/b.json").unlink()
    assert not run.finished("b", "artifacts/b.json") and run.finished("b")
    assert r.stage("b", lambda: {"mode": "fail"}, artifact="artifacts/b.json")["mode"] == "fail"
