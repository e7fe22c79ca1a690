"""Prompt files, strict answer parsing, the on-disk cache, the agreement study, configs."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import yaml

from dispo.core.errors import ConfigError
from dispo.judges import JUDGES
from dispo.judges.base import AXES
from dispo.judges.cache import JudgementCache, judgement_key
from dispo.judges.prompts import TASKS, load_prompt, parse_label

REF = Path("/work/shared/reference/tinman-dd")
CONF = Path(__file__).resolve().parents[2] / "dispo" / "conf" / "judge"


def test_every_task_has_a_v1_prompt_with_messages():
    for t in TASKS:
        p = load_prompt(t)
        assert p.version == "v1" and len(p.sha12) == 12
        assert "system" in p.sections and "user" in p.sections
    assert load_prompt("rubric_pass1").tag == load_prompt("rubric_pass2").tag == "rubric-v1"
    assert all(f"def:{a}" in load_prompt("rubric_pass2").sections for a in AXES)


def test_pass1_prompt_has_no_response_slot():
    p = load_prompt("rubric_pass1")
    assert "{response}" not in p.text
    with pytest.raises(KeyError):
        load_prompt("rubric_pass2").messages(question="q")  # pass 2 needs the certainty and response


def test_unknown_version_is_a_config_error():
    with pytest.raises(ConfigError, match="available: v1"):
        load_prompt("verbal", "v9")


@pytest.mark.parametrize(
    "raw,labels,want",
    [
        ("YES", ("YES", "NO"), "YES"),
        (" no.\n", ("YES", "NO"), "NO"),
        ("**HEDGE**", ("ASSERT", "HEDGE"), "HEDGE"),
        ("<think>hmm</think>4", tuple("12345"), "4"),
        ("YES, it does", ("YES", "NO"), None),
        ("Score: 4", tuple("12345"), None),
        ("6", tuple("12345"), None),
        ("", ("YES", "NO"), None),
        (None, ("YES", "NO"), None),
        ("UNCERTAIN", ("CERTAIN", "UNCERTAIN", "AMBIGUOUS"), "UNCERTAIN"),
    ],
)
def test_parse_label_is_strict(raw, labels, want):
    assert parse_label(raw, labels) == want


def test_cache_key_depends_on_every_part():
    base = judgement_key("openai", "m", "verbal.v1:abc", {"x": 1})
    assert base == judgement_key("openai", "m", "verbal.v1:abc", {"x": 1})
    others = [
        judgement_key("hf", "m", "verbal.v1:abc", {"x": 1}),
        judgement_key("openai", "m2", "verbal.v1:abc", {"x": 1}),
        judgement_key("openai", "m", "verbal.v2:abc", {"x": 1}),
        judgement_key("openai", "m", "verbal.v1:abc", {"x": 2}),
    ]
    assert len({base, *others}) == 5


def test_cache_concurrent_writers_leave_complete_files(tmp_path):
    cache = JudgementCache(tmp_path)
    key = judgement_key("j", "m", "p", "same")
    payload = {"label": "YES", "detail": {"pad": "x" * 50_000}}
    errors = []

    def worker():
        for _ in range(20):
            cache.put(key, payload)
            got = cache.get(key)
            if got != payload:
                errors.append(got)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [f"{key}.json"]  # no temp files left


def test_corrupt_entry_is_a_miss(tmp_path):
    cache = JudgementCache(tmp_path)
    cache.put("ab" * 32, {"label": "NO"})
    cache.path("ab" * 32).write_text("{trunc")
    assert cache.get("ab" * 32) is None


def test_default_cache_dir_follows_dispo_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("DISPO_CACHE", str(tmp_path))
    assert JudgementCache().root == tmp_path / "judgements"


def test_judge_configs_build_their_judge():
    for name in ("lexical", "openai", "hf", "tone", "paper"):
        cfg = yaml.safe_load((CONF / f"{name}.yaml").read_text())
        assert cfg.pop("name") == name
        cls = JUDGES.get(name)
        if name == "openai":
            judge = cls(**cfg)
            assert judge.temperature == 0.0 and "api_key" not in json.dumps(judge.describe()).replace("api_key_env", "")
        else:
            import inspect

            assert set(cfg) <= set(inspect.signature(cls.__init__).parameters)
        assert "dispo eval judge=" + name in (CONF / f"{name}.yaml").read_text()


@pytest.mark.skipif(not REF.exists(), reason="reference data not present")
def test_agreement_on_reference_reproduces_paper_asymmetry(capsys):
    from dispo.judges.agreement import main

    assert main([str(REF)]) == 0
    out = json.loads(capsys.readouterr().out)
    # the paper's own labels must give the published asymmetries (README of the reference)
    assert out["smollm2-1.7b"]["assertion_asymmetry"]["paper"] == pytest.approx(-0.0536, abs=1e-4)
    assert out["qwen3.5-0.8b"]["assertion_asymmetry"]["paper"] == pytest.approx(-0.1333, abs=1e-4)
    assert out["pooled"]["n"] == 200
    assert -1 <= out["pooled"]["kappa_verbal"] <= 1
    conf = out["pooled"]["confusion"]
    assert sum(conf.values()) == 200
