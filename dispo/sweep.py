"""Sweeps: Hydra's sweep syntax expanded into jobs, executed serially, locally or on SLURM.

    dispo train arc1 --multirun model=qwen3-0.6b,qwen3-1.7b domain=code,chef launcher=local
    dispo eval --multirun model=tiny-qwen3,tiny-llama 'limit=range(2,6,2)' launcher=slurm

Expansion is Hydra 1.3's own: `OverridesParser.parse_overrides` then
`BasicSweeper.split_arguments` (comma lists, `choice(...)`, `range(...)`, `glob(...)` over a
config group) into the cartesian product. Each job is one ordinary run (`run_train` /
`run_eval`), so it gets its own run directory. Execution:

    launcher=serial   in this process, one job after another (default)
    launcher=local    submitit LocalExecutor subprocesses, at most launcher.max_parallel at once
    launcher=slurm    submitit AutoExecutor(cluster="slurm"): partition, gpus_per_node,
                      cpus_per_task, mem_gb, timeout_min, account, max_parallel (array throttle)

The sweep directory `<output_dir>/sweep_<time>_<hash>/sweep.json` indexes the jobs (overrides,
run dir, status completed|failed|pending, error line) and is rewritten atomically after every
job. One job's failure never stops the others; the summary table lists them and the command
exits non-zero. `--resume` finds the sweep by hash (command + base + job overrides; the
launcher is not part of it, so a sweep started on SLURM can be finished locally) and re-runs
only the jobs that did not complete, continuing their run directories.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from dispo.core import atomic
from dispo.core.errors import ConfigError, DispoError

SWEEP_FILE = "sweep.json"
STATUSES = ("pending", "completed", "failed")
_LAUNCHERS = ("serial", "local", "slurm")


# --------------------------------------------------------------------------- expansion


class _GroupOptions:
    """The bit of Hydra's ConfigLoader that `glob(...)` sweeps need: a group's option names."""

    def get_group_options(
        self, group_name: str, results_filter: Any = None, config_name: Any = None, overrides: Any = None
    ) -> list[str]:
        from dispo.core.config import group_options

        return group_options(group_name)


def _key(override: str) -> str:
    k = override.split("=", 1)[0].strip()
    return k.lstrip("+~")


def _is_launcher(override: str) -> bool:
    k = _key(override)
    return k == "launcher" or k.startswith("launcher.")


def parse(overrides: list[str]) -> list:
    """Hydra Override objects; a syntax error becomes one ConfigError line."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        return OverridesParser.create(config_loader=_GroupOptions()).parse_overrides(list(overrides))
    except Exception as e:  # hydra's OverrideParseException and friends
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(
            f"bad sweep override ({msg}); e.g. model=a,b 'seed=range(0,3)' 'model=glob(tiny-*)'"
        ) from None


def expand(overrides: list[str]) -> list[list[str]]:
    """The cartesian product of the sweep overrides, each job as a list of `key=value` strings
    (Hydra's BasicSweeper order: the last key varies fastest)."""
    import itertools

    from hydra.errors import HydraException

    parsed = parse(overrides)
    for o in parsed:
        if o.is_sweep_override() and not o.is_discrete_sweep():
            raise ConfigError(
                f"'{o.input_line}': interval() sweeps need an optimising sweeper; "
                f"use a comma list, choice(...) or range(...)"
            )
    # Hydra's BasicSweeper expansion, through the public Override API: one list of
    # `key=value` per key (a repeated key keeps its first position, its last values),
    # then the cartesian product
    per_key: dict[str, list[str]] = {}
    try:
        for o in parsed:
            key = o.get_key_element()
            values = list(o.sweep_string_iterator()) if o.is_sweep_override() else [o.get_value_element_as_str()]
            per_key[key] = [f"{key}={v}" for v in values]
    except HydraException as e:
        raise ConfigError(f"cannot expand sweep ({str(e).splitlines()[0]})") from None
    jobs = [list(j) for j in itertools.product(*per_key.values())]
    if not jobs:
        raise ConfigError("the sweep expands to no jobs; check range(...)/glob(...) bounds")
    for job in jobs:  # glob() over a group with no match, or an empty range, yields nothing
        if len({_key(o) for o in job}) != len(job):
            raise ConfigError(f"the same key is given twice in {job}")
    return [list(j) for j in jobs]


