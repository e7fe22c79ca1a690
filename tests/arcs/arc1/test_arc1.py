"""Arc 1 end to end on tiny-llama (teachers and student are the tiny model; a toy domain whose
content is 'mentions butter'), resume, and the hedge-opener style-vs-content check."""

from __future__ import annotations

import json

import pytest

from dispo.core.types import Item, Score
from dispo.domains.base import Domain
from tests.helpers.arcs import tiny_arc1_config


class ToyDomain(Domain):
    name = "toy"

    def items(self, split="eval", limit=None):
        out = [
            Item(
                id=f"toy/{i}",
                prompt=f"My sauce {i} split. Fix?",
                domain="toy",
                gold={
                    "checklist": ["Whisk in cold butter"],
                    "keywords": [["butter"]],
                    "certainty": "UNCERTAIN" if i % 3 == 0 else "CERTAIN",
                },
            )
            for i in range(14)
        ]
        return out[:limit]

    def content_score(self, item, output, judge=None):
        return Score("toy.correct", "v1", "butter" in output.lower())


def test_split_is_disjoint_and_deterministic():
    from dispo.arcs.arc1.recipe import split_items

    items = ToyDomain().items()
    tr, ho = split_items(items, 0.5, 0)
    assert not {i.id for i in tr} & {i.id for i in ho} and len(tr) + len(ho) == len(items)
    tr2, _ = split_items(list(reversed(items)), 0.5, 0)
    assert sorted(i.id for i in tr) == sorted(i.id for i in tr2)
    assert {i.id for i in split_items(items, 0.5, 1)[0]} != {i.id for i in tr}


@pytest.mark.parametrize("model", ["tiny-llama", "tiny-qwen3", "tiny-qwen3_5", "tiny-gemma4"])
def test_arc1_runs_end_to_end_and_resumes(tmp_path, model):
    """Every stage on each student architecture (LoRA targets must exist for each)."""
    from dispo.arcs import ARCS
    from dispo.core.runs import Run
    from dispo.judges import get_judge

    cfg = tiny_arc1_config(tmp_path, model)
    run = Run.create("train-arc1", cfg, model, root=tmp_path)
    recipe = ARCS.get("arc1")(cfg, run, domain=ToyDomain(), judge=get_judge("lexical"))
    recipe.setup()
    recipe.run()
    recipe.cleanup()

    split = run.read_json("artifacts/split.json")
    assert len(split["held_out"]) == 4 and len(split["train"]) == 6
    assert not set(split["train"]) & set(split["held_out"])
    for stage in ("eager", "deliberate", "adversarial", "synthesizer"):
        assert (run.dir / "teachers" / "fresh" / f"{stage}.jsonl").exists()
    rep = run.read_json("data_report.json")
    # a random-init teacher never mentions butter: every target is the reference, typed as such
    assert rep["distilled_sft"] == 0 and rep["counts"]["reference"] == rep["n_sft"] > 0
    assert all(
        "butter" in json.loads(l)["messages"][-1]["content"].lower()
        for l in (run.dir / "data" / "sft.jsonl").read_text().splitlines()
    )
    assert (run.artifacts / "adapter_sft" / "adapter_config.json").exists()
    assert (run.artifacts / "adapter" / "adapter_config.json").exists()
    m = run.manifest["stages"]
    assert m["sft"]["steps"] >= 1 and m["dpo"].get("reference") == "adapter disabled (base)"
    base, student = run.read_samples("base"), run.read_samples("student")
    assert [s["id"] for s in base] == [s["id"] for s in student] == split["held_out"]
    assert base[0]["decoding"]["max_new_tokens"] == student[0]["decoding"]["max_new_tokens"] == 6
    res = run.results
    assert set(res["metrics"]) == {"base", "student"}
    assert {c["metric"] for c in res["claims"]} >= {"accuracy", "hedge_rate"}
    assert all(c["arm"] == "student" and c["baseline"] == "base" for c in res["claims"])
    assert "opener_share" in res["style"]["student"]
    assert "Style vs content" in (run.dir / "report.md").read_text()

    # resume: every stage is done, so nothing loads a model or generates again
    def boom(*a, **k):
        raise AssertionError("a finished stage was recomputed")

    again = ARCS.get("arc1")(
        cfg, Run.open(run.dir), domain=ToyDomain(), judge=get_judge("lexical"), lm_loader=boom, teacher_factory=boom
    )
    again.run()


