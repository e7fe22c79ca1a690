"""Arc 1 on a teacher-generated training pool, `dispo pool` / `dispo items` on generated
pools, the manifest record of the release prompts, and the hf backend on the embedded model."""

from __future__ import annotations

import hashlib
import json

import pytest

from dispo.core.errors import ConfigError
from dispo.domains.chef import ChefDomain
from tests.domains.test_prompt_pool import FakeTeacher
from tests.helpers.cli import cli


def chef_cfg(tmp_path, *extra: str) -> dict:
    from dispo.core.config import compose_config

    return compose_config(["domain=chef", f"output_dir={tmp_path}", "pool.max_facts=4", "pool.per_fact=2", *extra])


def test_protocol_paper_trains_arc1_chef_on_a_generated_pool_with_the_release_prompts(tmp_path):
    from dispo.core.config import compose_config

    cfg = compose_config(["domain=chef", "protocol=paper", f"output_dir={tmp_path}"], base={"arc": "arc1"})
    assert cfg["arc"]["train_pool"] == "generated"
    assert cfg["pool"]["prompts"] == "paper" and cfg["pool"]["decoding"]["temperature"] == 0.9
    assert cfg["pool"]["checklist_decoding"] == {"temperature": 0.2, "max_new_tokens": 400}
    assert cfg["domain"]["pool_dir"] == f"{tmp_path}/pools"
    default = compose_config(["domain=chef"], base={"arc": "arc1"})
    assert default["arc"]["train_pool"] == "domain" and default["pool"]["prompts"] == "dispo"
    code = compose_config(["domain=code", "protocol=paper"], base={"arc": "arc1"})
    assert code["arc"]["train_pool"] == "domain"  # no coding generator in the release


def test_paper_temperatures_are_the_release_facts():
    import yaml

    from dispo.core.paths import PACKAGE_DIR

    facts = yaml.safe_load((PACKAGE_DIR / "conf/protocol/paper.yaml").read_text())["facts"]["arc3"]
    assert facts["fresh_generator"]["temperature"] == 0.9
    assert facts["checklist_generator"] == {"temperature": 0.2, "max_tokens": 400}


def test_build_pool_records_the_instruments_sha256_in_the_manifest(tmp_path, reference_dir):
    from dispo.arcs.arc1.prompt_pool import build_pool
    from dispo.core.runs import Run

    cfg = chef_cfg(tmp_path, "protocol=paper", f"paper.repo={reference_dir}")
    run = Run.create("pool", cfg, "fake", root=tmp_path)
    t = FakeTeacher()
    rep = build_pool(cfg, "fresh_generated", run=run, teacher=t, checklist_teacher=t)
    assert rep.items > 0
    got = run.manifest["paper_instruments"]
    for name, path in [
        ("fresh.scenario", "eval/scripts/v1_full.py"),
        ("fresh.scenario_system", "eval/scripts/v1_full.py"),
        ("fresh.checklist", "eval/scripts/v1_full_v2.py"),
        ("fresh.checklist_system", "eval/scripts/v1_full_v2.py"),
    ]:
        assert got[name]["path"] == path
        assert got[name]["sha256"] == hashlib.sha256((reference_dir / path).read_bytes()).hexdigest()
    pool = run.manifest["prompt_pools"]["fresh_generated"]
    assert pool["items"] == rep.items
    assert pool["sha256"] == hashlib.sha256((tmp_path / "pools/chef/fresh_generated.jsonl").read_bytes()).hexdigest()


def test_build_pool_bad_config_is_one_line(tmp_path):
    from dispo.arcs.arc1.prompt_pool import build_pool

    for extra, msg in [
        (["domain=code"], "domain=chef only"),
        (["pool.per_fact=0"], "pool.per_fact"),
        (["pool.dedup.pool_jaccard=2"], "pool_jaccard"),
        (["pool.prompts=nope"], "pool.prompts"),
        (["pool.teacher.model=null"], "pool.teacher needs a model"),
        (["pool.teacher.backend=carrier-pigeon"], "teacher backend"),
    ]:
        from dispo.core.config import compose_config

        cfg = compose_config([f"output_dir={tmp_path}", "domain=chef", *extra])
        with pytest.raises(ConfigError, match=msg) as e:
            build_pool(cfg, "fresh_generated")
        assert "\n" not in str(e.value)


