"""Hostile programs for the sandbox tests.

Each program exits 0 (and prints ATTACK-SUCCEEDED) only if its attack worked, so a contained
attack is one the sandbox scores as anything but "passed". Placeholders in angle-bracket
tokens (e.g. <CANARY_DIR>) are filled in by the test with the paths, port and secret it
planted; `render` does that.
"""

import re

HOSTILE: dict[str, str] = {
    "rm_rf_canary": """
import shutil
shutil.rmtree(<CANARY_DIR>)
print("ATTACK-SUCCEEDED")
""",
    "fork_bomb": """
import os
# setsid escapes the process group: only the per-uid sweep can reap these
n = 0
while True:
    try:
        if os.fork() == 0:
            os.setsid()
        n += 1
    except OSError:
        pass
""",
    "infinite_loop": """
while True:
    pass
""",
    "allocate_20gb": """
block = bytearray(20 * 1024 ** 3)
print("ATTACK-SUCCEEDED", len(block))
""",
    "socket_connect": """
import socket
s = socket.create_connection(("127.0.0.1", <PORT>), timeout=2)
s.sendall(b"hello from the sandbox")
print("ATTACK-SUCCEEDED")
""",
    "read_fake_home_canary": """
import os
# HOME must be the sandbox dir, and the caller's (fake) home unreadable by path too
data = ""
for path in (os.path.expanduser("~/canary.txt"), <FAKE_HOME_CANARY>):
    try:
        data += open(path).read()
    except OSError as e:
        print("blocked", path, e)
print(data)
assert <SECRET> in data, "canary not readable"
print("ATTACK-SUCCEEDED")
""",
    "read_real_home_canary": """
data = open(<REAL_HOME_CANARY>).read()
print(data)
print("ATTACK-SUCCEEDED")
""",
    "write_5gb_file": """
import os
chunk = b"x" * (64 * 1024 ** 2)
with open("big.bin", "wb") as f:
    for _ in range(80):  # 80 x 64 MiB = 5 GiB
        f.write(chunk)
print("ATTACK-SUCCEEDED", os.path.getsize("big.bin"))
""",
    "kill_parent": """
import os, signal
os.kill(os.getppid(), signal.SIGKILL)
print("ATTACK-SUCCEEDED")
""",
    "killpg_parent_group": """
import os, signal
# the parent of the sandbox is the caller (the launcher exec'd into this program)
os.killpg(os.getpgid(os.getppid()), signal.SIGKILL)
print("ATTACK-SUCCEEDED")
""",
    "print_environ": """
import os
print(dict(os.environ))
assert any(<SECRET> in v for v in os.environ.values()), "secret not in environment"
print("ATTACK-SUCCEEDED")
""",
    "exit_zero_before_tests": """
import sys
sys.exit(0)
""",
}


def render(name: str, **values: object) -> str:
    """The program `name` with each <KEY> replaced by repr(values[key])."""
    src = HOSTILE[name]
    for key, value in values.items():
        src = src.replace(f"<{key}>", repr(value))
    missing = re.findall(r"<([A-Z_]+)>", src)
    if missing:
        raise KeyError(f"hostile program {name!r} needs values for {missing}")
    return src
