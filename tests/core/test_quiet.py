"""Quiet by default: library warnings and datasets' progress bars hidden; -v / DISPO_VERBOSE shows them."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.helpers.cli import run_dispo

# configure() first, then the libraries, as `dispo` and `python -m dispo.demo` do
CODE = """
import sys, warnings
from dispo.core.quiet import configure
configure(verbose="-v" in sys.argv)
warnings.warn("old api from transformers", FutureWarning)
import datasets
datasets.Dataset.from_list([{"x": i} for i in range(3)]).map(lambda r: r)
from tqdm.auto import tqdm  # a plain bar, as transformers' GGUF reader draws in any run that converts a model
for _ in tqdm(range(3), desc="plain-tqdm-bar"):
    pass
print("done")
"""


def _run(*args, **env):
    e = {k: v for k, v in os.environ.items() if not k.startswith(("DISPO_", "HF_", "TRANSFORMERS_", "TQDM_"))}
    e.update(env)
    return subprocess.run([sys.executable, "-c", CODE, *args], capture_output=True, text=True, env=e, timeout=120)


def test_warnings_and_dataset_bars_hidden_by_default():
    r = _run()
    assert r.returncode == 0 and "done" in r.stdout, r.stderr
    assert "FutureWarning" not in r.stderr and "Map" not in r.stderr, r.stderr
    assert "plain-tqdm-bar" not in r.stderr, r.stderr


def test_verbose_flag_or_env_shows_them():
    for r in (_run("-v"), _run(DISPO_VERBOSE="1")):
        assert r.returncode == 0, r.stderr
        assert "FutureWarning" in r.stderr and "Map" in r.stderr, r.stderr
        assert "plain-tqdm-bar" in r.stderr, r.stderr


def test_a_users_own_setting_is_kept():
    r = _run(HF_DATASETS_DISABLE_PROGRESS_BARS="0")
    assert r.returncode == 0 and "Map" in r.stderr, r.stderr


def test_cli_accepts_verbose_flag_and_lists_it(tmp_path):
    r = run_dispo("-v", "runs", "--root", str(tmp_path), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = run_dispo("--help", cwd=tmp_path, env={**os.environ, "COLUMNS": "120"})
    assert "--verbose" in r.stdout and "-v" in r.stdout


FETCH = """
import sys
from dispo.models import embedded

def ensure(name):  # what the GGUF conversion draws, without downloading anything
    from tqdm.auto import tqdm
    for _ in tqdm(range(3), desc="Converting and de-quantizing GGUF tensors"):
        pass
    return "/nowhere"

embedded.ensure = ensure
from dispo.cli import main
sys.argv = ["dispo", *sys.argv[1:], "fetch", "smollm2-135m"]
main()
"""


def test_fetch_hides_the_gguf_conversion_bar_unless_verbose():
    e = {k: v for k, v in os.environ.items() if not k.startswith(("DISPO_", "TQDM_"))}
    quiet = subprocess.run([sys.executable, "-c", FETCH], capture_output=True, text=True, env=e, timeout=120)
    loud = subprocess.run([sys.executable, "-c", FETCH, "-v"], capture_output=True, text=True, env=e, timeout=120)
    assert quiet.returncode == 0 and "ready at /nowhere" in quiet.stdout, quiet.stderr
    assert "de-quantizing" not in quiet.stderr, quiet.stderr
    assert loud.returncode == 0 and "de-quantizing" in loud.stderr, loud.stderr
