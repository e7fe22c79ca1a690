"""The students' tiny architectures run arcs 1 and 2 end to end under protocol=paper (the paper's
SFT/DPO settings, loss on the full text; signed-d ranking, the paper's cohorts, its decoding)."""

from __future__ import annotations

import json

import pytest

from dispo.core.types import Item, Score
from dispo.domains.base import Domain
from tests.helpers.arcs import run_arc2, tiny_arc1_config

# tiny-qwen3: Qwen3-0.6B/1.7B; tiny-qwen3_5: Qwen3.5-0.8B; tiny-gemma4: Gemma 4 E2B; tiny-llama: SmolLM2
ARCHS = ["tiny-qwen3", "tiny-qwen3_5", "tiny-gemma4", "tiny-llama"]


class Toy(Domain):
    name = "toy"

    def items(self, split="eval", limit=None):
        words = ["sauce", "roux", "souffle", "custard", "bread", "stock", "tart", "ganache"]
        out = [
            Item(
                id=f"toy/{i}",
                prompt=f"My {w} {i} failed. Why, and how do I fix it?",
                domain="toy",
                gold={
                    "checklist": ["heat"],
                    "keywords": [["heat"]],
                    "certainty": "UNCERTAIN" if i % 3 == 0 else "CERTAIN",
                },
            )
            for i, w in zip(range(14), words * 2)
        ]
        return out[:limit]

    def content_score(self, item, output, judge=None):
        return Score("toy.correct", "v1", len(output) % 3 == 0)


@pytest.mark.parametrize("model", ARCHS)
def test_arc1_under_protocol_paper(tmp_path, model):
    from dispo.arcs import ARCS
    from dispo.core.runs import Run
    from dispo.judges import get_judge

    cfg = tiny_arc1_config(tmp_path, model, "protocol=paper")
    assert cfg["arc"]["sft"]["loss_on"] == "full" and cfg["arc"]["sft"]["dropout"] == 0.0
    assert cfg["arc"]["sft"]["weight_decay"] == 0.01
    run = Run.create("train-arc1", cfg, model, root=tmp_path)
    rec = ARCS.get("arc1")(cfg, run, domain=Toy(), judge=get_judge("lexical"))
    rec.setup()
    try:
        rec.run()
    finally:
        rec.cleanup()
    m = run.manifest
    assert all(s.get("status") == "done" for s in m["stages"].values()), m["stages"]
    assert set(run.results["metrics"]) == {"base", "student"}
    assert (run.artifacts / "adapter" / "adapter_config.json").exists()
    assert "protocol" in run.config and run.config["protocol"]["name"] == "paper"


@pytest.mark.parametrize("model", ["tiny-qwen3", "tiny-qwen3_5", "tiny-gemma4"])
def test_arc2_under_protocol_paper(tmp_path, monkeypatch, model):
    import dispo.arcs.arc2.recipe as A
    from dispo.core.config import compose_config

    monkeypatch.setattr(A, "make_domain", lambda cfg: Toy())
    cfg = compose_config(
        [
            f"model={model}",
            "protocol=paper",
            "judge=tone",  # offline: protocol=paper would choose the paper's judges, which need an endpoint
            "arc.preset=smoke",
            "limit=10",
            "decoding.max_new_tokens=12",
            "arc.replicate.seeds=[]",
        ],
        base={"arc": "arc2"},
    )
    assert cfg["arc"]["method"] == "signed_d" and cfg["arc"]["cohort_source"] == "paper"
    if model == "tiny-qwen3_5":  # Qwen3.5 family: the paper's sampled decoding
        assert cfg["decoding"]["temperature"] == 1.0 and cfg["decoding"]["top_k"] == 20 and cfg["seed"] == 1000
    run, out = run_arc2(A, tmp_path, cfg)
    res = json.loads((run.dir / "results.json").read_text())["arc2"]
    assert res["method"] == "signed_d"
    assert res["cohorts"]["names"][0].startswith("wrong-asserted")
    base = res["outcome_2x2"]["base"]
    assert sum(base["counts"].values()) == base["n"] <= 10
    if out.get("verdict", {}).get("status") != "insufficient_cohorts":
        ranking = json.loads((run.dir / "artifacts/head_ranking.json").read_text())["signed_d"]["rows"]
        ds = [r["d"] for r in ranking if r["d"] is not None]
        assert ds == sorted(ds, reverse=True)  # signed, descending
