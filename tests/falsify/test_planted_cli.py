"""Planted artefacts through the real CLI: `dispo import` two planted arms, `dispo falsify` the
run, and check the verdict and the reason a careful reviewer would give."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import planted as P


def dispo(cwd: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPO_")}
    env.update(DISPO_RUNS=str(cwd / "runs"), DISPO_CACHE=str(cwd / "cache"), TOKENIZERS_PARALLELISM="false")
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2]) + os.pathsep + env.get("PYTHONPATH", "")
    p = subprocess.run(
        [sys.executable, "-m", "dispo.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert p.returncode == 0, p.stderr[-3000:]
    return p


def imported(tmp_path: Path, files: tuple[Path, Path]) -> Path:
    base, treat = files
    dispo(tmp_path, "import", str(base), "--arm", "base")
    (run,) = [d for d in (tmp_path / "runs").iterdir() if d.is_dir()]
    dispo(tmp_path, "import", str(treat), "--arm", "treat", "--run", str(run))
    return run


def falsify(tmp_path: Path, run: Path, *overrides: str) -> dict:
    dispo(tmp_path, "falsify", str(run), "-q", *overrides)
    return json.loads((run / "falsify" / "falsify.json").read_text())


def claim(out: dict, metric: str) -> dict:
    return next(c for c in out["claims"] if c["metric"] == metric)


def test_truncation_is_decided_from_stored_data(tmp_path):
    run = imported(tmp_path, P.truncation_artefact(tmp_path))
    c = claim(falsify(tmp_path, run), "accuracy")
    assert c["claimed"]["delta"] == pytest.approx(20 / 40 - 5 / 40)
    assert c["claimed"]["p_holm"] < 0.05  # the paired test alone calls it significant
    assert c["verdict"] == "FALSIFIED"
    tr = c["checks"]["truncation"]
    assert tr["status"] == "fail"
    # kept items: 0..9 and 35..39; there the baseline answers 5 and the treatment none
    assert tr["reason"].startswith(
        "truncation: on the 15 items where neither arm hit the token limit (25 of 40 dropped)"
    )
    assert "sign flipped" in tr["reason"] and tr["reason"] in c["reasons"]
    assert tr["stored"]["n_kept"] == 15
    assert tr["evidence"]["delta"] == pytest.approx(0 / 15 - 5 / 15)
    assert tr["evidence"]["tokens_regenerated"] == 0


def test_checks_subset_never_survives(tmp_path):
    run = imported(tmp_path, P.significant_content_gain(tmp_path))
    c = claim(falsify(tmp_path, run, "falsify.checks=[statistics]"), "accuracy")
    assert c["checks"]["statistics"]["status"] == "pass"  # significant after Holm
    assert c["verdict"] == "INCONCLUSIVE"
    assert c["reasons"] == [
        "not checked: apples_to_apples (left out of falsify.checks), truncation (left out of "
        "falsify.checks), seed_variance (left out of falsify.checks), judge_swap (left out of "
        "falsify.checks)"
    ]
    assert c["not_checked"] == ["apples_to_apples", "truncation", "seed_variance", "judge_swap"]


def test_content_labels_without_checklists_are_not_checked_by_the_judge_swap(tmp_path):
    run = imported(tmp_path, P.significant_content_gain(tmp_path))
    c = claim(falsify(tmp_path, run), "accuracy")
    assert c["verdict"] == "INCONCLUSIVE"
    js = c["checks"]["judge_swap"]
    assert js["status"] == "skipped" and "no gold checklist for 40 of 40 items" in js["reason"]
    assert c["not_checked"] == ["seed_variance", "judge_swap"]
    assert c["reasons"][-1].startswith("not checked: seed_variance (sampled regeneration needs the model (imported run")


def test_judge_dependent_labels_are_falsified_by_the_second_judge(tmp_path):
    run = imported(tmp_path, P.judge_dependent(tmp_path))
    out = falsify(tmp_path, run)
    c = claim(out, "assertion_asymmetry")
    assert c["claimed"]["delta"] == pytest.approx(-1.0)  # imported labels: perfect calibration gained
    assert c["verdict"] == "FALSIFIED"
    js = c["checks"]["judge_swap"]
    assert js["status"] == "fail" and js["second_judge"] == "lexical" and js["first_judge"] == "import"
    assert js["reason"].startswith("judge-dependent: under lexical: sign flipped: claimed -1.0000, re-measured +1.0000")
    ev = js["evidence"]
    assert ev["judge"]["name"] == "lexical" and ev["items_rescored"] == 80
    # the judges agree on the 40 correct items (assert) and disagree on all 40 wrong ones; each
    # labels 60 assert / 20 hedge, so chance agreement is 0.75^2 + 0.25^2 = 0.625 and
    # kappa = (0.5 - 0.625) / (1 - 0.625) = -1/3
    assert js["raw_agreement"] == pytest.approx(0.5)
    assert js["kappa"] == pytest.approx(-1 / 3)


def test_style_over_substance_is_falsified(tmp_path):
    run = imported(tmp_path, P.style_over_substance(tmp_path))
    c = claim(falsify(tmp_path, run), "assertion_asymmetry")
    assert c["claimed"]["delta"] < 0  # better asymmetry
    assert c["verdict"] == "FALSIFIED"
    sv = c["checks"]["style_vs_substance"]
    assert sv["status"] == "fail"
    assert sv["reason"].startswith("style-over-substance: disposition up while accuracy fell (-0.3750")
    assert c["checks"]["judge_swap"]["status"] == "pass"  # the words agree with the labels: not a judge artefact
    assert c["reasons"] == [sv["reason"]]


def test_undefined_statistic_is_not_significant_and_not_falsifiable(tmp_path):
    run = imported(tmp_path, P.undefined_statistic(tmp_path))
    res = json.loads((run / "results.json").read_text())
    asym = next(c for c in res["claims"] if c["metric"] == "assertion_asymmetry")
    assert asym["delta"] is None and asym["p"] is None and asym["p_holm"] is None
    assert asym["significant"] is False
    assert asym["undefined"] == "assertion_asymmetry is undefined: no correct item in baseline"
    acc = next(c for c in res["claims"] if c["metric"] == "accuracy")
    assert acc["p_holm"] == pytest.approx(acc["p"])  # the undefined claim is not in the Holm family
    assert not any(c["p"] == 0 for c in res["claims"] if c["p"] is not None)
    c = claim(falsify(tmp_path, run), "assertion_asymmetry")
    assert c["verdict"] == "INCONCLUSIVE"
    assert c["reasons"] == ["undefined statistic: assertion_asymmetry is undefined: no correct item in baseline"]


def test_genuine_gain_from_an_import_is_inconclusive_only_for_want_of_a_model(tmp_path):
    run = imported(tmp_path, P.genuine_gain(tmp_path))
    c = claim(falsify(tmp_path, run), "assertion_asymmetry")
    assert c["verdict"] == "INCONCLUSIVE"
    assert {n: r["status"] for n, r in c["checks"].items()} == {
        "statistics": "pass",
        "apples_to_apples": "pass",
        "truncation": "pass",
        "seed_variance": "skipped",
        "judge_swap": "pass",
        "style_vs_substance": "pass",
        "arc_specific": "n/a",
    }
    assert c["not_checked"] == ["seed_variance"]
    assert c["checks"]["judge_swap"]["kappa"] == pytest.approx(1.0)


def test_genuine_gain_survives_when_a_model_regenerates_it(tmp_path, monkeypatch):
    """The same planted import, with `dispo falsify` run in-process through the CLI app and the
    model replaced by one that reproduces the arms with a little sampling noise per seed."""
    import numpy as np
    from typer.testing import CliRunner

    import dispo.falsify.run as R
    from dispo.cli import app
    from dispo.core.runs import Run

    run = imported(tmp_path, P.genuine_gain(tmp_path))
    stored = dict(Run.open(run).iter_arms())

    def regenerate(arm, decoding, seed, ids=None):
        rng = np.random.default_rng(seed)
        out = []
        for s in stored[arm]:
            s = json.loads(json.dumps(s))
            v = s["scores"]["verbal:import"]
            if v["value"] == "hedge" and rng.random() < 0.1:  # now and then a wrong answer is asserted
                v["value"] = "assert"
            out.append(s)
        return out

    monkeypatch.setattr(R, "model_regenerator", lambda *a, **k: (regenerate, None))
    r = CliRunner().invoke(app, ["falsify", str(run), "-q"])
    assert r.exit_code == 0, r.output
    out = json.loads((run / "falsify" / "falsify.json").read_text())
    c = claim(out, "assertion_asymmetry")
    assert c["verdict"] == "SURVIVES", c["reasons"]
    assert c["not_checked"] == []
    sv = c["checks"]["seed_variance"]
    assert sv["status"] == "pass" and sv["evidence"]["n"] == 40 and sv["evidence"]["n_repeats"] == 3
