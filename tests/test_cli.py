import subprocess
import sys

from tests.helpers.cli import run_dispo


def run_cli(*args, cwd=None):
    return run_dispo(*args, cwd=cwd)


def test_help_does_not_import_heavy_libraries():
    code = "import sys, dispo.cli; print(sorted(m for m in ('torch','transformers','sklearn','hydra','scipy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout.strip()
    assert out == "[]"


def test_bad_override_is_one_line_exit_2(tmp_path):
    r = run_cli("eval", "decoding.max_new_tokens=lots", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "max_new_tokens must be int" in r.stderr
    assert "Traceback" not in r.stderr


def test_missing_and_corrupt_run_dirs_are_one_line(tmp_path):
    r = run_cli("show", "runs/nope", cwd=tmp_path)
    assert r.returncode == 2 and "does not exist" in r.stderr and "Traceback" not in r.stderr
    d = tmp_path / "runs" / "broken"
    d.mkdir(parents=True)
    (d / "manifest.json").write_text("{")
    (d / "config.yaml").write_text("seed: 0\n")
    r = run_cli("falsify", str(d), cwd=tmp_path)
    assert r.returncode == 2 and "corrupt" in r.stderr and "Traceback" not in r.stderr


def test_unreachable_hub_model_is_one_line(tmp_path):
    env_code = (
        "import os; os.environ['HF_HUB_OFFLINE']='1'; os.environ['HF_HOME']=%r; "
        "import sys; sys.argv=['dispo','eval','model=qwen3-0.6b','limit=1','-q']; "
        "from dispo.cli import main; main()"
    ) % str(tmp_path / "hf")
    r = subprocess.run([sys.executable, "-c", env_code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode != 0
    assert "cannot load hub model Qwen/Qwen3-0.6B" in r.stderr and "model.path" in r.stderr
    assert "Traceback" not in r.stderr


def test_unknown_command_is_one_usage_line_exit_2(tmp_path):
    r = run_cli("bogus", cwd=tmp_path)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert r.stderr.strip().count("\n") == 0, r.stderr
    assert "No such command 'bogus'" in r.stderr and "-h" in r.stderr
    assert "internal" not in r.stderr and "Traceback" not in r.stderr


def test_unknown_option_and_missing_argument_are_one_line_exit_2(tmp_path):
    for args, says in ((("runs", "--bogus"), "No such option: --bogus"), (("falsify",), "Missing argument")):
        r = run_cli(*args, cwd=tmp_path)
        assert r.returncode == 2 and r.stderr.strip().count("\n") == 0, r.stderr
        assert says in r.stderr and f"{args[0]} -h" in r.stderr, r.stderr
        assert "internal" not in r.stderr and "Traceback" not in r.stderr


def test_no_command_shows_the_help(tmp_path):
    r = run_cli(cwd=tmp_path)
    assert "Usage:" in r.stdout + r.stderr and "falsify" in r.stdout + r.stderr
    assert "error" not in r.stderr and "Traceback" not in r.stderr