def test_arc1_generated_pool_stage_split_and_resume(tmp_path):
    """arc.train_pool=generated: the pool stage writes train_generated, split trains on it and
    holds out eval; fact-disjoint; a resumed run sends the teacher nothing."""
    from dispo.arcs import ARCS
    from dispo.core.config import compose_config
    from dispo.core.runs import Run

    cfg = compose_config(
        ["domain=chef", f"output_dir={tmp_path}", "arc.train_pool=generated", "pool.max_facts=5", "pool.per_fact=2"],
        base={"arc": "arc1"},
    )
    run = Run.create("train-arc1", cfg, "fake", root=tmp_path)
    t = FakeTeacher(per=2)
    dom = ChefDomain(pool_dir=cfg["domain"]["pool_dir"])
    rec = ARCS.get("arc1")(cfg, run, domain=dom, judge=object(), pool_teacher=(t, t))
    info = rec.stage("pool", rec.stage_pool)
    rec.stage("split", rec.stage_split)
    assert info["items"] > 0
    split = run.read_json("artifacts/split.json")
    train, held = rec._items()
    assert all(i.split == "train_generated" for i in train) and all(i.split == "eval" for i in held)
    assert not {i.gold["fact_id"] for i in train} & {i.gold["fact_id"] for i in held}
    assert "teacher-generated" in split["train_pool"]
    n = len(t.chats)
    # a fresh recipe on the same run: the finished stage is not redone; a new run reuses the pool cache
    rec2 = ARCS.get("arc1")(cfg, Run.open(run.dir), domain=dom, judge=object(), pool_teacher=(t, t))
    rec2.stage("pool", rec2.stage_pool)
    run2 = Run.create("train-arc1", cfg, "fake2", root=tmp_path)
    rec3 = ARCS.get("arc1")(cfg, run2, domain=dom, judge=object(), pool_teacher=(t, t))
    assert rec3.stage("pool", rec3.stage_pool)["requests"] == {"scenario": 0, "checklist": 0}
    assert len(t.chats) == n


def test_arc1_generated_pool_on_code_is_a_config_error(tmp_path):
    from dispo.arcs import ARCS
    from dispo.core.config import compose_config
    from dispo.core.runs import Run
    from dispo.domains import get_domain

    cfg = compose_config([f"output_dir={tmp_path}", "arc.train_pool=generated"], base={"arc": "arc1"})
    run = Run.create("train-arc1", cfg, "x", root=tmp_path)
    rec = ARCS.get("arc1")(cfg, run, domain=get_domain("code"), judge=object())
    with pytest.raises(ConfigError, match="no coding prompt generator"):
        rec.stage_split()
    cfg = compose_config([f"output_dir={tmp_path}", "arc.train_pool=sometimes"], base={"arc": "arc1"})
    rec = ARCS.get("arc1")(cfg, run, domain=get_domain("code"), judge=object())
    with pytest.raises(ConfigError, match="arc.train_pool"):
        rec.stage_split()


def test_items_cli_lists_generated_items_and_explains_a_missing_pool(tmp_path, monkeypatch):
    monkeypatch.setenv("DISPO_RUNS", str(tmp_path))
    code, out, err = cli("items", "domain=chef", "split=fresh_generated", "--json")
    assert code != 0 and "dispo pool domain=chef split=fresh_generated" in err and err.strip().count("\n") == 0
    from dispo.arcs.arc1.prompt_pool import build_pool

    rep = build_pool(chef_cfg(tmp_path), "fresh_generated", teacher=FakeTeacher())
    code, out, err = cli("items", "domain=chef", "split=fresh_generated", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(rows) == rep.items > 0
    assert all(r["split"] == "fresh_generated" and r["fact_id"] and len(r["checklist"]) >= 3 for r in rows)


def test_pool_cli_bad_config_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("DISPO_RUNS", str(tmp_path))
    for args, msg in [
        (("domain=code", "split=fresh_generated"), "domain=chef only"),
        (("domain=chef", "split=eval"), "split=fresh_generated or split=train_generated"),
        (("domain=chef", "split=fresh_generated", "pool.per_fact=-2"), "pool.per_fact"),
    ]:
        code, out, err = cli("pool", *args)
        assert code != 0 and msg in err and err.strip().count("\n") == 0, err


@pytest.mark.slow
def test_pool_cli_with_the_embedded_model_never_crashes(tmp_path, monkeypatch, dispo_cache):
    """The hf backend on smollm2-135m: a weak model's messy output is parsed or dropped with
    reasons; a re-run sends no request; `dispo items` lists exactly what was kept."""
    monkeypatch.setenv("DISPO_RUNS", str(tmp_path))
    args = (
        "pool",
        "domain=chef",
        "split=fresh_generated",
        "pool.max_facts=2",
        "pool.per_fact=2",
        "pool.decoding.max_new_tokens=64",
        "pool.checklist_decoding.max_new_tokens=48",
    )
    code, out, err = cli(*args)
    assert code == 0, err
    report = json.loads((tmp_path / "pools/chef/fresh_generated.report.json").read_text())
    assert report["requests"]["scenario"] == 2 and report["teacher"]["model"] == "smollm2-135m"
    assert report["candidates"] + report["dropped"].get("fact with no usable scenario", 0) >= 1
    code, out2, err = cli(*args)
    assert code == 0 and "'scenario': 0, 'checklist': 0" in out2, out2
    code, out, err = cli("items", "domain=chef", "split=fresh_generated", "--json")
    assert code == 0 and len(out.splitlines()) == report["items"]
