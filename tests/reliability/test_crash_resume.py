"""Crash safety and concurrency of run directories and the response cache, end to end.

Real `dispo` processes (python -m dispo.cli) on the random-init tiny-llama: SIGKILLed at
seeded random points, resumed with --resume, raced against each other. While any of them
runs, the run dir and the response cache are polled and every .json / .jsonl line / .yaml /
.npz is parsed: a half-written file anywhere fails the test (`.<name>.*.tmp` temp files of
atomic writes are allowed).

Seed of the kill points: DISPO_KILL_SEED (default 9); the points are events (k responses
cached, samples written) plus a seeded delay, so they land in the same phase on fast and slow
machines.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import random
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.helpers.relhelp import (
    check_file,
    comparable_results,
    comparable_samples,
    env_for,
    make_cache,
    one_error_line,
    popen_dispo,
    run_dispo,
    snapshot,
    watch,
)

# batch_size=1: greedy output is then bit-identical whatever subset of items a resumed process
# still has to generate (with larger batches the engine only promises equality up to fp32
# rounding between batch shapes; see docs/guarantees.md).
OVERRIDES = ["model=tiny-llama", "domain=code", "limit=6", "decoding.max_new_tokens=32", "decoding.batch_size=1"]
EVAL = ["eval", *OVERRIDES, "-q"]
N_ITEMS = 6


def _cache_entries(cache: Path) -> list[Path]:
    d = cache / "responses"
    return sorted(d.glob("??/*.json")) if d.exists() else []


def _inodes(paths: list[Path]) -> dict[str, tuple[int, int]]:
    out = {}
    for p in paths:
        try:
            st = p.stat()
            out[str(p)] = (st.st_ino, st.st_mtime_ns)
        except FileNotFoundError:
            pass
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Two identical evals started at the same moment in the same directory, sharing one
    fresh response cache. Their runs are the uninterrupted reference for the kill test."""
    base = tmp_path_factory.mktemp("concurrent")
    cache = make_cache(base / "cache")
    env = env_for(cache)
    procs = [popen_dispo(EVAL, base, env) for _ in range(2)]
    w = watch(procs, [base / "runs", cache / "responses"])
    runs = sorted(p for p in (base / "runs").iterdir() if p.is_dir()) if (base / "runs").exists() else []
    return SimpleNamespace(base=base, cache=cache, watch=w, runs=runs)


def test_two_concurrent_evals_get_two_run_dirs_and_a_consistent_shared_cache(reference):
    """Protects: Run.create's atomic mkdir + random suffix (two processes starting the same
    eval in the same second never share a run dir), the run lock, and the response cache's
    temp-file + os.replace writes under two processes putting the same keys (every entry
    whole at every poll, every entry valid afterwards, no temp files left)."""
    w = reference.watch
    assert w["rc"] == [0, 0], w["stderr"]
    assert w["bad"] == [], w["bad"][:5]
    assert len(reference.runs) == 2 and reference.runs[0] != reference.runs[1]
    for r in reference.runs:
        m = json.loads((r / "manifest.json").read_text())
        assert m["status"] == "completed" and m["stages"]["arm:base"]["status"] == "done"
    a, b = reference.runs
    assert comparable_samples(a) == comparable_samples(b)
    assert comparable_results(a) == comparable_results(b)

    from dispo.generate.cache import ResponseCache

    entries = _cache_entries(reference.cache)
    assert len(entries) == N_ITEMS
    cache = ResponseCache(reference.cache / "responses")
    assert all(cache.get(p.stem) is not None for p in entries)
    assert not list((reference.cache / "responses").rglob("*.tmp"))


class _After:
    """Kill trigger: `cond()` became true, then `delay` seconds passed."""

    def __init__(self, cond, delay: float):
        self.cond, self.delay, self.t = cond, delay, None

    def __call__(self) -> bool:
        if self.t is None and self.cond():
            self.t = time.monotonic()
        return self.t is not None and time.monotonic() - self.t >= self.delay