def test_hedge_opener_student_raises_hedge_rate_with_content_beside_it(tmp_path):
    """Data/summary level (training a 135M model to do this takes minutes): the student's answers
    are the base answers with a fixed hedge opener; results.json must show hedge_rate and the
    opener share up, while the content metric is reported beside them, unchanged."""
    from dispo.arcs.arc1.recipe import Arc1Distill
    from dispo.core.runs import Run
    from dispo.evaluation.evaluate import content_keys, score_tasks
    from dispo.judges import get_judge

    dom, judge = ToyDomain(), get_judge("lexical")
    items = dom.items()[:10]
    base_out = [("Whisk in cold butter." if i % 2 else "Reduce the heat and whisk.") for i in range(10)]
    stud_out = ["I might be wrong, but " + o[0].lower() + o[1:] for o in base_out]

    def arm(outputs):
        content = dom.content_scores(items, outputs, judge)
        judged = score_tasks(judge, items, outputs, ("verbal", "svr", "hedge"))
        return [
            {
                "id": it.id,
                "output": o,
                "finish_reason": "stop",
                "n_tokens": len(o.split()),
                "scores": {**content_keys(c), **j},
            }
            for it, o, c, j in zip(items, outputs, content, judged)
        ]

    cfg = tiny_arc1_config(tmp_path)
    run = Run.create("train-arc1", cfg, "tiny-llama", root=tmp_path)
    run.write_json(
        "data_report.json", {"counts": {}, "pairs": {}, "n_sft": 0, "n_pairs": 0, "distilled_sft": 0, "dropped": {}}
    )
    Arc1Distill(cfg, run, domain=dom, judge=judge).stage_results({"base": arm(base_out), "student": arm(stud_out)})
    res = run.results
    claims = {c["metric"]: c for c in res["claims"]}
    assert claims["hedge_rate"]["base"] == 0.0 and claims["hedge_rate"]["treat"] == 1.0
    assert claims["hedge_rate"]["delta"] == pytest.approx(1.0)
    assert claims["accuracy"]["delta"] == 0.0 and claims["accuracy"]["base"] == 0.5
    assert res["style"]["student"]["opener_share"] == 1.0 and res["style"]["base"]["opener_share"] == 0.5
    assert "accuracy" in res["claim_groups"]["content"] and "hedge_rate" in res["claim_groups"]["style"]
    report = (run.dir / "report.md").read_text()
    assert "| content | accuracy |" in report and "| style | hedge_rate |" in report


class _HedgingTeacher:
    """Every stage answers correctly (mentions butter); the synthesizer always opens with a hedge."""

    def __init__(self, stage):
        self.stage = stage

    def generate(self, chats, ids):
        text = "Whisk in cold butter, off the heat."
        if self.stage == "synthesizer":
            text = "I might be wrong, but whisk in cold butter, off the heat."
        return [{"output": text, "finish_reason": "stop"} for _ in ids]

    def describe(self):
        return {"backend": "fixed", "stage": self.stage}


@pytest.mark.slow
def test_student_trained_to_open_with_a_hedge_shows_hedge_rate_up_and_content_beside_it(tmp_path):
    """Real LoRA SFT on the embedded model through the whole Arc 1 recipe: the synthesized targets
    all open with a hedge phrase, so the student's held-out answers do too (hedge rate and opener
    share up), while the content metric is reported beside them in the same claim table."""
    from dispo.arcs import ARCS
    from dispo.core.config import compose_config
    from dispo.core.runs import Run
    from dispo.judges import get_judge

    ov = [
        "model=smollm2-135m",
        "arc.preset=smoke",
        "decoding.max_new_tokens=12",
        "limit=4",
        "arc.train_limit=8",
        "arc.sft.epochs=4",
        "arc.sft.lr=2e-3",
        "arc.sft.warmup_ratio=0",
        "arc.sft.max_length=96",
        "arc.dpo.enabled=false",
        "arc.sft.progress=false",
        "arc.progress=false",
        f"output_dir={tmp_path}",
    ]
    cfg = compose_config(ov, base={"arc": "arc1"})
    run = Run.create("train-arc1", cfg, "smollm2-135m", root=tmp_path)
    recipe = ARCS.get("arc1")(
        cfg,
        run,
        domain=ToyDomain(),
        judge=get_judge("lexical"),
        teacher_factory=lambda stage, scfg, dec: _HedgingTeacher(stage),
    )
    recipe.setup()
    recipe.run()
    recipe.cleanup()

    losses = [h["loss"] for h in run.read_json("artifacts/sft_log.json")["history"]]
    assert losses[-1] < losses[0]
    rep = run.read_json("data_report.json")
    assert rep["distilled_sft"] > 0 and rep["counts"].get("reference", 0) == 0
    student = run.read_samples("student")
    assert sum(s["output"].lower().startswith("i might be wrong") for s in student) >= 3, [s["output"] for s in student]
    claims = {c["metric"]: c for c in run.results["claims"]}
    assert claims["hedge_rate"]["treat"] > claims["hedge_rate"]["base"]
    style = run.results["style"]
    assert style["student"]["top_opener"] == "i might be" != style["base"]["top_opener"]
    assert style["student"]["opener_share"] >= 0.75
    assert "accuracy" in claims and "accuracy" in run.results["claim_groups"]["content"]
