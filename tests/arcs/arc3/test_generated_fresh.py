"""Arc 3 can test its probe on the teacher-generated fresh pool (arc.test_split=fresh_generated)."""

from __future__ import annotations

import pytest

from dispo.core.errors import ConfigError
from tests.domains.test_prompt_pool import FakeTeacher


def test_arc3_reads_the_generated_fresh_pool(tmp_path):
    from dispo.arcs import ARCS
    from dispo.arcs.arc1.prompt_pool import build_pool
    from dispo.core.config import compose_config
    from dispo.core.runs import Run

    ov = [f"output_dir={tmp_path}", "arc.test_split=fresh_generated", "pool.max_facts=3", "pool.per_fact=2"]
    cfg = compose_config(ov, base={"arc": "arc3"})
    run = Run.create("train-arc3", cfg, "x", root=tmp_path)
    rec = ARCS.get("arc3")(cfg, run)
    rec.setup()  # the split exists for the chef domain even before the pool does
    with pytest.raises(ConfigError, match="dispo pool domain=chef split=fresh_generated"):
        rec.domain.items("fresh_generated")
    rep = build_pool(cfg, "fresh_generated", teacher=FakeTeacher())
    fresh = rec.domain.items("fresh_generated")
    train = rec.domain.items(cfg["arc"]["train_split"])
    assert len(fresh) == rep.items > 0
    assert not {i.gold["fact_id"] for i in fresh} & {i.gold["fact_id"] for i in train}
    assert not {c for i in fresh for c in i.gold["checklist"]} & {c for i in train for c in i.gold["checklist"]}
