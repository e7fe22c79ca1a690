"""dispo.sweep: Hydra sweep expansion, failure isolation, sweep.json, resume; serial and submitit-local."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

from dispo import sweep as S
from dispo.core.errors import ConfigError, DispoError

GRID = ["model=tiny-qwen3,tiny-llama", "domain=code,chef"]
FAST = ["limit=2", "decoding.max_new_tokens=8", "decoding.batch_size=2"]


def _jobs_by(idx: dict) -> dict[tuple[str, str], dict]:
    out = {}
    for j in idx["jobs"]:
        kv = dict(o.split("=", 1) for o in j["overrides"])
        out[(kv["model"], kv["domain"])] = j
    return out


def _manifest(run_dir: str) -> dict:
    return json.loads((Path(run_dir) / "manifest.json").read_text())


# --------------------------------------------------------------------------- expansion


def test_expand_is_hydras_cartesian_product():
    jobs = S.expand(["model=tiny-qwen3,tiny-llama", "seed=range(0,3)", "limit=2"])
    assert len(jobs) == 6
    assert jobs[0] == ["model=tiny-qwen3", "seed=0", "limit=2"]
    assert jobs[1] == ["model=tiny-qwen3", "seed=1", "limit=2"]  # last swept key varies fastest
    assert jobs[-1] == ["model=tiny-llama", "seed=2", "limit=2"]
    assert S.expand(["seed=choice(3,7)"]) == [["seed=3"], ["seed=7"]]
    globbed = S.expand(["model=glob(tiny-*)"])
    names = {j[0].split("=")[1] for j in globbed}
    assert {"tiny-qwen3", "tiny-llama"} <= names and "smollm2-135m" not in names
    # a list value is one value, not a sweep
    assert S.expand(["tasks=[verbal,svr]", "seed=1,2"]) == [
        ["tasks=[verbal,svr]", "seed=1"],
        ["tasks=[verbal,svr]", "seed=2"],
    ]
    assert S.swept_keys(["tasks=[verbal,svr]", "seed=1,2"]) == ["seed"]


@pytest.mark.parametrize(
    "bad,match",
    [
        (["model=a,,b"], "bad sweep override"),
        (["seed=interval(0,1)"], "interval"),
        (["model=glob(zzz*)"], "no jobs"),
    ],
)
def test_bad_sweeps_are_one_line_config_errors(bad, match):
    with pytest.raises(ConfigError, match=match) as e:
        S.expand(bad)
    assert "\n" not in str(e.value)


def test_bad_command_and_launcher(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError):
        S.run_sweep("score", ["seed=1,2"], {}, False)
    with pytest.raises(ConfigError, match="launcher"):
        S.run_sweep("eval", ["seed=1,2", "launcher=serial,local"], {}, False)
    with pytest.raises(ConfigError, match="unknown launcher"):
        S.run_sweep("eval", ["seed=1,2", "launcher=kubernetes"], {}, False)
    with pytest.raises(ConfigError, match="max_parallel"):
        S.run_sweep("eval", ["seed=1,2", "launcher=local", "launcher.max_parallel=0"], {}, False)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").glob("sweep_*"))


def test_slurm_parameters_come_from_the_launcher_config():
    lc, _ = S.launcher_config(
        ["launcher=slurm", "launcher.partition=gpu", "launcher.account=lab", "launcher.max_parallel=3"]
    )
    p = S.slurm_parameters(lc, "x")
    assert p["slurm_partition"] == "gpu" and p["slurm_account"] == "lab" and p["slurm_array_parallelism"] == 3
    assert p["gpus_per_node"] == 1 and p["mem_gb"] == 64.0 and p["timeout_min"] == 720 and p["cpus_per_task"] == 8
    import submitit

    ex = submitit.AutoExecutor(folder="/tmp/dispo-slurm-param-check", cluster="debug")
    ex.update_parameters(**{k: v for k, v in p.items() if not k.startswith("slurm_")})  # generic keys are valid


# --------------------------------------------------------------------------- serial, real eval jobs


@pytest.mark.slow
def test_serial_sweep_isolates_a_failure_and_resume_reruns_only_it(tmp_path, monkeypatch):
    """model x domain grid of real `dispo eval` jobs in-process; one job fails."""
    import dispo.evaluation.eval_run as ER

    monkeypatch.chdir(tmp_path)
    real = ER.run_eval

    def flaky(cfg, run=None, progress=True):
        if cfg["model"]["name"] == "tiny-llama" and cfg["domain"]["name"] == "chef":
            raise RuntimeError("injected failure")
        return real(cfg, run, progress)

    monkeypatch.setattr(ER, "run_eval", flaky)
    with pytest.raises(DispoError, match=r"1 of 4 sweep jobs failed.*model=tiny-llama domain=chef.*injected failure"):
        S.run_sweep("eval", [*GRID, *FAST], {}, False, quiet=True)
    (sweep_dir,) = list((tmp_path / "runs").glob("sweep_*"))
    idx = json.loads((sweep_dir / "sweep.json").read_text())
    jobs = _jobs_by(idx)
    assert idx["counts"] == {"pending": 0, "completed": 3, "failed": 1}
    bad = jobs[("tiny-llama", "chef")]
    assert bad["status"] == "failed" and bad["error"] == "RuntimeError: injected failure"
    assert _manifest(bad["run_dir"])["status"] == "failed"  # its run dir is kept to resume
    for key, j in jobs.items():
        if key != ("tiny-llama", "chef"):
            assert j["status"] == "completed" and _manifest(j["run_dir"])["status"] == "completed"
            res = json.loads((Path(j["run_dir"]) / "results.json").read_text())
            assert res["metrics"]["base"]  # the job really evaluated
    assert len({j["run_dir"] for j in idx["jobs"]}) == 4

    monkeypatch.setattr(ER, "run_eval", real)
    before = {k: j["run_dir"] for k, j in jobs.items()}
    assert S.run_sweep("eval", [*GRID, *FAST], {}, True, quiet=True) == sweep_dir
    jobs2 = _jobs_by(json.loads((sweep_dir / "sweep.json").read_text()))
    assert all(j["status"] == "completed" for j in jobs2.values())
    assert {k: j["run_dir"] for k, j in jobs2.items()} == before  # same run dirs, none new
    assert jobs2[("tiny-llama", "chef")]["attempts"] == 2
    assert _manifest(before[("tiny-llama", "chef")]).get("resumed")
    for key in jobs2:
        if key != ("tiny-llama", "chef"):
            assert jobs2[key]["attempts"] == 1 and not _manifest(before[key]).get("resumed")
    assert len([p for p in (tmp_path / "runs").iterdir() if not p.name.startswith("sweep_")]) == 4


def test_config_error_job_fails_alone_without_a_run_dir(tmp_path, monkeypatch):
    """A value invalid for one job only (limit=0) fails that job with the config error line."""
    import dispo.evaluation.eval_run as ER

    monkeypatch.chdir(tmp_path)
    seen = []

    def fake(cfg, run=None, progress=True):
        seen.append(cfg["limit"])
        run.write_results({"base": {"accuracy": {"value": 0.5, "ci": [0.1, 0.9], "n": cfg["limit"]}}}, [])
        return run

    monkeypatch.setattr(ER, "run_eval", fake)
    with pytest.raises(DispoError, match="1 of 3"):
        S.run_sweep("eval", ["limit=2,0,3", "model=tiny-qwen3"], {}, False, quiet=True)
    assert seen == [2, 3]
    (sweep_dir,) = list((tmp_path / "runs").glob("sweep_*"))
    jobs = json.loads((sweep_dir / "sweep.json").read_text())["jobs"]
    assert [j["status"] for j in jobs] == ["completed", "failed", "completed"]
    assert jobs[1]["run_dir"] is None and "limit must be > 0" in jobs[1]["error"]
    # a different override list is a different sweep: no resume across them
    with pytest.raises(DispoError):
        S.run_sweep("eval", ["limit=2,0", "model=tiny-qwen3"], {}, True, quiet=True)
    assert len(list((tmp_path / "runs").glob("sweep_*"))) == 2


# --------------------------------------------------------------------------- submitit local


_SITE = """
import os
import dispo.evaluation.eval_run as ER

