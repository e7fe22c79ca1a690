import json
import os

import pytest

from dispo.core.errors import RunDirError
from dispo.core.runs import Run, find_resumable, list_runs


def test_run_dir_layout_and_provenance(tmp_path):
    run = Run.create("eval", {"seed": 3, "model": {"name": "m"}}, "m", root=tmp_path)
    assert run.dir.parent == tmp_path and "_eval_m_" in run.id
    m = run.manifest
    assert m["status"] == "running" and m["seed"] == 3 and "torch" in m["packages"] and m["packages"]["dispo"]
    assert (run.dir / "config.yaml").exists() and (run.dir / "samples").is_dir() and (run.dir / "artifacts").is_dir()
    run.write_samples("base", [{"id": "a"}, {"id": "b"}])
    assert [s["id"] for s in run.read_samples("base")] == ["a", "b"] and run.arms() == ["base"]
    run.complete_stage("gen", {"n": 2})
    assert run.stage_done("gen") and not run.stage_done("score")
    run.finish()
    assert Run.open(run.dir).manifest["status"] == "completed"


def test_concurrent_creators_get_distinct_dirs_and_lock_is_exclusive(tmp_path):
    a = Run.create("eval", {"x": 1}, "m", root=tmp_path)
    b = Run.create("eval", {"x": 1}, "m", root=tmp_path)
    assert a.dir != b.dir
    other = Run.open(a.dir)
    with pytest.raises(RunDirError, match="in use by another dispo process"):
        other.lock()
    a.finish()
    other.lock()  # free after finish
    other.unlock()


def test_find_resumable_only_matches_unfinished_identical_config(tmp_path):
    a = Run.create("eval", {"x": 1}, "m", root=tmp_path)
    a.finish("failed")
    b = Run.create("eval", {"x": 2}, "m", root=tmp_path)
    b.finish()
    assert find_resumable("eval", {"x": 1}, tmp_path) == a.dir
    assert find_resumable("eval", {"x": 2}, tmp_path) is None  # completed
    assert find_resumable("train-arc1", {"x": 1}, tmp_path) is None
    assert [p.name for p in list_runs(tmp_path)] == sorted([a.id, b.id])


def test_corrupt_and_missing_run_dirs_give_clear_errors(tmp_path):
    with pytest.raises(RunDirError, match="does not exist"):
        Run.open(tmp_path / "nope")
    run = Run.create("eval", {"x": 1}, "m", root=tmp_path)
    run.finish()
    (run.dir / "manifest.json").write_text('{"command": "ev')  # truncated
    with pytest.raises(RunDirError, match="manifest.json is corrupt"):
        Run.open(run.dir)
    (tmp_path / "plain").mkdir()
    with pytest.raises(RunDirError, match="not a dispo run"):
        Run.open(tmp_path / "plain")


def test_atomic_write_leaves_old_file_when_writer_dies(tmp_path, monkeypatch):
    from dispo.core import atomic

    p = tmp_path / "results.json"
    atomic.write_json(p, {"v": 1})

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic.write_json(p, {"v": 2})
    assert json.loads(p.read_text()) == {"v": 1}
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_a_run_whose_process_died_reads_interrupted_not_running(tmp_path):
    """A SIGKILLed run leaves status "running" in its manifest; `dispo runs` and `dispo show`
    must not say it is still running."""
    import signal
    import subprocess
    import sys
    import time

    from dispo.core.runs import status_of
    from tests.helpers.cli import run_dispo

    code = (
        "import sys, time; from dispo.core.runs import Run; "
        f"r = Run.create('eval', {{'x': 1}}, 'm', root={str(tmp_path)!r}); print(r.dir, flush=True); time.sleep(120)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        run_dir = proc.stdout.readline().strip()
        m = json.loads(open(os.path.join(run_dir, "manifest.json")).read())
        assert m["status"] == "running" and status_of(run_dir, m) == "running"  # its process holds the lock
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    time.sleep(0.1)
    assert status_of(run_dir, m) == "interrupted"
    done = Run.create("eval", {"x": 2}, "m", root=tmp_path)
    done.finish()
    assert status_of(done.dir, done.manifest) == "completed"
    r = run_dispo("runs", "--root", str(tmp_path), env={**os.environ, "COLUMNS": "240"})
    assert r.returncode == 0 and "interrupted" in r.stdout and "completed" in r.stdout, r.stdout + r.stderr
    assert "running" not in r.stdout, r.stdout