def test_sigkill_at_random_points_then_resume_equals_uninterrupted_run(reference, tmp_path):
    """Protects: atomic writes (dispo.core.atomic, response cache), stage bookkeeping in
    manifest.json and `--resume` (find_resumable + Run.resume). A run SIGKILLed during model
    load/generation, mid-generation (after k of 6 responses are cached, with one cached entry
    then truncated on disk) and during scoring/writing resumes to samples and results equal
    to an uninterrupted run's in every field; responses cached before a kill are never
    regenerated (same inode); the truncated entry is a miss and is rewritten; no file in the
    run dir or cache is ever seen half-written."""
    assert reference.watch["rc"] == [0, 0]
    rng = random.Random(int(os.environ.get("DISPO_KILL_SEED", "9")))
    cache = make_cache(tmp_path / "cache")
    env = env_for(cache)
    runs = tmp_path / "runs"

    def n_cached() -> int:
        return len(_cache_entries(cache))

    def manifest_seen() -> bool:
        return any(runs.glob("*/manifest.json"))

    def samples_seen() -> bool:
        return any(runs.glob("*/samples/base.jsonl"))

    k1 = rng.randint(0, 2)
    k2 = rng.randint(k1 + 1, N_ITEMS - 1)
    plan = [
        (f"generation, after {k1} cached", _After(lambda: manifest_seen() and n_cached() >= k1, rng.uniform(0, 0.3))),
        (f"generation, after {k2} cached", _After(lambda: n_cached() >= k2, rng.uniform(0, 0.05))),
        ("scoring/writing", _After(lambda: n_cached() >= N_ITEMS or samples_seen(), rng.uniform(0, 0.3))),
    ]
    kills, interrupted = [], []
    n_resumes = 0
    corrupted: Path | None = None
    for i, (phase, trigger) in enumerate(plan):
        before = _inodes(_cache_entries(cache))
        args = EVAL + (["--resume"] if i else [])
        n_resumes += bool(i)
        w = watch(popen_dispo(args, tmp_path, env), [runs, cache / "responses"], kill_when=trigger)
        bad = [b for b in w["bad"] if corrupted is None or not b.startswith(str(corrupted))]
        assert bad == [], (phase, bad[:5])
        assert w["rc"] in (0, -9), (phase, w["stderr"][-2000:])
        if w["killed"] and w["rc"] == -9:
            kills.append(phase)
            ms = list(runs.glob("*/manifest.json"))
            # A kill that lands after the run was marked completed leaves nothing to resume.
            if ms and json.loads(ms[0].read_text()).get("status") != "completed":
                interrupted.append(phase)
        after = _inodes(_cache_entries(cache))
        kept = {p: v for p, v in before.items() if p != str(corrupted)}
        assert all(after.get(p) == v for p, v in kept.items()), f"{phase}: a cached response was regenerated"
        if corrupted is not None:
            assert check_file(corrupted) is None, "corrupt cache entry was not rewritten"
            corrupted = None
        if i == 1 and _cache_entries(cache):  # truncate one cached response: must be a miss
            corrupted = rng.choice(_cache_entries(cache))
            data = corrupted.read_bytes()
            corrupted.write_bytes(data[: len(data) // 2])

    assert len(kills) >= 2, f"only {kills} of the kill points hit a running process"
    dirs = sorted(p for p in runs.iterdir() if p.is_dir())
    m = json.loads((dirs[-1] / "manifest.json").read_text())
    if m["status"] != "completed" or corrupted is not None:
        n_resumes += 1
        w = watch(popen_dispo(EVAL + ["--resume"], tmp_path, env), [runs, cache / "responses"])
        assert w["rc"] == 0, w["stderr"][-2000:]
        assert [b for b in w["bad"] if corrupted is None or not b.startswith(str(corrupted))] == []
    dirs = sorted(p for p in runs.iterdir() if p.is_dir())
    assert len(dirs) == 1, f"resume created a new run instead of continuing: {dirs}"
    run = dirs[0]
    m = json.loads((run / "manifest.json").read_text())
    assert m["status"] == "completed"
    # a resume killed before it got to the manifest records nothing, so only bounds hold: the
    # run that finished an interrupted run was a resume, and no resume is recorded twice
    assert (1 if interrupted else 0) <= len(m.get("resumed", [])) <= n_resumes
    ref = reference.runs[0]
    assert comparable_samples(run) == comparable_samples(ref)
    assert comparable_results(run) == comparable_results(ref)
    assert len(_cache_entries(cache)) == N_ITEMS


def test_resume_of_a_locked_run_is_refused_with_one_line(tmp_path, dispo_cache, monkeypatch):
    """Protects: the run's flock (Run.lock). While one process holds a run, a second
    `dispo eval --resume` (which finds that run) or `--run-dir RUN` exits 2 with one
    `error:` line naming the lock, and the run's files stay byte-identical."""
    from dispo.core.config import compose_config
    from dispo.core.runs import Run

    monkeypatch.chdir(tmp_path)
    cfg = compose_config(OVERRIDES)
    run = Run.create("eval", cfg, "tiny-llama", root=tmp_path / "runs", overrides=OVERRIDES)  # holds the lock
    try:
        before = snapshot(run.dir)
        env = env_for(dispo_cache)
        for extra in (["--resume"], ["--run-dir", str(run.dir)]):
            r = run_dispo(EVAL + extra, tmp_path, env, timeout=120)
            assert r.returncode == 2, (extra, r.stderr)
            assert "in use by another dispo process" in one_error_line(r.stderr)
        assert snapshot(run.dir) == before
        assert [p.name for p in (tmp_path / "runs").iterdir()] == [run.dir.name]
    finally:
        run.unlock()


def _create(root: str, barrier, q) -> None:
    from dispo.core.runs import Run

    barrier.wait()
    run = Run.create("eval", {"seed": 0, "model": {"name": "m"}}, "m", root=root)
    q.put(run.dir.name)


def test_simultaneous_run_create_never_shares_a_directory(tmp_path):
    """Protects: Run.create's `mkdir` (atomic, fails if the dir exists) + random suffix:
    8 processes released by one barrier with the same config and the same clock second
    each get their own run dir."""
    ctx = mp.get_context("fork")
    n = 8
    barrier, q = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_create, args=(str(tmp_path), barrier, q)) for _ in range(n)]
    for p in procs:
        p.start()
    names = [q.get(timeout=60) for _ in range(n)]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert len(set(names)) == n


