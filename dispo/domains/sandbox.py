"""Run untrusted, model-written Python programs with OS-level containment.

`run_program(source)` runs one program; `run_many(sources)` runs several in parallel and
returns results in input order. Every run gets:

- **A fresh interpreter** (`python -I`: no user site-packages, no PYTHON* variables, the
  script's directory not on sys.path) in its **own session and process group**.
  Limit: the program shares the host kernel; this is containment for careless or mildly
  hostile code, not a security boundary against kernel exploits.
- **Resource limits** (setrlimit, inherited across exec): address space (`mem_mb`, so a
  20 GB allocation raises MemoryError), CPU seconds (SIGXCPU, then SIGKILL one second
  later), largest file written (`max_file_mb`, so a 5 GB write fails with EFBIG), open
  files, processes of the sandbox user (fork bombs hit EAGAIN), no core dumps.
  Limit: total disk use across many files is only bounded by the per-file limit times the
  time it has; memory is bounded per process, not per process tree.
- **A wall-clock timeout**, after which the whole process group is SIGKILLed. When the
  sandbox runs as a dedicated user (below), every process of that user is killed as well
  after each run, which also catches children that escaped the group with setsid().
- **A fresh temporary working directory**, HOME and TMPDIR pointing at it, removed
  afterwards; stdout/stderr go to unlinked files the program cannot reach by path.
- **A scrubbed environment**: only PATH, HOME, TMPDIR, LANG and LC_ALL; API keys and every
  other variable of the caller are absent.
- **No network**: a new, empty network namespace (`unshare(CLONE_NEWNET)` through libc,
  since os.unshare needs Python 3.12): even 127.0.0.1 is unreachable. Needs root (or
  unprivileged user namespaces, tried next). Where both fail the run still happens and
  `isolation["network"] == "not-isolated"` says so.
- **A dropped identity** when the caller is root: after unshare the child switches to an
  unprivileged uid/gid with no supplementary groups and no_new_privs set, so deleting
  files outside its directory, reading root's home (~/.ssh) and signalling the parent fail
  with EPERM/EACCES. Each concurrent run gets its own otherwise unused uid (40000-59999),
  so a program calling kill(-1) or fork-bombing can reach only its own processes.
  Limit: files that are world-readable stay readable (that is what world-readable means),
  and as a non-root caller no identity change happens (`isolation["user"]` says so).
  `uid=65534` pins the classic `nobody` instead.

Why a launcher rather than subprocess's preexec_fn: preexec_fn is documented as unsafe in
threaded programs and `run_many` calls from a thread pool. The child instead starts a tiny
root launcher (`-c _LAUNCHER`) that unshares, sets limits, drops privileges, reports what
it achieved on a pipe and execs the real interpreter.

The dropped user must be able to read the interpreter; a venv python under root's 0700 home
cannot be. `sandbox_interpreter()` therefore probes, once, the running interpreter then the
system pythons (`/usr/bin/python3`, ...) as that user; `DISPO_SANDBOX_PYTHON` overrides.
The sandbox interpreter only needs the standard library.

Scoring programs should pass `success_marker`: a random string printed as the program's
last statement. A program that calls `sys.exit(0)` before the tests ran then fails instead
of passing. Limit: code running in the same process as its tests can always forge results
if it tries hard enough (e.g. read the marker from its own code object).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Sequence

from dispo.core.errors import DispoError

STATUSES = ("passed", "failed", "timeout", "killed", "error")

# Exit code the launcher uses when it could not set the sandbox up (not the program's fault).
_LAUNCH_FAILED = 125

# Runs as root (or the caller) inside the child; argv[1] is a JSON config. Kept dependency-free
# and small: it must work on any python3 the probe selects.
_LAUNCHER = r"""
import ctypes, errno, json, os, resource, signal, sys
cfg = json.loads(sys.argv[1])
iso = {}
try:
    libc = ctypes.CDLL(None, use_errno=True)
    CLONE_NEWNET, CLONE_NEWUSER = 0x40000000, 0x10000000
    if libc.unshare(CLONE_NEWNET) == 0:
        iso["network"] = "netns"
    else:
        err = ctypes.get_errno()
        if os.geteuid() != 0 and libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0:
            iso["network"] = "userns+netns"
        else:
            iso["network"] = "not-isolated"
            iso["network_error"] = os.strerror(err)
    for name, soft, hard in cfg["limits"]:
        resource.setrlimit(getattr(resource, name), (soft, hard))
    uid, gid = cfg["uid"], cfg["gid"]
    if uid is not None:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
        iso["user"] = "uid %d" % uid
    else:
        iso["user"] = "unchanged (uid %d)" % os.getuid()
    PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
    # set after setuid: a credential change clears the parent-death signal
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    iso["no_new_privs"] = libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
    os.write(cfg["status_fd"], json.dumps(iso).encode())
    os.close(cfg["status_fd"])
    os.execv(cfg["python"], [cfg["python"], "-I", cfg["script"]])
