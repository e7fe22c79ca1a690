"""dispo.reporting.crossrun: runs with known results.json -> tables whose numbers are those results."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from dispo.core import atomic
from dispo.core.errors import DispoError
from dispo.core.runs import Run
from dispo.reporting.crossrun import build_report, resolve_runs


def _m(value, lo, hi, n=20):
    return {"value": value, "ci": [lo, hi], "n": n}


def _run(
    root: Path,
    command: str,
    model: str,
    domain: str,
    metrics: dict,
    claims: list,
    extra: dict | None = None,
    arc: str = "none",
) -> Run:
    cfg = {"model": {"name": model}, "domain": {"name": domain}, "arc": {"name": arc}, "seed": 0}
    run = Run.create(command, cfg, model, root=root)
    run.write_results(metrics, claims, extra)
    run.finish("completed")
    return run


@pytest.fixture()
def runs(tmp_path: Path) -> dict[str, Run]:
    root = tmp_path / "runs"
    arc1 = _run(
        root,
        "train-arc1",
        "qwen3-0.6b",
        "chef",
        {
            "base": {"coverage": _m(0.41, 0.35, 0.47), "assertion_asymmetry": _m(-0.05, -0.2, 0.1)},
            "student": {"coverage": _m(0.38, 0.31, 0.44), "assertion_asymmetry": _m(-0.22, -0.35, -0.08)},
        },
        [
            {
                "arm": "student",
                "baseline": "base",
                "metric": "coverage",
                "base": 0.41,
                "treat": 0.38,
                "delta": -0.03,
                "ci": [-0.09, 0.02],
                "p": 0.31,
                "p_holm": 0.31,
                "significant": False,
            },
            {
                "arm": "student",
                "baseline": "base",
                "metric": "assertion_asymmetry",
                "base": -0.05,
                "treat": -0.22,
                "delta": -0.17,
                "ci": [-0.30, -0.04],
                "p": 0.012,
                "p_holm": 0.024,
                "significant": True,
            },
        ],
        {"claim_groups": {"content": ["coverage"], "disposition": ["assertion_asymmetry"]}},
        arc="arc1",
    )
    arc2 = _run(
        root,
        "train-arc2",
        "tiny-qwen3",
        "code",
        {
            "lam1.0": {"hedge_rate": _m(0.10, 0.0, 0.2), "pass@1": _m(0.30, 0.1, 0.5)},
            "lam0.5": {"hedge_rate": _m(0.25, 0.1, 0.4), "pass@1": _m(0.28, 0.1, 0.45)},
        },
        [
            {
                "id": "arc2.lam0.5.hedge_rate",
                "arm": "lam0.5",
                "baseline": "lam1.0",
                "metric": "hedge_rate",
                "delta": 0.15,
                "ci": [0.02, 0.3],
                "p": 0.04,
                "p_holm": 0.08,
                "significant": False,
            }
        ],
        {
            "arc2": {
                "disposition": "humble",
                "method": "magnitude",
                "top_k": 4,
                "lambdas": [1.0, 0.5],
                "disposition_metric": "hedge_rate",
                "content_metrics": ["pass@1"],
                "best_lambda": 0.5,
            }
        },
        arc="arc2",
    )
    atomic.write_text(
        arc2.dir / "artifacts" / "head_ranking.csv",
        "rank,layer,head,score,d,cos\n1,0,1,0.9,,\n2,1,0,0.5,,\n3,0,0,0.1,,\n4,1,1,0.05,,\n",
    )
    steps = {
        "step1_cv": {"rows": [{"C": 1.0, "status": "done", "mode": "pass", "cv": {"auc": 0.71}}]},
        "step2_fresh": {
            "rows": [
                {
                    "C": 1.0,
                    "status": "done",
                    "mode": "capability-cliff",
                    "cv": {"auc": 0.70},
                    "fresh": {"auc": 0.52, "n": 193, "n_pos": 9, "balanced": {"asymmetry": -0.04}},
                }
            ]
        },
        "step3_axes": {
            "rows": [
                {
                    "C": 1.0,
                    "axis": "hedging",
                    "status": "done",
                    "mode": "fail",
                    "cv": {"auc": 0.66},
                    "fresh": {"auc": 0.55, "n": 193, "n_pos": 40},
                }
            ]
        },
    }
    arc3 = _run(
        root,
        "train-arc3",
        "smollm2-1.7b",
        "chef",
        {"fresh": {"accuracy": _m(0.05, 0.02, 0.08)}},
        [{"id": "probe.fresh.auc@C=1", "kind": "probe", "metric": "probe_auc", "value": 0.52, "holds": False}],
        {
            "arc3": {
                "steps": steps,
                "features": {"train": "artifacts/features_eval.npz"},
                "failure_mode": "capability-cliff",
            }
        },
        arc="arc3",
    )
    m = arc3.manifest
    m["stages"]["features:eval"] = {"status": "done", "path": "artifacts/features_eval.npz", "n": 200, "n_pos": 61}
    arc3.write_json("manifest.json", m)
    # the paper's truncation artefact: +15.3 claimed, -8.0 at twice the budget
    ev = _run(
        root,
        "eval",
        "smollm2-135m",
        "code",
        {"base": {"pass@1": _m(0.20, 0.1, 0.3)}, "dd": {"pass@1": _m(0.353, 0.25, 0.45)}},
        [
            {
                "arm": "dd",
                "baseline": "base",
                "metric": "pass@1",
                "delta": 0.153,
                "ci": [0.05, 0.25],
                "p": 0.003,
                "p_holm": 0.003,
                "significant": True,
            }
        ],
    )
    ev.write_json(
        "falsify/falsify.json",
        {
            "claims": [
                {
                    "id": "dd:pass@1",
                    "verdict": "FALSIFIED",
                    "reasons": ["truncation-artefact: gone on untruncated items (-0.08)"],
                    "claimed": {"delta": 0.153},
                    "checks": {
                        "truncation": {"status": "fail", "reason": "x", "remeasured": {"delta": -0.08}},
                        "seed_variance": {"status": "pass", "reason": "y", "remeasured": {"delta": 0.14}},
                    },
                }
            ]
        },
    )
    return {"arc1": arc1, "arc2": arc2, "arc3": arc3, "eval": ev, "root": root}


def _csv(out: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(out / f"{name}.csv")


def test_tables_carry_the_runs_numbers(runs, tmp_path):
    out = tmp_path / "rep"
    md = build_report([runs[k].dir for k in ("arc1", "arc2", "arc3", "eval")], out)
    assert md == out / "report.md" and md.exists()

    a1 = _csv(out, "arc1_summary").set_index("metric")
    assert a1.loc["coverage", "base"] == pytest.approx(0.41)
    assert a1.loc["coverage", "student"] == pytest.approx(0.38)
    assert a1.loc["assertion_asymmetry", "delta"] == pytest.approx(-0.17)
    assert a1.loc["assertion_asymmetry", "delta_ci_lo"] == pytest.approx(-0.30)
    assert a1.loc["assertion_asymmetry", "p_holm"] == pytest.approx(0.024)
    assert a1.loc["assertion_asymmetry", "group"] == "disposition"
    assert a1.loc["coverage", "group"] == "content"
    assert set(a1["model"]) == {"qwen3-0.6b"} and set(a1["domain"]) == {"chef"}

    a2 = _csv(out, "arc2_sweep")
    row = a2[(a2["lambda"] == 0.5) & (a2["metric"] == "hedge_rate")].iloc[0]
    assert row["value"] == pytest.approx(0.25) and row["delta_vs_1.0"] == pytest.approx(0.15)
    assert a2[(a2["lambda"] == 1.0) & (a2["metric"] == "pass@1")].iloc[0]["value"] == pytest.approx(0.30)
    assert len(a2) == 4  # 2 lambdas x (disposition + 1 content metric)

    fm = _csv(out, "failure_modes").iloc[0]
    assert (fm["train_positives"], fm["fresh_positives"], fm["fresh_n"]) == (61, 9, 193)
    assert fm["auc_cv"] == pytest.approx(0.71) and fm["auc_fresh"] == pytest.approx(0.52)
    assert fm["verdict"] == "capability-cliff"

    mt = _csv(out, "metrics")
    cell = mt[(mt["arm"] == "dd") & (mt["metric"] == "pass@1")].iloc[0]
    assert (cell["model"], cell["domain"], cell["value"], cell["ci_hi"]) == ("smollm2-135m", "code", 0.353, 0.45)
    assert len(mt) == 4 + 4 + 1 + 2  # every arm x metric of every run

    ax = _csv(out, "arc3_axes")
    assert ax[ax["axis"] == "hedging"].iloc[0]["fresh_auc"] == pytest.approx(0.55)

    cross = _csv(out, "cross_arc")
    assert len(cross) == 2 + 1 + 1 + 1  # every claim of every run
    ev = cross[cross["claim"] == "dd:pass@1"].iloc[0]
    assert ev["verdict"] == "FALSIFIED" and ev["claimed_delta"] == pytest.approx(0.153)
    assert ev["remeasured_delta"] == pytest.approx(-0.08)  # furthest from the claim
    assert ev["verdict_reasons"] == "truncation-artefact: gone on untruncated items (-0.08)"  # the evidence, in words
    a1c = cross[cross["arc"] == "arc1"]
    assert len(a1c) == 2 and a1c["verdict"].isna().all()  # no falsify.json for that run
    probe = cross[cross["kind"] == "probe"].iloc[0]
    assert probe["arc"] == "arc3" and probe["claimed_value"] == pytest.approx(0.52)

    figs = {p.name for p in (out / "figures").iterdir()}
    assert "claimed_vs_remeasured.png" in figs and "auc_collapse.png" in figs
    assert f"heads_{runs['arc2'].id}.png" in figs
    text = md.read_text()
    assert "FALSIFIED" in text and "figures/auc_collapse.png" in text


def test_sweep_dir_and_runs_dir_expand(runs, tmp_path):
    sweep = runs["root"] / "sweep_20260101_000000_abc"
    sweep.mkdir()
    atomic.write_json(
        sweep / "sweep.json",
        {
            "jobs": [
                {"index": 0, "overrides": ["x=1"], "run_dir": str(runs["arc1"].dir), "status": "completed"},
                # moved runs root: found beside the sweep dir by name
                {"index": 1, "overrides": ["x=2"], "run_dir": "/elsewhere/" + runs["eval"].id, "status": "completed"},
                {"index": 2, "overrides": ["x=3"], "run_dir": None, "status": "failed"},
            ]
        },
    )
    got = resolve_runs([sweep])
    assert [p.name for p in got] == [runs["arc1"].id, runs["eval"].id]
    # a directory of runs: all four runs, the sweep's runs not duplicated
    assert len(resolve_runs([runs["root"]])) == 4
    md = build_report([sweep, runs["arc1"].dir], tmp_path / "r2")
    assert len(_csv(md.parent, "runs")) == 2


def test_a_report_into_an_old_out_dir_leaves_no_stale_figures(runs, tmp_path):
    out = tmp_path / "rep"
    build_report([runs[k].dir for k in ("arc1", "arc2", "arc3", "eval")], out)
    (out / "figures" / "heads_20200101_000000_old-run.png").write_bytes(b"old")
    (out / "figures" / "mine.png").write_bytes(b"user's")
    md = build_report([runs["arc1"].dir, runs["arc3"].dir], out)  # no arc-2 run this time
    figs = {p.name for p in (out / "figures").iterdir()}
    assert not any(n.startswith("heads_") for n in figs)
    assert "mine.png" in figs and "auc_collapse.png" in figs
    assert "heads_" not in md.read_text()


def test_missing_parts_leave_cells_empty(tmp_path):
    root = tmp_path / "runs"
    bare = Run.create("eval", {"model": {"name": "m"}, "domain": {"name": "chef"}}, "m", root=root)
    bare.finish("failed", "boom")  # no results.json at all
    md = build_report([bare.dir], tmp_path / "o")
    assert _csv(md.parent, "runs").iloc[0]["status"] == "failed"
    assert (md.parent / "cross_arc.csv").read_text().strip() in ("", '""')
    assert not (md.parent / "figures").exists() or not any((md.parent / "figures").iterdir())


@pytest.mark.parametrize("bad", ["nope", "file"])
def test_bad_input_is_one_line(tmp_path, bad):
    p = tmp_path / bad
    if bad == "file":
        p.write_text("x")
    with pytest.raises(DispoError) as e:
        build_report([p], tmp_path / "o")
    assert "\n" not in str(e.value)
    with pytest.raises(DispoError):
        build_report([], tmp_path / "o")
    empty = tmp_path / "emptydir"
    empty.mkdir()
    with pytest.raises(DispoError, match="holds no runs"):
        build_report([empty], None)