ARC3 = ["train", "arc3", "model=tiny-llama", "arc.preset=smoke"]


def _stage_done(runs: Path, stage: str) -> bool:
    """The (single) run under `runs` has finished `stage` (a half-written manifest reads as not yet)."""
    for m in runs.glob("*/manifest.json"):
        try:
            return json.loads(m.read_text()).get("stages", {}).get(stage, {}).get("status") == "done"
        except (OSError, ValueError):
            return False
    return False


def test_arc3_sigkill_then_resume_redoes_nothing_finished(tmp_path):
    """Protects: the arc3 recipe's stage bookkeeping (run.stage_done / complete_stage) and
    `dispo train --resume`. SIGKILLed right after a seeded-random stage finished, the resumed
    run completes in the same run dir, keeps every stage finished before the kill untouched
    (same `finished` time, sample/feature files not rewritten: same inode), and no file is
    ever seen half-written. (Equality with an uninterrupted arc3 run is not checked here: the
    eval kill test covers output equality.)"""
    from dispo.arcs import ARCS

    if "arc3" not in ARCS.names():
        pytest.skip("arc3 is not registered")
    rng = random.Random(int(os.environ.get("DISPO_KILL_SEED", "9")))
    cache = make_cache(tmp_path / "cache")
    env = env_for(cache)
    runs = tmp_path / "runs"
    stage = rng.choice(["arm:eval", "arm:fresh", "features:eval"])

    w = watch(
        popen_dispo(ARC3, tmp_path, env),
        [runs],
        kill_when=_After(lambda: _stage_done(runs, stage), rng.uniform(0, 0.2)),
    )
    assert w["bad"] == [], w["bad"][:5]
    if not (w["killed"] and w["rc"] == -9):
        pytest.fail(f"arc3 finished (rc {w['rc']}) before the kill after stage {stage}: {w['stderr'][-500:]}")
    (run,) = [p for p in runs.iterdir() if p.is_dir()]
    m0 = json.loads((run / "manifest.json").read_text())
    assert m0["status"] == "running"
    done0 = {k: v for k, v in m0["stages"].items() if v.get("status") == "done"}
    assert stage in done0
    files0 = _inodes([p for p in run.rglob("*") if p.is_file() and p.suffix in (".jsonl", ".npz")])

    w = watch(popen_dispo(ARC3 + ["--resume"], tmp_path, env), [runs])
    assert w["rc"] == 0, w["stderr"][-2000:]
    assert w["bad"] == [], w["bad"][:5]
    assert [p for p in runs.iterdir() if p.is_dir()] == [run]
    m1 = json.loads((run / "manifest.json").read_text())
    assert m1["status"] == "completed" and len(m1.get("resumed", [])) == 1
    for name, info in done0.items():
        assert m1["stages"][name] == info, f"stage {name} was redone after resume"
    files1 = _inodes(list(map(Path, files0)))
    assert files1 == files0, "a finished stage's file was rewritten"
    assert (run / "results.json").exists()


ARC1 = [
    "train",
    "arc1",
    "model=tiny-llama",
    "domain=code",
    "arc.preset=smoke",
    "limit=4",
    "arc.train_limit=6",
    "decoding.max_new_tokens=8",
    "decoding.batch_size=1",
    "arc.teachers.decoding.max_new_tokens=8",
    "arc.teachers.decoding.batch_size=1",
    "arc.sft.max_steps=6",
    "arc.dpo.max_steps=3",
    "arc.sft.max_length=512",
    "arc.dpo.max_length=512",
    "arc.progress=false",
    "arc.sft.progress=false",
    "arc.dpo.progress=false",
    *[f"arc.teachers.stages.{s}.model=tiny-llama" for s in ("eager", "deliberate", "adversarial", "synthesizer")],
]


