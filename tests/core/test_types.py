"""Typed records read every line an older dispo wrote and write it back unchanged; new
records have the keys the run-dir format has always had."""

from __future__ import annotations

import json

import pytest

from dispo.core.types import Claim, Generation, Item, Sample, Score, ScoreKey

# a samples line as dispo 0.1 wrote it (dispo eval, chef, lexical judge), and an imported
# one (no messages/decoding, a score without detail, an unknown top-level field)
OLD_EVAL_LINE = (
    '{"id": "chef-001", "prompt": "<|im_start|>user\\nWhy did my sauce split?<|im_end|>\\n", '
    '"messages": [{"role": "user", "content": "Why did my sauce split?"}], "output": "Too hot.", '
    '"finish_reason": "stop", "n_tokens": 3, "decoding": {"max_new_tokens": 64, "temperature": 0.0, '
    '"engine": "continuous"}, "seed": 0, "scores": {"coverage:chef": {"scorer": "chef.coverage", '
    '"version": "coverage-v1", "value": 0.5, "status": "ok", "reason": null, "detail": {"flags": [true, false]}}, '
    '"correct:chef": {"scorer": "chef.correct", "version": "coverage-v1", "value": true, "status": "ok", '
    '"reason": null, "detail": {}}, "verbal:lexical": {"scorer": "lexical.verbal", "version": "verbal-v1", '
    '"value": null, "status": "unscored", "reason": "empty output", "detail": {}}}, "meta": {"arm": "base"}}'
)
OLD_IMPORT_LINE = (
    '{"id": "7", "prompt": null, "output": "x", "finish_reason": null, "n_tokens": null, '
    '"scores": {"correct:import": {"scorer": "import", "version": "import-v1", "value": false}}, '
    '"output_missing": true}'
)


@pytest.mark.parametrize("line", [OLD_EVAL_LINE, OLD_IMPORT_LINE])
def test_old_sample_lines_round_trip_unchanged(line):
    d = json.loads(line)
    s = Sample.from_json(d)
    assert json.dumps(s.to_json()) == json.dumps(d)  # same keys, same order, same values


def test_sample_gives_typed_scores():
    s = Sample.from_json(json.loads(OLD_EVAL_LINE))
    cov = s.score("coverage", "chef")
    assert isinstance(cov, Score) and cov.value == 0.5 and cov.ok
    verbal = s.score("verbal", "lexical")
    assert verbal.status == "unscored" and not verbal.ok and verbal.reason == "empty output"
    assert s.score("verbal", "openai") is None
    imported = Sample.from_json(json.loads(OLD_IMPORT_LINE))
    assert imported.extra == {"output_missing": True}
    assert imported.score("correct", "import").value is False


def test_new_sample_has_the_format_keys():
    s = Sample(
        id="a",
        prompt="p",
        messages=[],
        output="o",
        finish_reason="length",
        n_tokens=5,
        decoding={"max_new_tokens": 5},
        seed=1,
        scores={"correct:code": Score("code.tests", "t1", True)},
        meta={"arm": "base"},
    )
    d = s.to_json()
    assert list(d) == [
        "id",
        "prompt",
        "messages",
        "output",
        "finish_reason",
        "n_tokens",
        "decoding",
        "seed",
        "scores",
        "meta",
    ]
    assert d["scores"]["correct:code"] == {
        "scorer": "code.tests",
        "version": "t1",
        "value": True,
        "status": "ok",
        "reason": None,
        "detail": {},
    }
    assert Sample.from_json(d) == s


def test_score_key_builds_and_parses():
    assert ScoreKey.of("verbal", "lexical") == "verbal:lexical"
    assert ScoreKey.parse("rubric:openai") == ScoreKey("rubric", "openai")
    assert str(ScoreKey.parse("mcas5:hf")) == "mcas5:hf"
    assert ScoreKey.parse("odd") == ScoreKey("odd", "")


def test_claim_from_paired_comparison_keeps_the_results_json_layout():
    paired = {
        "metric": "accuracy",
        "n_pairs": 4,
        "n_unpaired": 0,
        "source": {"base": "code", "treat": "code"},
        "scorers": {"base": ["code.tests/t1"], "treat": ["code.tests/t1"]},
        "same_scorers": True,
        "flips": {"up": 1, "down": 0},
        "base": 0.25,
        "treat": 0.5,
        "delta": 0.25,
        "ci": [0.0, 0.75],
        "p": 1.0,
        "test": "mcnemar_exact",
    }
    c = Claim.build("sft", "base", paired)
    c.p_holm, c.significant = 1.0, False
    d = c.to_json()
    assert list(d) == ["arm", "baseline", *paired, "p_holm", "significant"]
    no_flips = {k: v for k, v in paired.items() if k != "flips"}
    assert "flips" not in Claim.build("sft", "base", no_flips).to_json()
    # a probe claim from arc 3 has other fields: kept, in order
    probe = {"arm": "sidecar", "baseline": "base", "metric": "auc", "kind": "probe", "value": 0.7}
    assert Claim.from_json(probe).to_json() == probe and Claim.from_json(probe).extra == {"kind": "probe", "value": 0.7}


def test_from_json_rejects_a_non_object():
    with pytest.raises(TypeError):
        Sample.from_json(["not", "a", "dict"])


def test_item_and_generation_unchanged():
    it = Item(id="1", prompt="q", domain="chef", system="s")
    assert it.messages() == [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}]
    assert Generation(id="1", prompt="p", output="o", finish_reason="stop", n_tokens=1).cached is False


def test_run_reads_typed_samples_as_written(tmp_path):
    from dispo.core.runs import Run

    run = Run.create("eval", {"model": {"name": "m"}}, "m", root=tmp_path)
    lines = [json.loads(OLD_EVAL_LINE), json.loads(OLD_IMPORT_LINE)]
    run.write_samples("base", lines)
    recs = run.sample_records("base")
    assert [r.id for r in recs] == ["chef-001", "7"]
    assert [r.to_json() for r in recs] == run.read_samples("base") == lines
