"""falsify on the terminal: verdict + first reason per claim, re-measured evidence, 80 columns."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from dispo.falsify.render import evidence, main_reason, print_verdicts
from dispo.falsify.run import falsify_run
from tests.falsify.test_falsify import N, make_run, sample


def _render(result, width=80, **kw):
    buf = io.StringIO()
    print_verdicts(result, Console(file=buf, width=width, color_system=None), **kw)
    return buf.getvalue()


def _flat(text: str) -> str:
    return " ".join(text.split())


def _column(out: str, i: int) -> str:
    """The text of table column i (0: claim ... 3: reason), its wrapped lines joined."""
    rows = [line.split("│") for line in out.splitlines() if line.startswith("│")]
    return _flat(" ".join(r[i + 1] for r in rows if len(r) > i + 1))


def _truncated_run(tmp_path):
    """A baseline cut at 512 tokens: the treatment's pass@1 gain is a truncation artefact."""

    def base_at(budget):
        return [
            sample(
                i,
                "long reasoning ...",
                correct=(i < 5) or (10 <= i < 35 and budget >= 1024),
                finish="length" if 10 <= i < 35 and budget < 1024 else "stop",
            )
            for i in range(N)
        ]

    treat = [sample(i, "def f(): ...", correct=i < 20) for i in range(N)]
    run = make_run(tmp_path, {"base": base_at(512), "treat": treat}, ["pass@1"])
    res = falsify_run(
        run.dir,
        ["falsify.seeds=[1]"],
        regenerate=lambda arm, d, s, ids=None: base_at(d["max_new_tokens"]) if arm == "base" else treat,
        progress=False,
    )
    return run, res


def test_a_real_falsify_result_at_80_columns(tmp_path):
    run, res = _truncated_run(tmp_path)
    (c,) = res["claims"]
    assert c["verdict"] == "FALSIFIED"
    out = _render(res, run_dir=run.dir)
    body, path_line = out.rstrip("\n").rsplit("\n", 1)
    assert "…" not in out and max(map(len, body.splitlines())) <= 80
    # the report path stays on one line (soft-wrapped by the terminal) so it can be copied
    assert path_line == f"report: {run.dir}/falsify/report.md"
    assert "FALSIFIED" in _column(out, 2) and "+0.3750" in _column(out, 1)
    # the deciding reason, whole (wrapped inside its column, never cut)
    assert main_reason(c) == c["reasons"][0] and c["reasons"][0].startswith("truncation")
    reason = _column(out, 3)
    assert reason.startswith(_flat(c["reasons"][0]))
    assert (f"(+{len(c['reasons']) - 1} more)" in reason) == (len(c["reasons"]) > 1)
    assert "0 survive, 1 falsified, 0 inconclusive" in out


def test_evidence_lists_what_each_check_re_measured(tmp_path):
    _, res = _truncated_run(tmp_path)
    c = res["claims"][0]
    pts = dict(evidence(c))
    # stored outputs on the 15 items no arm cut (0..9, 35..39): 5/15 -> 10/15
    assert pts["untruncated items"] == c["checks"]["truncation"]["stored"]["remeasured"]["delta"]
    assert pts["untruncated items"] == pytest.approx(5 / 15)
    assert pts["budget x2"] == c["checks"]["truncation"]["steps"][0]["remeasured"]["delta"]
    assert pts["seed 1"] == c["checks"]["seed_variance"]["per_seed"][0]["delta"]
    assert "seeds pooled" in pts
    assert not any(label.startswith(("statistics", "style")) for label in pts)  # the claim itself, another metric
    line = _flat(_render(res))
    assert f"budget x2 {pts['budget x2']:+.4f}" in line and f"seed 1 {pts['seed 1']:+.4f}" in line


def test_no_model_is_said_and_imported_shapes_are_tolerated():
    res = {
        "run": "r",
        "has_model": False,
        "why_no_model": "imported run: no model to regenerate with",
        "future_field": {"anything": [1, 2]},
        "claims": [
            {
                "id": "probe.fresh.auc@C=1",
                "claimed": {"delta": None, "auc": 0.91},
                "verdict": "FALSIFIED",
                "reasons": [],
                "checks": {"arc_specific": {"status": "fail", "reason": "fresh-collapse: AUC 0.52"}, "x": "odd"},
            },
            "not a claim",
        ],
    }
    out = _render(res)
    assert "did not run: imported run" in _flat(out)
    assert _column(out, 1) == "AUC 0.9100" and _column(out, 3) == "arc_specific: fresh-collapse: AUC 0.52"
    assert "no claims" not in out


def test_a_run_without_claims_says_so():
    out = _render({"run": "r", "has_model": True, "claims": []})
    assert "makes no claims" in out
