"""MCAS domain: the paper's 500 prompts, balanced kinds, judge-only scoring."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from dispo.core.errors import ConfigError, InputFileError
from dispo.domains import get_domain
from dispo.domains.mcas import McasDomain


@pytest.fixture(scope="module")
def items():
    return get_domain("mcas").items()


def test_500_prompts_split_250_250(items):
    assert len(items) == 500
    assert Counter(i.gold["kind"] for i in items) == {"tricky": 250, "straightforward": 250}


def test_ids_stable_and_unique(items):
    ids = [i.id for i in items]
    assert len(set(ids)) == 500
    assert ids[:3] == ["mcas/0", "mcas/1", "mcas/2"]
    by_id = {i.id: i for i in items}
    # Prompts of the paper's release (tinmanlabsl/disposition-distillation ed3d921).
    assert by_id["mcas/0"].prompt == "Set up CI/CD for my project."
    assert by_id["mcas/1"].prompt == "My deployment is slow. Fix it."
    assert by_id["mcas/0"].gold == {"kind": "tricky"}
    assert all(i.domain == "mcas" and i.split == "eval" for i in items)


def test_items_are_fresh_copies(items):
    first = get_domain("mcas").items()
    first[0].gold["kind"] = "changed"
    assert get_domain("mcas").items()[0].gold["kind"] == "tricky"


@pytest.mark.parametrize("limit", [1, 2, 3, 10, 51])
def test_limit_keeps_both_kinds(limit):
    sub = McasDomain().items(limit=limit)
    assert len(sub) == limit
    kinds = Counter(i.gold["kind"] for i in sub)
    if limit >= 2:
        assert set(kinds) == {"tricky", "straightforward"}
        assert abs(kinds["tricky"] - kinds["straightforward"]) <= 1
    assert McasDomain().items(limit=limit) == sub


def test_bad_split_and_limit():
    with pytest.raises(ConfigError, match="valid splits: eval"):
        McasDomain().items("fresh")
    with pytest.raises(ConfigError, match="limit"):
        McasDomain().items(limit=0)


def test_content_score_is_unscored(items):
    s = McasDomain().content_score(items[0], "anything")
    assert s.status == "unscored" and s.value is None
    assert s.scorer == "mcas" and s.version == "mcas-v1"
    assert "judge" in s.reason


def test_malformed_prompt_file_names_line(tmp_path):
    bad = tmp_path / "p.jsonl"
    bad.write_text(
        json.dumps({"i": 0, "prompt": "x", "type": "tricky"})
        + "\n"
        + json.dumps({"i": 1, "prompt": "y", "type": "odd"})
        + "\n"
    )
    with pytest.raises(InputFileError, match=r"p\.jsonl:2"):
        McasDomain(path=bad).items()
