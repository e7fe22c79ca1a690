"""CI smoke: every arc as a user runs it, `dispo train <arc> model=smollm2-135m arc.preset=smoke`,
on the real embedded model in a subprocess with a fresh response cache; then `dispo falsify` on the
Arc 1 run (what `make demo` does). Each run dir must be complete and every stage recorded done."""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers.cli import run_dispo
from tests.helpers.relhelp import make_cache

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from dispo.models.embedded import is_ready

    if not is_ready("smollm2-135m"):
        pytest.skip("embedded model not fetched; run `make setup` (dispo fetch smollm2-135m)")
    root = tmp_path_factory.mktemp("smoke")
    cache = make_cache(root / "cache")
    e = {k: v for k, v in os.environ.items() if not k.startswith("DISPO_")}
    e.update(DISPO_CACHE=str(cache), DISPO_RUNS=str(root / "runs"), TOKENIZERS_PARALLELISM="false")
    return root, e


def _dispo(env, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    root, e = env
    return run_dispo(*args, env=e, cwd=root, timeout=timeout)


def _the_run(env, prefix: str) -> Path:
    root, _ = env
    dirs = [d for d in (root / "runs").iterdir() if d.is_dir() and prefix in d.name]
    assert len(dirs) == 1, dirs
    return dirs[0]


def _complete(run: Path) -> tuple[dict, dict]:
    m = json.loads((run / "manifest.json").read_text())
    assert m["status"] == "completed", m["status"]
    # a stage may be skipped only with a recorded reason (e.g. arc3's sidecar on a one-class split)
    assert all(
        s.get("status") == "done" or (s.get("status") == "skipped" and s.get("reason")) for s in m["stages"].values()
    ), m["stages"]
    res = json.loads((run / "results.json").read_text())
    for arm in res["metrics"]:
        lines = (run / "samples" / f"{arm}.jsonl").read_text().splitlines()
        assert lines and all(json.loads(line)["output"] is not None for line in lines)
    assert (run / "config.yaml").exists() and (run / "report.md").read_text().strip()
    return m, res


# CI runs arc 1 on code; the chef domain is the same pipeline on another domain (`make test-full`)
@pytest.mark.parametrize("domain", ["code", pytest.param("chef", marks=pytest.mark.full)])
def test_arc1_smoke(env, domain):
    p = _dispo(
        env, "train", "arc1", "model=smollm2-135m", f"domain={domain}", "arc.preset=smoke", f"output_dir=runs/{domain}"
    )
    assert p.returncode == 0, p.stderr[-3000:]
    root, _ = env
    runs = [d for d in (root / "runs" / domain).iterdir() if d.is_dir()]
    assert len(runs) == 1
    run = runs[0]
    m, res = _complete(run)
    assert set(m["stages"]) >= {"split", "teachers", "data", "sft", "dpo", "arm:base", "arm:student", "results"}
    hist = [h for h in json.loads((run / "artifacts" / "sft_log.json").read_text())["history"] if "loss" in h]
    assert hist and all(math.isfinite(h["loss"]) for h in hist), hist
    # the smoke preset runs two epochs over the same examples: the second must fit them better
    first = [h["loss"] for h in hist if h["epoch"] <= 1 + 1e-6]
    second = [h["loss"] for h in hist if h["epoch"] > 1 + 1e-6]
    assert first and second and sum(second) / len(second) < sum(first) / len(first), hist
    assert (run / "artifacts" / "adapter" / "adapter_config.json").exists()
    assert set(res["metrics"]) == {"base", "student"}
    content = {"code": "pass@1", "chef": "coverage"}[domain]
    assert any(c["metric"] == content for c in res["claims"])
    assert all(c["same_scorers"] for c in res["claims"] if c.get("same_scorers") is not None)
    base = [json.loads(x) for x in (run / "samples" / "base.jsonl").read_text().splitlines()]
    student = [json.loads(x) for x in (run / "samples" / "student.jsonl").read_text().splitlines()]
    assert [s["id"] for s in base] == [s["id"] for s in student]
    assert base[0]["decoding"] == student[0]["decoding"]

    if domain == "code":  # the demo's second half
        # one seed and one larger budget (x2) keep the regeneration CI-sized
        f = _dispo(env, "falsify", str(run), "falsify.seeds=[1]", "falsify.budget_factor_max=2")
        assert f.returncode == 0, f.stderr[-3000:]
        out = json.loads((run / "falsify" / "falsify.json").read_text())
        assert len(out["claims"]) == len(res["claims"])
        assert out["has_model"] is True
        for c in out["claims"]:
            d, ph = c["claimed"]["delta"], c["claimed"]["p_holm"]
            if d is None or d == 0:  # no effect claimed: nothing to check, never a verdict either way
                assert c["verdict"] == "INCONCLUSIVE" and list(c["checks"]) == ["claimed_effect"], c
                continue
            assert c["arc"] == "arc1"
            # a dispo-made run has its model: the decoding checks ran, they are never "not checked"
            assert c["checks"]["truncation"]["status"] in ("pass", "fail", "flag"), c["checks"]["truncation"]
            sv = c["checks"]["seed_variance"]
            assert sv["status"] in ("pass", "fail") and [s["seed"] for s in sv["per_seed"]] == [1], sv
            if any(r["status"] == "fail" for r in c["checks"].values()):
                assert c["verdict"] == "FALSIFIED", c
            elif ph is None or ph >= 0.05:  # inside the noise can never survive
                assert c["verdict"] == "INCONCLUSIVE" and any(
                    "inside the noise" in r or "no paired test" in r for r in c["reasons"]
                ), c
            else:
                assert c["verdict"] == (
                    "SURVIVES"
                    if not c["not_checked"] and all(r["status"] in ("pass", "n/a") for r in c["checks"].values())
                    else "INCONCLUSIVE"
                ), c
        assert (run / "falsify" / "report.md").exists()


def test_arc2_smoke(env):
    p = _dispo(env, "train", "arc2", "model=smollm2-135m", "arc.preset=smoke")
    assert p.returncode == 0, p.stderr[-3000:]
    run = _the_run(env, "train-arc2")
    m, res = _complete(run)
    assert {"attribution", "arm:base"} <= set(m["stages"])
    ranking = json.loads((run / "artifacts" / "head_ranking.json").read_text())
    rows = ranking["magnitude"]["rows"]
    assert rows and all(0 <= r["layer"] < 30 and 0 <= r["head"] < 9 for r in rows)  # SmolLM2-135M: 30 x 9 heads
    lam_arms = [a for a in res["metrics"] if a.startswith("lam")]
    assert len(lam_arms) >= 2
    assert any(c["metric"] for c in res["claims"])


def test_arc3_smoke(env):
    p = _dispo(env, "train", "arc3", "model=smollm2-135m", "arc.preset=smoke")
    assert p.returncode == 0, p.stderr[-3000:]
    run = _the_run(env, "train-arc3")
    m, res = _complete(run)
    assert {"features:eval", "features:fresh", "step1_cv", "step2_fresh", "sidecar"} <= set(m["stages"])
    import numpy as np

    with np.load(run / "artifacts" / "features_eval.npz") as z:
        x = z["X"]
    assert x.ndim == 2 and x.shape[1] == 576 and np.isfinite(x).all()  # SmolLM2-135M hidden size
    assert "arc3" in res


def test_report_over_the_smoke_runs(env):
    """`dispo report` over the real runs above: every metric cell equals the run's results.json."""
    import pandas as pd

    root, _ = env
    runs = sorted(p.parent for p in (root / "runs").rglob("results.json"))
    if len(runs) < 2:
        pytest.skip("the smoke runs above did not all run")
    p = _dispo(env, "report", *map(str, runs), "--out", str(root / "report"))
    assert p.returncode == 0, p.stderr[-3000:]
    df = pd.read_csv(root / "report" / "metrics.csv")
    checked = 0
    for run in runs:
        metrics = json.loads((run / "results.json").read_text())["metrics"]
        rows = df[df["run"] == run.name]
        for arm, ms in metrics.items():
            for name, m in ms.items():
                if isinstance(m, dict) and isinstance(m.get("value"), (int, float)):
                    cell = rows[(rows["arm"] == arm) & (rows["metric"] == name)]["value"]
                    assert len(cell) == 1 and cell.iloc[0] == pytest.approx(m["value"], abs=1e-9), (run.name, arm, name)
                    checked += 1
    assert checked >= 20
    assert list((root / "report" / "figures").glob("*.png"))