@pytest.mark.full
def test_arc1_sigkill_during_training_then_resume_equals_uninterrupted_and_falsify_survives_a_kill(tmp_path):
    """Protects: arc1's stage bookkeeping through SFT/DPO, `dispo train --resume`, and falsify's
    atomic outputs. Arc 1 on tiny-llama is SIGKILLed while LoRA SFT or DPO trains; `--resume`
    finishes in the same dir without redoing a finished stage, and its samples and results equal
    an uninterrupted run's in every field (CPU training is seeded). Then `dispo falsify` on it is
    SIGKILLed mid-way: the run's own files are untouched, no file is half-written, and a rerun
    gives the same verdicts as falsify on the uninterrupted run."""
    rng = random.Random(int(os.environ.get("DISPO_KILL_SEED", "9")))
    env_ref = env_for(make_cache(tmp_path / "cache_ref"))
    ref_runs = tmp_path / "ref"
    p = run_dispo(ARC1 + [f"output_dir={ref_runs}"], tmp_path, env_ref, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    (ref,) = [d for d in ref_runs.iterdir() if d.is_dir()]

    env = env_for(make_cache(tmp_path / "cache"))
    runs = tmp_path / "runs"
    stage = rng.choice(["data", "sft"])  # killed during SFT or during DPO
    w = watch(
        popen_dispo(ARC1 + [f"output_dir={runs}"], tmp_path, env),
        [runs],
        kill_when=_After(lambda: _stage_done(runs, stage), rng.uniform(0.5, 2.0)),
        timeout=600,
    )
    assert w["bad"] == [], w["bad"][:5]
    if not (w["killed"] and w["rc"] == -9):
        pytest.fail(f"arc1 finished (rc {w['rc']}) before the kill after stage {stage}: {w['stderr'][-500:]}")
    (run,) = [d for d in runs.iterdir() if d.is_dir()]
    m0 = json.loads((run / "manifest.json").read_text())
    assert m0["status"] == "running"
    done0 = {k: v for k, v in m0["stages"].items() if v.get("status") == "done"}
    assert stage in done0 and "results" not in done0

    w = watch(popen_dispo(ARC1 + [f"output_dir={runs}", "--resume"], tmp_path, env), [runs], timeout=600)
    assert w["rc"] == 0, w["stderr"][-2000:]
    assert w["bad"] == [], w["bad"][:5]
    assert [d for d in runs.iterdir() if d.is_dir()] == [run]
    m1 = json.loads((run / "manifest.json").read_text())
    assert m1["status"] == "completed" and len(m1.get("resumed", [])) == 1
    for name, info in done0.items():
        assert m1["stages"][name] == info, f"stage {name} was redone after resume"
    assert comparable_samples(run) == comparable_samples(ref)

    def untimed(res: dict) -> dict:  # wall-clock fields of the training stages differ by nature
        for info in res.get("training", {}).values():
            info.pop("finished", None), info.pop("seconds", None)
        return res

    assert untimed(comparable_results(run)) == untimed(comparable_results(ref))
    assert (
        json.loads((run / "artifacts" / "sft_log.json").read_text())["history"]
        == json.loads((ref / "artifacts" / "sft_log.json").read_text())["history"]
    )

    # falsify: killed at a seeded moment (its claims on a random-init model are mostly zero-delta,
    # so it regenerates little; the kill still lands while it loads, checks and writes), then rerun
    fals = ["falsify", "falsify.seeds=[1]"]
    p = run_dispo(fals[:1] + [str(ref)] + fals[1:], tmp_path, env_ref, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    before = snapshot(run)
    # falsify of zero-delta claims takes under a second, so the kill may miss: retry, seeded
    for _ in range(8):
        w = watch(
            popen_dispo(fals[:1] + [str(run)] + fals[1:], tmp_path, env),
            [run, tmp_path / "cache" / "responses"],
            kill_when=_After(lambda: True, rng.uniform(0.05, 0.6)),
            timeout=600,
        )
        assert w["bad"] == [], w["bad"][:5]
        if w["killed"] and w["rc"] == -9:
            break
    else:
        pytest.fail("falsify finished before every one of 8 seeded kills")
    after = snapshot(run)
    assert {k: v for k, v in after.items() if not k.startswith("falsify/")} == before, (
        "falsify changed the run's own files"
    )
    p = run_dispo(fals[:1] + [str(run)] + fals[1:], tmp_path, env, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]

    def verdicts(d: Path) -> dict:
        out = json.loads((d / "falsify" / "falsify.json").read_text())
        return {c["id"]: (c["verdict"], c["reasons"]) for c in out["claims"]}

    assert verdicts(run) == verdicts(ref)
