"""The sandbox contains hostile programs: each attack fails, is scored as a failure with a
reason, the canaries survive and this process lives on."""

from __future__ import annotations

import os
import pwd
import secrets
import socket
import time

import pytest

from dispo.core.errors import DispoError
from dispo.domains.sandbox import run_many, run_program


def _load_corpus():
    # tests/ is not a package: load the data module by path
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "data" / "hostile_completions.py"
    spec = importlib.util.spec_from_file_location("hostile_completions", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.HOSTILE, mod.render


HOSTILE, render = _load_corpus()

IS_ROOT = os.geteuid() == 0
# attacks only an identity change can stop (files and processes of the caller's own user)
NEEDS_PRIVILEGE_DROP = {
    "rm_rf_canary",
    "read_real_home_canary",
    "read_fake_home_canary",
    "kill_parent",
    "killpg_parent_group",
}
MARKER = "dispo-test-marker-" + secrets.token_hex(6)


def _live_uid_processes(uid: int) -> list[int]:
    """Processes of `uid` that are not zombies (a killed orphan stays a zombie until pid 1
    reaps it; it runs nothing)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid != uid:
                    continue
                with open(f"/proc/{entry}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            if state not in ("Z", "X"):
                pids.append(int(entry))
    return pids


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    secret = "SECRET-" + secrets.token_hex(8)
    canary_dir = tmp / "canary"
    canary_dir.mkdir()
    (canary_dir / "keep.txt").write_text("keep me")
    fake_home = tmp / "fakehome"
    fake_home.mkdir()
    (fake_home / "canary.txt").write_text(secret)
    real_home = pwd.getpwuid(os.getuid()).pw_dir
    real_canary = os.path.join(real_home, f".dispo-canary-{secrets.token_hex(4)}")
    fd = os.open(real_canary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # like ~/.ssh/id_*
    os.write(fd, secret.encode())
    os.close(fd)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    values = dict(
        CANARY_DIR=str(canary_dir),
        PORT=listener.getsockname()[1],
        FAKE_HOME_CANARY=str(fake_home / "canary.txt"),
        REAL_HOME_CANARY=real_canary,
        SECRET=secret,
    )
    names = sorted(HOSTILE)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("HOME", str(fake_home))
            mp.setenv("DISPO_TEST_API_KEY", secret)
            start = time.monotonic()
            results = run_many(
                [render(n, **values) for n in names], timeout_s=3, mem_mb=512, success_markers=[MARKER] * len(names)
            )
            elapsed = time.monotonic() - start
        try:
            conn, _ = listener.accept()
            conn.close()
            connected = True
        except BlockingIOError:
            connected = False
        yield (
            dict(zip(names, results)),
            dict(
                secret=secret,
                canary_dir=canary_dir,
                real_canary=real_canary,
                fake_home=fake_home,
                connected=connected,
                elapsed=elapsed,
            ),
        )
    finally:
        listener.close()
        os.unlink(real_canary)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_program_is_contained(hostile_run, name):
    results, ctx = hostile_run
    r = results[name]
    if name in NEEDS_PRIVILEGE_DROP and not r.isolation.get("user", "").startswith("uid"):
        pytest.skip(f"needs root to drop privileges; isolation={r.isolation}")
    if name == "socket_connect" and r.isolation.get("network") == "not-isolated":
        pytest.skip(f"no network namespace here: {r.isolation.get('network_error')}")
    assert r.status != "passed" and not r.passed, (name, r)
    assert r.status in ("failed", "timeout", "killed"), (name, r)  # never a sandbox error
    assert r.reason
    assert "ATTACK-SUCCEEDED" not in r.stdout_tail
    # stderr may quote the program's own source line, which holds the secret as a literal
    assert ctx["secret"] not in r.stdout_tail


EXPECTED_REASON = {
    "rm_rf_canary": "PermissionError",
    "allocate_20gb": "MemoryError",
    "socket_connect": "OSError",
    "read_real_home_canary": "PermissionError",
    "write_5gb_file": "File too large",
    "kill_parent": "PermissionError",
    "killpg_parent_group": "PermissionError",
    "print_environ": "secret not in environment",
    "read_fake_home_canary": "canary not readable",
    "exit_zero_before_tests": "success marker missing",
}


@pytest.mark.parametrize("name", sorted(EXPECTED_REASON))
def test_hostile_failure_reason_is_recorded(hostile_run, name):
    results, _ = hostile_run
    r = results[name]
    if name in NEEDS_PRIVILEGE_DROP and not r.isolation.get("user", "").startswith("uid"):
        pytest.skip("needs root to drop privileges")
    if name == "socket_connect" and r.isolation.get("network") == "not-isolated":
        pytest.skip("no network namespace here")
    assert r.status == "failed"
    assert EXPECTED_REASON[name] in r.reason


def test_runaway_programs_time_out_and_leave_no_process(hostile_run):
    results, _ = hostile_run
    for name in ("infinite_loop", "fork_bomb"):
        r = results[name]
        assert r.status == "timeout", r
        assert r.duration_s < 10
        if r.isolation["user"].startswith("uid"):
            assert _live_uid_processes(int(r.isolation["user"].split()[1])) == []


def test_canaries_survive_and_nothing_connected(hostile_run):
    results, ctx = hostile_run
    assert (ctx["canary_dir"] / "keep.txt").read_text() == "keep me"
    assert (ctx["fake_home"] / "canary.txt").read_text() == ctx["secret"]
    assert open(ctx["real_canary"]).read() == ctx["secret"]
    if results["socket_connect"].isolation.get("network") != "not-isolated":
        assert ctx["connected"] is False
    assert ctx["elapsed"] < 30


def test_passing_program_and_output_capture():
    r = run_program(f"print('hello'); print({MARKER!r})", timeout_s=5, success_marker=MARKER)
    assert (r.passed, r.status) == (True, "passed")
    assert "hello" in r.stdout_tail
    assert r.isolation["network"] in ("netns", "userns+netns", "not-isolated")


def test_assertion_failure_is_failed_with_traceback():
    r = run_program("def f():\n    return 1\nassert f() == 2, 'f is wrong'\n", timeout_s=5)
    assert r.status == "failed" and not r.passed
    assert r.reason == "AssertionError: f is wrong"
    assert "line 3" in r.stderr_tail


def test_workdir_is_fresh_private_and_removed():
    src = "import os\nprint(os.getcwd())\nprint(sorted(os.listdir('.')))\nprint(os.environ['HOME'])\n"
    r = run_program(src, timeout_s=5)
    cwd, listing, home = r.stdout_tail.splitlines()
    assert listing == "['main.py']"
    assert home == cwd
    assert not os.path.exists(cwd)


def test_run_many_keeps_input_order():
    # later inputs finish first: order must follow the inputs, not completion
    srcs = [f"import time; time.sleep({0.3 - 0.1 * i}); print('job', {i})" for i in range(3)]
    results = run_many(srcs, timeout_s=5, workers=3)
    assert [r.stdout_tail.strip() for r in results] == ["job 0", "job 1", "job 2"]


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"timeout_s": 0}, "timeout_s"),
        ({"mem_mb": 8}, "mem_mb"),
        ({"cpu_s": -1}, "cpu_s"),
    ],
)
def test_bad_limits_raise_dispo_error(kwargs, word):
    with pytest.raises(DispoError, match=word):
        run_program("print(1)", **kwargs)


def test_run_many_rejects_marker_count_mismatch():
    with pytest.raises(DispoError, match="success_markers"):
        run_many(["print(1)", "print(2)"], success_markers=["a"])