except BaseException as e:
    sys.stderr.write("dispo-sandbox: setup failed: %s: %s\n" % (type(e).__name__, e))
    sys.stderr.flush()
    os._exit(125)
"""

# Kills every process of the sandbox user; run as that user, so it can reach nothing else.
# kill(-1) spares the caller; loop until none is left, since a fork bomb races the first pass.
_REAPER = r"""
import os
for _ in range(1000):
    try:
        os.kill(-1, 9)
    except ProcessLookupError:
        break
"""

_ENV_KEEP = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


@dataclass(frozen=True)
class SandboxResult:
    """Outcome of one program. `passed` is True only for status "passed"; `reason` says why
    anything else happened; `isolation` records which guarantees were actually in force."""

    passed: bool
    status: str  # passed | failed | timeout | killed | error
    reason: str
    stdout_tail: str
    stderr_tail: str
    duration_s: float
    isolation: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- identities

_uid_lock = threading.Lock()
_uids_in_use: set[int] = set()
_UID_LO, _UID_HI = 40000, 60000  # inside the 16-bit range every container maps


def _allocate_uid() -> int:
    """An unused uid, distinct from every other run of this process and, by starting at a
    pid-derived offset, very likely from other processes' runs too."""
    span = _UID_HI - _UID_LO
    start = (os.getpid() * 97) % span
    with _uid_lock:
        for k in range(span):
            uid = _UID_LO + (start + k) % span
            if uid in _uids_in_use:
                continue
            try:
                pwd.getpwuid(uid)
                continue  # belongs to a real account
            except KeyError:
                _uids_in_use.add(uid)
                return uid
    raise DispoError("sandbox: no free uid in 40000-59999; run fewer programs at once")


def _release_uid(uid: int) -> None:
    with _uid_lock:
        _uids_in_use.discard(uid)


_interp_lock = threading.Lock()
_interp_cache: dict[bool, str | None] = {}


def _probe(python: str, uid: int | None) -> bool:
    try:
        r = subprocess.run(
            [python, "-I", "-c", "import json, math, re, typing, collections, itertools"],
            env=dict(_ENV_KEEP, HOME="/"),
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
            **({"user": uid, "group": uid, "extra_groups": []} if uid is not None else {}),
        )
        return r.returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def sandbox_interpreter(drop_privileges: bool | None = None) -> str | None:
    """The python3 the sandbox runs programs with: the first candidate an unprivileged uid
    can execute (when dropping privileges), else the running interpreter. None if dropping
    privileges and no candidate is readable by another user."""
    if drop_privileges is None:
        drop_privileges = os.geteuid() == 0
    with _interp_lock:
        if drop_privileges in _interp_cache:
            return _interp_cache[drop_privileges]
        override = os.environ.get("DISPO_SANDBOX_PYTHON")
        if override:
            if not shutil.which(override):
                raise DispoError(
                    f"DISPO_SANDBOX_PYTHON={override!r} is not an executable; set it to a python3 path or unset it"
                )
            _interp_cache[drop_privileges] = shutil.which(override)
            return _interp_cache[drop_privileges]
        base = getattr(sys, "_base_executable", None) or sys.executable
        candidates = [base, sys.executable, "/usr/bin/python3", "/usr/local/bin/python3", shutil.which("python3")]
        seen: list[str] = []
        for c in candidates:
            if c and c not in seen and os.path.exists(c):
                seen.append(c)
        chosen = None
        if not drop_privileges:
            chosen = seen[0] if seen else None
        else:
            probe_uid = _allocate_uid()
            try:
                chosen = next((c for c in seen if _probe(c, probe_uid)), None)
            finally:
                _reap_user(probe_uid, seen[0] if seen else sys.executable)
                _release_uid(probe_uid)
        _interp_cache[drop_privileges] = chosen
        return chosen


