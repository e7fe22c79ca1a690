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


def test_an_empty_runs_dir_says_so_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("DISPO_RUNS", str(tmp_path / "runs"))
    out = CliRunner().invoke(app, ["runs"], env={"COLUMNS": "400"})
    assert out.exit_code == 0, out.output
    assert (
        out.output.strip()
        == f"no runs in {tmp_path / 'runs'} (`dispo eval` and `dispo train` make them; --root or $DISPO_RUNS)"
    )


def test_show_prints_results_as_metrics_by_arms_at_80_columns(tmp_path):
    run = Run.create("eval", {"model": {"name": "m"}}, "m", root=tmp_path)
    metric = {"value": 0.123456, "ci": [0.0123, 0.2345], "n": 8}
    run.write_results(
        {"base": {"pass@1": metric}, "student": {"pass@1": {**metric, "value": 0.5}}},
        [
            {
                "arm": "student",
                "baseline": "base",
                "metric": "pass@1",
                "base": 0.123456,
                "treat": 0.5,
                "delta": 0.376544,
                "ci": [0.1, 0.6],
                "p": 0.01,
                "p_holm": 0.02,
            }
        ],
    )
    run.finish("completed")
    out = CliRunner().invoke(app, ["show", str(run.dir)], env={"COLUMNS": "80"})
    assert out.exit_code == 0, out.output
    tables = out.output[out.output.index("results") :]
    assert "…" not in tables
    assert max(len(line) for line in tables.splitlines() if not line.startswith("run dir")) <= 80
    header = next(line for line in tables.splitlines() if "metric" in line)
    assert header.index("base") < header.index("student")  # arms are columns
    for s in ("0.1235", "0.5000", "[0.012, 0.234]", "+0.3765", "[+0.100, +0.600]", "0.0200"):
        assert s in tables, s
