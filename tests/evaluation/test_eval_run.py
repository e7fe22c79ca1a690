"""dispo eval end to end on a tiny model: a complete run dir, and a rerun that generates nothing."""

import json

import pytest

from dispo.core.config import compose_config
from dispo.core.runs import Run
from dispo.evaluation.eval_run import run_eval

FIELDS = {"id", "prompt", "messages", "output", "finish_reason", "n_tokens", "decoding", "seed", "scores"}


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    import os

    from dispo.models import embedded

    cache = tmp_path / "cache"
    (cache / "models").mkdir(parents=True)
    src = embedded.ensure("smollm2-135m")
    os.symlink(src, cache / "models" / "smollm2-135m")
    monkeypatch.setenv("DISPO_CACHE", str(cache))
    return cache


def test_eval_writes_complete_run_dir_and_rerun_generates_nothing(tmp_path, isolated_cache):
    overrides = [
        "model=tiny-llama",
        "domain=code",
        "limit=3",
        "decoding.max_new_tokens=8",
        f"output_dir={tmp_path / 'runs'}",
    ]
    cfg = compose_config(overrides)
    run = run_eval(cfg, progress=False)
    m = Run.open(run.dir).manifest
    assert m["status"] == "completed"
    stage = m["stages"]["arm:base"]
    assert stage["generated"] == 3 and stage["cached"] == 0
    samples = run.read_samples("base")
    assert [s["id"] for s in samples] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    for s in samples:
        assert FIELDS <= set(s)
        assert s["decoding"]["max_new_tokens"] == 8 and s["finish_reason"] in ("stop", "length")
        assert s["scores"]["correct:tests"]["version"] == "humaneval-v1"
        assert "verbal:tone" in s["scores"]  # the default judge (dispo/conf/config.yaml)
    res = json.loads((run.dir / "results.json").read_text())
    trunc = sum(s["finish_reason"] == "length" for s in samples) / 3
    assert res["metrics"]["base"]["truncation_rate"]["value"] == pytest.approx(trunc)
    assert "pass@1" in res["metrics"]["base"] and (run.dir / "report.md").exists()
    again = run_eval(cfg, progress=False)
    assert again.dir != run.dir
    st2 = again.manifest["stages"]["arm:base"]
    assert st2["generated"] == 0 and st2["cached"] == 3 and st2["generated_tokens"] == 0
    assert [s["output"] for s in again.read_samples("base")] == [s["output"] for s in samples]


def test_extra_arm_gets_identical_scorers_and_a_claim(tmp_path, isolated_cache):
    cfg = compose_config(
        [
            "model=tiny-llama",
            "domain=chef",
            "limit=4",
            "decoding.max_new_tokens=6",
            f"output_dir={tmp_path / 'runs'}",
            "+arms={hint: {system_prompt: 'Answer carefully.'}}",
        ]
    )
    run = run_eval(cfg, progress=False)
    res = run.results
    assert set(res["metrics"]) == {"base", "hint"}
    assert res["metrics"]["base"]["coverage"]["scorers"] == res["metrics"]["hint"]["coverage"]["scorers"]
    assert {c["metric"] for c in res["claims"]} >= {"coverage"}
    assert all(c["same_scorers"] for c in res["claims"])
