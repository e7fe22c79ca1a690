"""`dispo runs` lists the runs under $DISPO_RUNS when no --root is given."""

from __future__ import annotations

from typer.testing import CliRunner

from dispo.cli import app
from dispo.core.runs import Run


def _make_run(root, model):
    run = Run.create("eval", {"model": {"name": model}}, model, root=root)
    run.finish("completed")
    return run


def test_runs_lists_dispo_runs_without_root(tmp_path, monkeypatch):
    env_root, other = tmp_path / "env_runs", tmp_path / "cwd"
    other.mkdir()
    r = _make_run(env_root, "model-in-env")
    _make_run(other / "runs", "model-in-cwd")
    monkeypatch.chdir(other)
    monkeypatch.setenv("DISPO_RUNS", str(env_root))
    out = CliRunner().invoke(app, ["runs"], env={"COLUMNS": "400"})
    assert out.exit_code == 0, out.output
    assert r.dir.name in out.output and "model-in-env" in out.output
    assert "model-in-cwd" not in out.output


def test_root_option_wins_over_dispo_runs(tmp_path, monkeypatch):
    r = _make_run(tmp_path / "a", "m-a")
    monkeypatch.setenv("DISPO_RUNS", str(tmp_path / "b"))
    out = CliRunner().invoke(app, ["runs", "--root", str(tmp_path / "a")], env={"COLUMNS": "400"})
    assert out.exit_code == 0 and r.dir.name in out.output, out.output
