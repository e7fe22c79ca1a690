"""Arcs 2 and 3 SIGKILLed at seeded random points, then `--resume`d: the finished run's
results.json, samples and artifacts equal an uninterrupted run's, byte for byte.

Kill points are events (a seeded stage of the uninterrupted run's stage list has finished)
plus a seeded delay, so they land in the same phase on fast and slow machines. Seed:
DISPO_KILL_SEED (default 9).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from tests.helpers.relhelp import (
    comparable_results,
    comparable_samples,
    env_for,
    make_cache,
    popen_dispo,
    run_dispo,
    watch,
)
from tests.reliability.test_crash_resume import _After, _stage_done

pytestmark = [pytest.mark.slow, pytest.mark.full]

ARCS = {
    "arc2": ["train", "arc2", "model=tiny-llama", "arc.preset=smoke", "decoding.batch_size=1"],
    "arc3": ["train", "arc3", "model=tiny-llama", "arc.preset=smoke", "decoding.batch_size=1"],
}


def _artifacts(run: Path) -> dict[str, bytes]:
    d = run / "artifacts"
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def _manifest(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text())


@pytest.mark.parametrize("arc", sorted(ARCS))
def test_sigkill_at_random_points_then_resume_equals_uninterrupted(arc, tmp_path):
    """Protects: each arc's stage bookkeeping and resume (finished stages reused, unfinished
    ones recomputed from their inputs), atomic writes of every stage output. Two seeded kills
    (the second during the first `--resume`), then a final `--resume`: the run completes in
    the same dir and equals the uninterrupted run in results, samples and artifacts (every
    file's bytes); no file is seen half-written at any poll; finished stages are not redone."""
    args = ARCS[arc]
    env_ref = env_for(make_cache(tmp_path / "cache_ref"))
    p = run_dispo(args + [f"output_dir={tmp_path / 'ref'}"], tmp_path, env_ref, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    (ref,) = [d for d in (tmp_path / "ref").iterdir() if d.is_dir()]
    stages = list(_manifest(ref)["stages"])
    assert len(stages) >= 4, stages

    rng = random.Random(int(os.environ.get("DISPO_KILL_SEED", "9")) * 7 + len(arc))
    # two distinct stages in run order, neither the last: the kill lands in what follows
    after = sorted(rng.sample(range(len(stages) - 1), 2))
    env = env_for(make_cache(tmp_path / "cache"))
    runs = tmp_path / "runs"
    out = args + [f"output_dir={runs}"]
    kills = []
    done_before: dict[str, dict] = {}
    for i, k in enumerate(after):
        stage = stages[k]
        w = watch(
            popen_dispo(out + (["--resume"] if i else []), tmp_path, env),
            [runs],
            kill_when=_After(lambda stage=stage: _stage_done(runs, stage), rng.uniform(0, 0.5)),
            timeout=600,
        )
        assert w["bad"] == [], (stage, w["bad"][:5])
        assert w["rc"] in (0, -9), (stage, w["stderr"][-2000:])
        (run,) = [d for d in runs.iterdir() if d.is_dir()]
        m = _manifest(run)
        if w["rc"] == -9 and m["status"] != "completed":
            kills.append(stage)
        for name, info in done_before.items():
            assert m["stages"][name] == info, f"stage {name} was redone after resume"
        done_before = {n: v for n, v in m["stages"].items() if v.get("status") == "done"}
    assert kills, f"no kill landed before {arc} completed (stages {stages})"

    if _manifest(run)["status"] != "completed":
        w = watch(popen_dispo(out + ["--resume"], tmp_path, env), [runs], timeout=600)
        assert w["rc"] == 0, w["stderr"][-2000:]
        assert w["bad"] == [], w["bad"][:5]
    assert [d for d in runs.iterdir() if d.is_dir()] == [run]
    m = _manifest(run)
    assert m["status"] == "completed" and len(m.get("resumed", [])) >= len(kills)
    for name, info in done_before.items():
        assert m["stages"][name] == info, f"stage {name} was redone after resume"
    assert list(m["stages"]) == stages or set(m["stages"]) == set(stages)
    assert comparable_samples(run) == comparable_samples(ref)
    assert comparable_results(run) == comparable_results(ref)
    a, b = _artifacts(run), _artifacts(ref)
    assert sorted(a) == sorted(b)
    assert [k for k in a if a[k] != b[k]] == [], "artifacts differ from the uninterrupted run"
