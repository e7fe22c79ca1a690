"""`dispo cache info` / `dispo cache prune`: the report's numbers, the age cutoff, duration
parsing, and pruning next to a live writer."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from pathlib import Path

import pytest

from tests.helpers.relhelp import cli, one_error_line

DAY = 86400.0


def _put(cache, i: int, model: str, fp: str, age_days: float, now: float) -> Path:
    key = f"{i:064x}"
    cache.put(key, f"out {i}", "stop", 3, model=model, fingerprint=fp)
    p = cache.path(key)
    os.utime(p, (now - age_days * DAY, now - age_days * DAY))
    return p


@pytest.fixture
def filled(tmp_path, monkeypatch):
    from dispo.generate.cache import ResponseCache

    monkeypatch.setenv("DISPO_CACHE", str(tmp_path))
    cache = ResponseCache()
    now = time.time()
    ages = {"m1": [40, 31, 29], "m2": [1, 0.5]}
    paths = {
        m: [_put(cache, 10 * k + j, m, f"fp-{m}", a, now) for j, a in enumerate(v)]
        for k, (m, v) in enumerate(ages.items())
    }
    # unreadable entry, a leftover temp file of a killed writer, a fresh in-flight temp file
    (cache.root / "ff").mkdir(parents=True, exist_ok=True)
    bad = cache.root / "ff" / ("f" * 64 + ".json")
    bad.write_text('{"key": "ff')
    old_tmp = cache.root / "ff" / f".{'e' * 64}.json.abc.tmp"
    old_tmp.write_text("{")
    os.utime(old_tmp, (now - 40 * DAY, now - 40 * DAY))
    new_tmp = cache.root / "ff" / f".{'d' * 64}.json.xyz.tmp"
    new_tmp.write_text("{")
    return cache, paths, now, bad, old_tmp, new_tmp


@pytest.mark.parametrize(
    "text,seconds",
    [
        ("30d", 30 * DAY),
        ("12h", 12 * 3600),
        ("1.5h", 5400),
        ("90m", 5400),
        ("45s", 45),
        ("2w", 14 * DAY),
        (" 7D ", 7 * DAY),
        ("0s", 0),
    ],
)
def test_parse_duration(text, seconds):
    from dispo.generate.cache_admin import parse_duration

    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["30", "d", "30x", "-1d", "", "30 days", "1d2h", "1e3s"])
def test_bad_duration_is_one_line_exit_2_and_removes_nothing(text, filled):
    cache, paths, *_ = filled
    before = sorted(p.name for p in cache.root.rglob("*"))
    code, out, err = cli("cache", "prune", "--older-than", text)
    assert code == 2
    line = one_error_line(err)
    assert "--older-than" in line and "e.g. 30d" in line
    assert sorted(p.name for p in cache.root.rglob("*")) == before


def test_cache_info_counts_sizes_ages_and_models(filled):
    cache, paths, now, bad, old_tmp, new_tmp = filled
    code, out, err = cli("cache", "info", "--json")
    assert code == 0, err
    rep = json.loads(out)
    allp = paths["m1"] + paths["m2"]
    assert rep["entries"] == 5 and rep["invalid"] == 1 and rep["temp_files"] == 2
    assert rep["bytes"] == sum(p.stat().st_size for p in allp)
    iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
    assert rep["oldest"] == iso(now - 40 * DAY) and rep["newest"] == iso(now - 0.5 * DAY)
    m1, m2 = rep["models"]["m1 (fp-m1)"], rep["models"]["m2 (fp-m2)"]
    assert (m1["entries"], m2["entries"]) == (3, 2)
    assert m2["bytes"] == sum(p.stat().st_size for p in paths["m2"])
    assert m1["newest"] == iso(now - 29 * DAY) and m2["oldest"] == iso(now - 1 * DAY)
    code, out, _ = cli("cache", "info")
    assert code == 0 and "5 entries" in out and "m1 (fp-m1): 3 entries" in out


def test_prune_older_than_removes_only_old_entries_and_stale_temp_files(filled):
    cache, paths, now, bad, old_tmp, new_tmp = filled
    code, out, err = cli("cache", "prune", "--older-than", "30d", "--dry-run")
    assert code == 0 and "would remove 2 entries" in out
    assert all(p.exists() for p in paths["m1"])
    code, out, err = cli("cache", "prune", "--older-than", "30d")
    assert code == 0, err
    assert "removed 2 entries" in out
    assert [p.exists() for p in paths["m1"]] == [False, False, True]
    assert all(cache.get(p.stem) is not None for p in paths["m1"][2:] + paths["m2"])
    assert not old_tmp.exists(), "a 40-day-old temp file is a killed writer's leftover"
    assert new_tmp.exists(), "a fresh temp file may be a write in progress"
    # even 'everything' (0s) never touches a temp file younger than the grace period
    code, out, _ = cli("cache", "prune", "--older-than", "0s")
    assert code == 0 and new_tmp.exists()
    assert not list(cache.root.glob("??/*.json")), "0s removes every entry, readable or not"
    assert all(d.is_dir() for d in {p.parent for p in paths["m1"] + paths["m2"]}), "shard dirs must stay"


def test_prune_also_prunes_the_prompt_memo_by_age(filled):
    """`dispo cache prune` drops memoised rendered prompts older than the cutoff too (they grow
    with every new prompt), keeps young ones, and says so on its own line."""
    from dispo.models.embedded import cache_root

    _, _, now, *_ = filled
    memo = cache_root() / "prompts"
    old, young = memo / "aa" / ("a" * 64 + ".json"), memo / "bb" / ("b" * 64 + ".json")
    for p, age in ((old, 40), (young, 1)):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text('{"text": "x", "key": "%s"}' % p.stem)
        os.utime(p, (now - age * DAY, now - age * DAY))
    code, out, err = cli("cache", "prune", "--older-than", "30d")
    assert code == 0, err
    assert "prompt memo: removed 1 entries" in out
    assert not old.exists() and young.exists()


def test_prune_puts_back_an_entry_a_writer_replaced_between_check_and_removal(filled, monkeypatch):
    """The race the rename-then-recheck exists for: prune stats an old entry, a writer then
    stores a fresh response under the same key, then prune renames. The fresh one survives."""
    from dispo.generate import cache_admin

    cache, paths, now, *_ = filled
    victim = paths["m1"][0]
    real_rename = os.rename

    def racing_rename(src, dst):
        if Path(src) == victim:
            cache.put(victim.stem, "fresh", "stop", 1, model="m1", fingerprint="fp-m1")
        return real_rename(src, dst)

    monkeypatch.setattr(cache_admin.os, "rename", racing_rename)
    r = cache_admin.prune(cache.root, 30 * DAY)
    assert r.raced == 1 and r.removed == 1
    assert cache.get(victim.stem)["output"] == "fresh"
    assert not list(cache.root.rglob("*.prune-*"))


def _writer(root: str, n: int) -> None:
    from dispo.generate.cache import ResponseCache

    c = ResponseCache(root)
    for i in range(n):
        c.put(f"{i % 40:064x}", f"response {i} " + "x" * (i % 300), "stop", i)


def test_prune_racing_a_writer_leaves_a_valid_cache(tmp_path):
    """Two writer processes keep storing (and overwriting) entries while prune runs in a
    loop with a zero cutoff: the writers never fail (no temp file or shard dir pulled from
    under them) and every entry left is whole and readable."""
    from dispo.generate.cache import ResponseCache
    from dispo.generate.cache_admin import prune

    root = tmp_path / "responses"
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(root), 1500)) for _ in range(2)]
    for p in procs:
        p.start()
    rounds = removed = 0
    while any(p.is_alive() for p in procs):
        removed += prune(root, 0.0).removed
        rounds += 1
    for p in procs:
        p.join()
        assert p.exitcode == 0
    assert rounds > 3 and removed > 0, (rounds, removed)
    cache = ResponseCache(root)
    left = list(root.glob("??/*.json"))
    assert all(cache.get(p.stem) is not None for p in left)
    assert not list(root.rglob("*.tmp"))