def _fake(cfg, run=None, progress=True):
    key = (cfg["model"]["name"], cfg["domain"]["name"])
    if key == ("tiny-llama", "chef") and os.path.exists({flag!r}):
        raise RuntimeError("injected failure in pid %d" % os.getpid())
    run.write_results({{"base": {{"accuracy": {{"value": 1.0, "ci": [1.0, 1.0], "n": 1}}}}}}, [],
                      {{"pid": os.getpid()}})
    return run

ER.run_eval = _fake
"""


def test_local_launcher_runs_subprocess_jobs_and_resumes_the_failed_one(tmp_path, monkeypatch):
    """launcher=local: every job in a submitit subprocess (2 at a time). The jobs' eval is replaced
    (via sitecustomize in the child) by a fast fake that fails for one grid cell while a flag file
    exists, so this tests the launcher, not the model."""
    site = tmp_path / "site"
    site.mkdir()
    flag = tmp_path / "FAIL"
    flag.write_text("1")
    (site / "sitecustomize.py").write_text(textwrap.dedent(_SITE.format(flag=str(flag))))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.chdir(tmp_path)
    args = [*GRID, "limit=2", "launcher=local", "launcher.max_parallel=2"]

    with pytest.raises(DispoError, match="1 of 4 sweep jobs failed"):
        S.run_sweep("eval", args, {}, False, quiet=True)
    (sweep_dir,) = list((tmp_path / "runs").glob("sweep_*"))
    idx = json.loads((sweep_dir / "sweep.json").read_text())
    assert idx["launcher"]["name"] == "local"
    assert all("launcher" not in o for j in idx["jobs"] for o in j["overrides"])  # not part of the job config
    jobs = _jobs_by(idx)
    bad = jobs[("tiny-llama", "chef")]
    assert bad["status"] == "failed" and bad["error"].startswith("RuntimeError: injected failure in pid")
    pids = set()
    for key, j in jobs.items():
        if key != ("tiny-llama", "chef"):
            assert j["status"] == "completed"
            pids.add(json.loads((Path(j["run_dir"]) / "results.json").read_text())["pid"])
    assert os.getpid() not in pids and len(pids) == 3  # one subprocess per job

    flag.unlink()
    S.run_sweep("eval", args, {}, True, quiet=True)
    jobs2 = _jobs_by(json.loads((sweep_dir / "sweep.json").read_text()))
    assert all(j["status"] == "completed" for j in jobs2.values())
    assert jobs2[("tiny-llama", "chef")]["run_dir"] == bad["run_dir"]
    assert [k for k, j in jobs2.items() if j["attempts"] == 2] == [("tiny-llama", "chef")]
    assert _manifest(bad["run_dir"])["status"] == "completed" and _manifest(bad["run_dir"]).get("resumed")


def test_cli_train_multirun_exits_nonzero_with_one_line(tmp_path):
    """`dispo train arc9 --multirun ...`: every job fails (unknown arc); exit 1, one error line."""
    import subprocess

    exe = Path(sys.executable).parent / "dispo"
    if not exe.exists():
        pytest.skip("dispo console script not installed")
    p = subprocess.run(
        [str(exe), "train", "arc9", "--multirun", "seed=1,2"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 1
    err = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(err) == 1 and "2 of 2 sweep jobs failed" in err[0] and "unknown arc" in err[0]
    assert "failed" in p.stdout  # the summary table
