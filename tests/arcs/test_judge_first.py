"""Arcs build their judge before the run dir exists (as `dispo eval` does): `judge=paper` without
an endpoint is one ConfigError line (exit 2 from the CLI) and leaves no run dir behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dispo.core.errors import ConfigError
from dispo.judges.paper import NO_ENDPOINT

ROOT = Path(__file__).resolve().parents[2]


def _empty(d: Path) -> bool:
    return not d.exists() or not any(d.iterdir())


def test_dispo_train_arc2_paper_judge_without_endpoint_is_one_line_and_no_run_dir(reference_dir, tmp_path):
    out = tmp_path / "runs"
    args = [
        "train",
        "arc2",
        "model=tiny-llama",
        "arc.preset=smoke",
        "protocol=paper",  # chooses judge=paper for the chef domain arcs 2-3 run on
        f"paper.repo={reference_dir}",
        f"output_dir={out}",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-m", "dispo.cli", *args], capture_output=True, text=True, env=env, timeout=180)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "judge.base_url=" in lines[0] and "Traceback" not in p.stderr, p.stderr
    assert _empty(out), list(out.rglob("*"))


@pytest.mark.parametrize("arc", ["arc2", "arc3"])
def test_run_train_builds_the_judge_before_the_run_dir(arc, reference_dir, tmp_path):
    from dispo.arcs.train_run import run_train
    from dispo.core.config import compose_config

    out = tmp_path / "runs"
    cfg = compose_config(
        ["model=tiny-llama", "arc.preset=smoke", "judge=paper", f"paper.repo={reference_dir}", f"output_dir={out}"],
        base={"arc": arc},
    )
    assert cfg["judge"]["name"] == "paper" and not cfg["judge"]["base_url"]
    with pytest.raises(ConfigError) as e:
        run_train(arc, [], cfg=cfg)
    assert str(e.value) == NO_ENDPOINT
    assert _empty(out), list(out.rglob("*"))


def test_run_train_hands_its_judge_to_the_recipe(monkeypatch, tmp_path):
    """The judge run_train built is the one the recipe gets (built once, before the run dir)."""
    import dispo.evaluation.eval_run as eval_run
    from dispo.arcs import ARCS
    from dispo.arcs.train_run import run_train
    from dispo.core.config import compose_config
    from dispo.judges import get_judge

    seen, built = {}, []

    class Probe(ARCS.get("arc2")):
        def setup(self):
            seen["judge"] = self.given_judge

        def run(self):
            return {}

    def make_judge(cfg):
        built.append(cfg["judge"]["name"])
        return get_judge("lexical")

    monkeypatch.setattr(eval_run, "make_judge", make_judge)
    monkeypatch.setitem(ARCS._items, "arc2", Probe)
    cfg = compose_config(["model=tiny-llama", "judge=lexical", f"output_dir={tmp_path}"], base={"arc": "arc2"})
    run_train("arc2", [], cfg=cfg)
    assert built == ["lexical"] and seen["judge"].name == "lexical"