# ----------------------------------------------------------------------------- running


def _reap_user(uid: int, python: str) -> None:
    try:
        subprocess.run(
            [python, "-I", "-S", "-c", _REAPER],
            user=uid,
            group=uid,
            extra_groups=[],
            env=dict(_ENV_KEEP, HOME="/"),
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        pass


def _tail(f, chars: int) -> str:
    f.seek(0, os.SEEK_END)
    size = f.tell()
    f.seek(max(0, size - 4 * chars))
    return f.read().decode("utf-8", "replace")[-chars:]


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def _validate(timeout_s: float, mem_mb: int, cpu_s: float | None, max_procs: int) -> None:
    if not timeout_s or timeout_s <= 0:
        raise DispoError(f"sandbox timeout_s must be > 0 seconds (got {timeout_s}); e.g. timeout_s=10")
    if mem_mb < 64:
        raise DispoError(f"sandbox mem_mb must be >= 64 (got {mem_mb}); python alone needs ~30 MB")
    if cpu_s is not None and cpu_s <= 0:
        raise DispoError(f"sandbox cpu_s must be > 0 (got {cpu_s}); or leave it unset")
    if max_procs < 1:
        raise DispoError(f"sandbox max_procs must be >= 1 (got {max_procs})")


def run_program(
    source: str,
    timeout_s: float = 10,
    mem_mb: int = 1024,
    *,
    cpu_s: float | None = None,
    max_procs: int = 32,
    max_file_mb: int = 16,
    max_open_files: int = 256,
    success_marker: str | None = None,
    drop_privileges: bool | None = None,
    uid: int | None = None,
    tail_chars: int = 2000,
) -> SandboxResult:
    """Run `source` as a fresh program under the guarantees in the module docstring.

    Status: "passed" (exit 0, and `success_marker` printed if given), "failed" (non-zero
    exit, e.g. an AssertionError or MemoryError; reason = last stderr line), "timeout" (wall
    clock or CPU limit), "killed" (another signal), "error" (the sandbox itself could not be
    set up: not the program's fault, so callers should not score it).
    cpu_s defaults to timeout_s. drop_privileges defaults to "when root"; uid pins the user
    (a pinned uid is shared: runs using it at the same time can signal each other, and the
    cleanup kills all of that uid's processes).
    """
    _validate(timeout_s, mem_mb, cpu_s, max_procs)
    drop = (os.geteuid() == 0) if drop_privileges is None else drop_privileges
    if drop and os.geteuid() != 0:
        raise DispoError("sandbox drop_privileges=True needs root; run as root or leave it unset")
    python = sandbox_interpreter(drop)
    iso: dict[str, Any] = {}
    if python is None:
        return SandboxResult(
            False,
            "error",
            "no python3 readable by an unprivileged user; set DISPO_SANDBOX_PYTHON to a world-readable python3",
            "",
            "",
            0.0,
            {"user": "none"},
        )
    run_uid = None
    if drop:
        run_uid = uid if uid is not None else _allocate_uid()
    cpu = int(cpu_s if cpu_s is not None else max(1, round(timeout_s)))
    limits = [
        ("RLIMIT_CORE", 0, 0),
        ("RLIMIT_AS", mem_mb << 20, mem_mb << 20),
        ("RLIMIT_CPU", cpu, cpu + 1),
        ("RLIMIT_FSIZE", max_file_mb << 20, max_file_mb << 20),
        ("RLIMIT_NOFILE", max_open_files, max_open_files),
    ]
    if run_uid is not None:
        # NPROC counts the real uid's processes; as root it would be ignored anyway
        limits.append(("RLIMIT_NPROC", max_procs, max_procs))
    workdir = tempfile.mkdtemp(prefix="dispo-sbx-")
    start = time.monotonic()
    try:
        script = os.path.join(workdir, "main.py")
        with open(script, "w", encoding="utf-8") as f:
            f.write(source)
        if run_uid is not None:
            os.chown(workdir, run_uid, run_uid)
            os.chown(script, run_uid, run_uid)
        os.chmod(workdir, 0o700)
        env = dict(_ENV_KEEP, HOME=workdir, TMPDIR=workdir)
        r_fd, w_fd = os.pipe()
        cfg = {"limits": limits, "uid": run_uid, "gid": run_uid, "status_fd": w_fd, "python": python, "script": script}
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.Popen(
                    [python, "-I", "-S", "-c", _LAUNCHER, json.dumps(cfg)],
                    cwd=workdir,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    pass_fds=(w_fd,),
                    start_new_session=True,
                )
            finally:
                os.close(w_fd)
            timed_out = False
            try:
                rc = proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
            # The group may outlive its leader (background children): always kill it.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            rc = proc.wait()
            if run_uid is not None:
                _reap_user(run_uid, python)
            duration = time.monotonic() - start
            with os.fdopen(r_fd, "rb") as status_pipe:
                raw = status_pipe.read()
            try:
                iso = json.loads(raw) if raw else {}
            except ValueError:
                iso = {}
            iso["interpreter"] = python
            iso["cleanup"] = "process-group+uid" if run_uid is not None else "process-group"
            stdout_tail = _tail(out, tail_chars)
            stderr_tail = _tail(err, tail_chars)
            marker_seen = success_marker is None or success_marker in _tail(out, 65536)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if run_uid is not None and uid is None:
            _release_uid(run_uid)

    if timed_out:
        status, reason = "timeout", f"wall-clock timeout after {timeout_s:g} s"
    elif rc == _LAUNCH_FAILED and "dispo-sandbox: setup failed" in stderr_tail:
        status, reason = "error", _last_line(stderr_tail)
    elif not iso.get("network"):
        status, reason = "error", f"sandbox launcher exited {rc} before reporting isolation"
    elif rc < 0:
        sig = -rc
        if sig == signal.SIGXCPU:
            status, reason = "timeout", f"CPU time limit of {cpu} s exceeded (SIGXCPU)"
        else:
            status, reason = "killed", f"killed by {_signal_name(sig)}"
    elif rc != 0:
        status, reason = "failed", _last_line(stderr_tail) or f"exit code {rc}"
    elif not marker_seen:
        status, reason = "failed", "exited 0 before the tests finished (success marker missing)"
    else:
        status, reason = "passed", "exit 0"
    return SandboxResult(status == "passed", status, reason, stdout_tail, stderr_tail, round(duration, 3), iso)


def run_many(
    sources: Sequence[str],
    *,
    workers: int | None = None,
    success_markers: Sequence[str | None] | None = None,
    **kwargs: Any,
) -> list[SandboxResult]:
    """Run each source with `run_program(**kwargs)`, at most `workers` at a time (default:
    the number of cores), returning results in the order of `sources`."""
    sources = list(sources)
    if success_markers is not None and len(success_markers) != len(sources):
        raise DispoError(
            f"run_many got {len(sources)} sources but {len(success_markers)} success_markers; "
            "pass one marker (or None) per source"
        )
    markers = list(success_markers) if success_markers is not None else [None] * len(sources)
    if not sources:
        return []
    n = workers or os.cpu_count() or 1
    if n < 1:
        raise DispoError(f"run_many workers must be >= 1 (got {workers})")
    with ThreadPoolExecutor(max_workers=min(n, len(sources))) as ex:
        return list(ex.map(lambda sm: run_program(sm[0], success_marker=sm[1], **kwargs), zip(sources, markers)))
