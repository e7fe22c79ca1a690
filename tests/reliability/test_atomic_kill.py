"""A process killed while it rewrites run files never leaves a half-written one.

The end-to-end kill test (test_crash_resume.py) writes small files, so a non-atomic write
would rarely be caught in the act. Here a writer process rewrites large run files in a tight
loop through the Run API (manifest via write_json, samples via write_samples, an .npz via
write_npz) while this process parses them continuously, then SIGKILLs it at seeded random
moments: with plain open(..., "w") writes both the poller and the post-kill check see
truncated files at once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

from tests.helpers.relhelp import check_tree

WRITER = r"""
import sys
from pathlib import Path
from dispo.core.runs import Run
import numpy as np
run = Run(Path(sys.argv[1]))
rows = [{"id": f"item/{i}", "output": "x" * 2000, "scores": {"correct:tests": {"value": i % 2 == 0}}} for i in range(400)]
X = np.arange(200 * 256, dtype="float32").reshape(200, 256)
print("ready", flush=True)
n = 0
while True:
    n += 1
    run.write_json("manifest.json", {"status": "running", "n": n, "stages": {f"s{i}": {"status": "done"} for i in range(2000)}})
    run.write_samples("base", rows)
    run.write_npz("artifacts/features.npz", X=X, y=np.arange(200) % 2)
"""


def test_sigkill_during_rewrites_leaves_only_whole_files(tmp_path):
    """Protects: dispo.core.atomic (temp file in the same dir + fsync + os.replace), used by
    Run.write_json / write_samples / write_text / write_npz. Never a partial manifest.json,
    samples/*.jsonl or .npz, neither while the writer runs nor after it is killed; the only
    debris a kill may leave is `.<name>.*.tmp` files."""
    rng = random.Random(int(os.environ.get("DISPO_KILL_SEED", "9")))
    run_dir = tmp_path / "run"
    (run_dir / "samples").mkdir(parents=True)
    (run_dir / "artifacts").mkdir()
    for attempt in range(3):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(run_dir)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        bad: list[str] = []
        t_kill = time.monotonic() + rng.uniform(0.3, 1.0)
        polls = 0
        while time.monotonic() < t_kill:
            bad += check_tree(run_dir)
            polls += 1
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        bad += check_tree(run_dir)
        assert bad == [], (attempt, bad[:3])
        assert polls > 0
        assert (run_dir / "manifest.json").exists() and (run_dir / "samples" / "base.jsonl").exists()
    leftovers = [
        p.name
        for p in run_dir.rglob("*")
        if p.is_file() and p.name not in ("manifest.json", "base.jsonl", "features.npz")
    ]
    assert all(n.startswith(".") and n.endswith(".tmp") for n in leftovers), leftovers