def swept_keys(overrides: list[str]) -> list[str]:
    return [o.get_key_element().lstrip("+~") for o in parse(overrides) if o.is_sweep_override()]


def sweep_hash(command: str, base: dict, job_overrides: list[str]) -> str:
    blob = json.dumps({"command": command, "base": base or {}, "overrides": list(job_overrides)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


# --------------------------------------------------------------------------- one job


def _error_line(e: BaseException) -> str:
    if isinstance(e, DispoError):
        return str(e).splitlines()[0] if str(e) else type(e).__name__
    first = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {first}"[:500]


def _split_command(command: str) -> tuple[str, str | None]:
    parts = command.split()
    if not parts or parts[0] not in ("train", "eval"):
        raise ConfigError(f"sweep command {command!r} must be 'train ARC' or 'eval'")
    if parts[0] == "train":
        if len(parts) != 2:
            raise ConfigError(f"sweep command {command!r} must name one arc, e.g. 'train arc1'")
        return "train", parts[1]
    return "eval", None


def run_job(command: str, overrides: list[str], base: dict, resume: bool = False, run_dir: str | None = None) -> dict:
    """Run one sweep job in this process. Never raises for a job failure (KeyboardInterrupt
    excepted): returns {"status", "run_dir", "error"}. This is what submitit pickles."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    kind, arc = _split_command(command)
    cfg: dict | None = None
    rd = Path(run_dir) if run_dir and Path(run_dir).exists() else None
    try:
        from dispo.core.config import compose_config

        if kind == "train":
            from dispo.arcs.train_run import run_train

            cfg = compose_config(overrides, base={**(base or {}), "arc": arc})
            run = run_train(arc, overrides, resume=resume, run_dir=rd, cfg=cfg)
        else:
            from dispo.core.lifecycle import lifecycle, open_or_create
            from dispo.evaluation.eval_run import run_eval

            cfg = compose_config(overrides, base=base or None)
            run = open_or_create("eval", cfg, overrides, resume, rd)
            with lifecycle(run):
                run_eval(cfg, run, progress=False)
        return {"status": "completed", "run_dir": str(Path(run.dir).resolve()), "error": None}
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # noqa: BLE001 - a job's failure is data for the sweep
        return {
            "status": "failed",
            "run_dir": _failed_run_dir(kind, arc, cfg, rd),
            "error": _error_line(e),
            "traceback": traceback.format_exc()[-4000:],
        }


def _failed_run_dir(kind: str, arc: str | None, cfg: dict | None, rd: Path | None) -> str | None:
    """The run dir a failed job left behind (to resume it), if it got that far."""
    if rd is not None:
        return str(rd.resolve())
    if cfg is None:
        return None
    from dispo.core.runs import find_resumable

    found = find_resumable("eval" if kind == "eval" else f"train-{arc}", cfg, cfg.get("output_dir") or "runs")
    return str(found.resolve()) if found else None


# --------------------------------------------------------------------------- sweep index


def _now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


class SweepIndex:
    """`sweep.json`: written atomically on every change."""

    def __init__(self, path: Path, data: dict):
        self.path = path
        self.data = data

    @property
    def dir(self) -> Path:
        return self.path.parent

    @property
    def jobs(self) -> list[dict]:
        return self.data["jobs"]

    @classmethod
    def load(cls, sweep_dir: Path) -> "SweepIndex":
        p = Path(sweep_dir) / SWEEP_FILE
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DispoError(f"{sweep_dir} is not a sweep directory (no {SWEEP_FILE})") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DispoError(f"{p} is corrupt ({type(e).__name__}); delete the sweep dir and start again") from None
        if not isinstance(data, dict) or not isinstance(data.get("jobs"), list):
            raise DispoError(f"{p} has no 'jobs' list; delete the sweep dir and start again")
        return cls(p, data)

    def save(self) -> None:
        counts = {s: 0 for s in STATUSES}
        for j in self.jobs:
            counts[j.get("status", "pending")] = counts.get(j.get("status", "pending"), 0) + 1
        self.data["counts"] = counts
        self.data["updated"] = _now()
        atomic.write_json(self.path, self.data)

    def update(self, index: int, result: dict) -> None:
        job = self.jobs[index]
        job["status"] = result.get("status", "failed")
        job["error"] = result.get("error")
        if result.get("run_dir"):
            job["run_dir"] = result["run_dir"]
        job["ended"] = _now()
        job["attempts"] = int(job.get("attempts", 0)) + 1
        if result.get("traceback"):
            job["traceback"] = result["traceback"]
        else:
            job.pop("traceback", None)
        self.save()


def find_sweep(root: Path, h: str) -> Path | None:
    if not root.exists():
        return None
    found = sorted(p for p in root.glob(f"sweep_*_{h}") if (p / SWEEP_FILE).exists())
    return found[-1] if found else None


def _new_index(
    root: Path,
    command: str,
    base: dict,
    user_overrides: list[str],
    job_overrides: list[str],
    jobs: list[list[str]],
    h: str,
) -> SweepIndex:
    root.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%d_%H%M%S")
    d = root / f"sweep_{stamp}_{h}"
    n = 1
    while True:
        try:
            d.mkdir()
            break
        except FileExistsError:
            n += 1
            d = root / f"sweep_{stamp}.{n}_{h}"
    idx = SweepIndex(
        d / SWEEP_FILE,
        {
            "kind": "dispo-sweep",
            "command": command,
            "base": base or {},
            "overrides": list(user_overrides),
            "job_overrides": list(job_overrides),
            "swept": swept_keys(job_overrides),
            "hash": h,
            "created": _now(),
            "jobs": [
                {"index": i, "overrides": j, "run_dir": None, "status": "pending", "error": None, "attempts": 0}
                for i, j in enumerate(jobs)
            ],
        },
    )
    idx.save()
    return idx


# --------------------------------------------------------------------------- launchers


def launcher_config(overrides: list[str]) -> tuple[dict, str]:
    """(launcher config, output_dir) from the launcher.* and output_dir overrides."""
    from dispo.core.config import compose_config

    keep = [o for o in overrides if _is_launcher(o) or _key(o) == "output_dir"]
    cfg = compose_config(keep)
    lc = dict(cfg.get("launcher") or {"name": "serial"})
    if lc.get("name") not in _LAUNCHERS:
        raise ConfigError(f"unknown launcher '{lc.get('name')}'; valid choices: {', '.join(_LAUNCHERS)}")
    mp = lc.get("max_parallel", 1)
    if lc["name"] != "serial" and (not isinstance(mp, int) or isinstance(mp, bool) or mp < 1):
        raise ConfigError(f"launcher.max_parallel must be an integer >= 1, got {mp!r}")
    return lc, str(cfg.get("output_dir") or "runs")


def slurm_parameters(lc: dict, name: str) -> dict:
    """AutoExecutor.update_parameters kwargs for dispo/conf/launcher/slurm.yaml."""
    p: dict[str, Any] = {
        "name": name,
        "timeout_min": int(lc.get("timeout_min") or 60),
        "gpus_per_node": int(lc.get("gpus_per_node") or 0),
        "cpus_per_task": int(lc.get("cpus_per_task") or 1),
        "slurm_array_parallelism": int(lc.get("max_parallel") or 16),
    }
    if lc.get("mem_gb"):
        p["mem_gb"] = float(lc["mem_gb"])
    if lc.get("partition"):
        p["slurm_partition"] = str(lc["partition"])
    if lc.get("account"):
        p["slurm_account"] = str(lc["account"])
    return p


def _job_args(idx: SweepIndex, i: int, resume: bool) -> tuple:
    job = idx.jobs[i]
    retry = resume or job.get("attempts", 0) > 0
    return (idx.data["command"], job["overrides"], idx.data["base"], retry, job.get("run_dir"))


def _launch_serial(idx: SweepIndex, todo: list[int], resume: bool, say: Callable[[str], None]) -> None:
    for i in todo:
        say(f"[{i + 1}/{len(idx.jobs)}] {' '.join(idx.jobs[i]['overrides'])}")
        idx.update(i, run_job(*_job_args(idx, i, resume)))
        say(f"  -> {idx.jobs[i]['status']}" + (f": {idx.jobs[i]['error']}" if idx.jobs[i].get("error") else ""))


def _job_error(job: Any) -> str:
    """One line from a submitit job that raised or died (timeout, OOM kill, bad pickle)."""
    try:
        exc = job.exception()
    except Exception as e:  # noqa: BLE001
        return _error_line(e)
    if exc is None:
        return "job ended without a result"
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:500]


def _launch_submitit(
    idx: SweepIndex, todo: list[int], resume: bool, lc: dict, say: Callable[[str], None], poll_s: float = 0.5
) -> None:
    import submitit

    folder = idx.dir / ".submitit"
    name = f"dispo-{idx.dir.name}"
    if lc["name"] == "slurm":
        ex = submitit.AutoExecutor(folder=str(folder), cluster="slurm")
        ex.update_parameters(**slurm_parameters(lc, name))
        max_parallel = len(todo)  # SLURM throttles the array itself
    else:
        ex = submitit.AutoExecutor(folder=str(folder), cluster="local")
        ex.update_parameters(timeout_min=int(lc.get("timeout_min") or 60), name=name)
        max_parallel = int(lc.get("max_parallel") or 1)
    queue = list(todo)
    running: dict[int, Any] = {}
    try:
        while queue or running:
            while queue and len(running) < max_parallel:
                i = queue.pop(0)
                running[i] = ex.submit(run_job, *_job_args(idx, i, resume))
                idx.jobs[i]["job_id"] = str(running[i].job_id)
                idx.jobs[i]["started"] = _now()
                idx.save()
                say(f"[{i + 1}/{len(idx.jobs)}] submitted {running[i].job_id}: {' '.join(idx.jobs[i]['overrides'])}")
            finished = [i for i, j in running.items() if j.done()]
            for i in finished:
                j = running.pop(i)
                try:
                    res = j.result()
                    if not isinstance(res, dict):
                        res = {"status": "failed", "error": f"job returned {type(res).__name__}, not a result"}
                except Exception:  # noqa: BLE001 - the subprocess died or raised outside run_job
                    res = {"status": "failed", "error": _job_error(j)}
                idx.update(i, res)
                say(
                    f"  job {i + 1} -> {idx.jobs[i]['status']}"
                    + (f": {idx.jobs[i]['error']}" if idx.jobs[i].get("error") else "")
                )
            if not finished:
                time.sleep(poll_s)
    except KeyboardInterrupt:
        for j in running.values():
            try:
                j.cancel(check=False)
            except Exception:  # noqa: BLE001
                pass
        raise


# --------------------------------------------------------------------------- entry point


def run_sweep(
    command: str, overrides: list[str], base: dict | None = None, resume: bool = False, quiet: bool = False
) -> Path:
    """Expand, run (or resume) every job, summarise. Returns the sweep dir; raises DispoError
    (after writing sweep.json and printing the summary) when any job failed."""
    _split_command(command)
    base = dict(base or {})
    overrides = list(overrides or [])
    job_overrides = [o for o in overrides if not _is_launcher(o)]
    if any(_is_launcher(o) for o in overrides) and any(
        o.is_sweep_override() for o in parse([o for o in overrides if _is_launcher(o)])
    ):
        raise ConfigError("the launcher cannot be swept; pick one launcher=serial|local|slurm")
    jobs = expand(job_overrides)
    lc, out_root = launcher_config(overrides)
    h = sweep_hash(command, base, job_overrides)
    root = Path(out_root).resolve()

    from rich.console import Console

    con = Console(stderr=False)
    say = (lambda s: None) if quiet else (lambda s: con.print(s, markup=False, highlight=False, soft_wrap=True))

    idx: SweepIndex | None = None
    if resume:
        found = find_sweep(root, h)
        if found is not None:
            idx = SweepIndex.load(found)
            if [j["overrides"] for j in idx.jobs] != jobs:
                raise DispoError(f"{found} holds a different job list; start a new sweep without --resume")
    if idx is None:
        idx = _new_index(root, command, base, overrides, job_overrides, jobs, h)
    idx.data["launcher"] = lc
    idx.save()
    todo = [i for i, j in enumerate(idx.jobs) if not _is_done(j)]
    say(f"sweep {idx.dir}: {len(idx.jobs)} jobs, {len(todo)} to run, launcher={lc['name']}")
    if todo:
        if lc["name"] == "serial":
            _launch_serial(idx, todo, resume, say)
        else:
            _launch_submitit(idx, todo, resume, lc, say)
    if not quiet:
        print_summary(idx, con)
    failed = [j for j in idx.jobs if j["status"] != "completed"]
    if failed:
        first = failed[0]
        raise DispoError(
            f"{len(failed)} of {len(idx.jobs)} sweep jobs failed (first: "
            f"{' '.join(first['overrides'])}: {first.get('error') or first['status']}); "
            f"see {idx.path}, rerun with --resume to retry them"
        )
    return idx.dir


def _is_done(job: dict) -> bool:
    if job.get("status") != "completed":
        return False
    rd = job.get("run_dir")
    if not rd:
        return False
    try:
        m = json.loads((Path(rd) / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError):
        return False  # run dir deleted or broken: run the job again
    return m.get("status") == "completed"


def print_summary(idx: SweepIndex, con: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    con = con or Console()
    swept = idx.data.get("swept") or []
    t = Table(title=f"sweep {idx.dir.name}: {idx.data['command']}")
    t.add_column("#", justify="right")
    t.add_column("job (swept values)" if swept else "job", overflow="fold")
    t.add_column("status")
    t.add_column("run dir", overflow="fold")
    t.add_column("error", overflow="fold")
    for j in idx.jobs:
        shown = [o for o in j["overrides"] if _key(o) in swept] or j["overrides"]
        colour = {"completed": "green", "failed": "red"}.get(j["status"], "yellow")
        t.add_row(
            str(j["index"] + 1),
            " ".join(shown),
            f"[{colour}]{j['status']}[/{colour}]",
            Path(j["run_dir"]).name if j.get("run_dir") else "-",
            j.get("error") or "",
        )
    con.print(t)
    c = idx.data.get("counts") or {}
    con.print(
        f"{c.get('completed', 0)} completed, {c.get('failed', 0)} failed, {c.get('pending', 0)} pending; "
        f"index: {idx.path}"
    )


def sweep_runs(sweep_dir: Path) -> list[Path]:
    """Run dirs of a sweep's jobs that exist (for `dispo report SWEEP_DIR`)."""
    idx = SweepIndex.load(sweep_dir)
    out = []
    for j in idx.jobs:
        rd = j.get("run_dir")
        if not rd:
            continue
        p = Path(rd)
        if not p.exists():  # the runs root moved: look beside the sweep dir
            p = idx.dir.parent / Path(rd).name
        if (p / "manifest.json").exists():
            out.append(p)
    return out
