"""Results and claims stay readable at 80 columns: every number whole, nothing cut with "…"."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from dispo.reporting.tables import print_results

HEADLINE = (
    "pass@1",
    "truncation_rate",
    "mean_tokens",
    "assertion_asymmetry",
    "hallucination_rate",
    "over_hedging",
    "svr_rate",
    "hedge_rate",
)


def _metric(value, lo, hi, n=24):
    return {"value": value, "ci": [lo, hi], "n": n, "n_unscored": 0, "source": "x"}


def _results(arms: list[str]) -> dict:
    metrics = {}
    for k, arm in enumerate(arms):
        metrics[arm] = {
            m: _metric(0.0416666 * (i + 1) + 0.1 * k, -0.1234567 + k / 100, 0.8765432 - k / 100)
            for i, m in enumerate(HEADLINE)
        }
        metrics[arm]["mean_tokens"] = _metric(183.4583333 + k, 150.125, 201.75)
    claims = [
        {
            "arm": arm,
            "baseline": arms[0],
            "metric": m,
            "base": 0.0416667,
            "treat": 0.125 + i / 7,
            "delta": 0.0833333 + i / 7,
            "ci": [-0.0416667, 0.2083333],
            "p": 0.0312,
            "p_holm": 0.4375 - i / 100,
        }
        for arm in arms[1:]
        for i, m in enumerate(("pass@1", "svr_rate", "assertion_asymmetry"))
    ]
    return {"metrics": metrics, "claims": claims}


def _render(results: dict, width: int = 80) -> str:
    buf = io.StringIO()
    con = Console(file=buf, width=width, force_terminal=False, color_system=None)
    print_results(results, con)
    return buf.getvalue()


def _shown(v: float, out: str) -> bool:
    # a number counts as shown if it appears whole at 3 or 4 decimals (1 for token counts), signed or not
    digits = (1,) if abs(v) >= 10 else (3, 4)
    return any(s in out for d in digits for s in (f"{v:.{d}f}", f"{v:+.{d}f}"))


@pytest.mark.parametrize(
    "arms",
    [
        ["base", "student"],
        ["base", "student", "dpo_only"],
        ["base", "lambda_0.9", "lambda_0.8", "lambda_0.5", "lambda_0.0"],
    ],
)
def test_every_number_appears_uncut_at_80_columns(arms):
    res = _results(arms)
    out = _render(res)
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= 80
    missing = []
    for arm, ms in res["metrics"].items():
        assert arm in out
        for name, m in ms.items():
            for v in (m["value"], *m["ci"]):
                if not _shown(v, out):
                    missing.append((arm, name, v))
    for c in res["claims"]:
        for v in (c["base"], c["treat"], c["delta"], *c["ci"], c["p_holm"]):
            if not _shown(v, out):
                missing.append((c["arm"], c["metric"], v))
    assert not missing, missing[:5]


def test_the_old_layout_would_have_cut_numbers():
    """The check above can fail: rich's default ellipsis on a too-narrow arms-as-rows table cuts cells."""
    from rich.table import Table

    buf = io.StringIO()
    con = Console(file=buf, width=80, color_system=None)
    res = _results(["base", "student"])
    t = Table()
    t.add_column("arm")
    for m in HEADLINE:
        t.add_column(m)
    for arm, ms in res["metrics"].items():
        t.add_row(arm, *(f"{ms[m]['value']:.4f} [{ms[m]['ci'][0]:.3f}, {ms[m]['ci'][1]:.3f}]" for m in HEADLINE))
    con.print(t)
    assert "…" in buf.getvalue()


def test_metrics_are_rows_and_arms_are_columns():
    out = _render(_results(["base", "student"]))
    header = next(line for line in out.splitlines() if "metric" in line and "base" in line)
    assert header.index("base") < header.index("student")
    rows = [line for line in out.splitlines() if re.search(r"\bpass@1\b", line)]
    assert rows, out


def test_missing_values_say_na_and_nan_is_not_a_number():
    res = {
        "metrics": {
            "base": {"pass@1": {"value": float("nan"), "ci": None, "n": 0}},
            "student": {"pass@1": {"value": 0.5, "ci": None, "n": 4}},
        },
        "claims": [
            {
                "arm": "student",
                "baseline": "base",
                "metric": "pass@1",
                "base": None,
                "treat": 0.5,
                "delta": None,
                "ci": None,
                "p": None,
                "p_holm": None,
            }
        ],
    }
    out = _render(res)
    assert "NaN" in out and "n/a" in out and "0.5000" in out


def test_long_arm_names_fold_and_markup_in_names_is_text():
    long = "student_lambda_0.85_with_a_very_long_descriptive_arm_name"
    res = _results(["base", long])
    res["metrics"]["[bold]odd[/bold]"] = res["metrics"].pop("base")
    out = _render(res)
    assert "…" not in out and max(len(line) for line in out.splitlines()) <= 80
    assert "[bold]odd[/bold]" in out  # shown as typed, not read as rich markup
    results_part = out.split("claims:")[0]
    header = [line.split("┃") for line in results_part.splitlines() if line.startswith("┃")]
    col = next(i for i, cell in enumerate(header[0]) if cell.strip().startswith("student"))
    assert "".join(row[col].strip() for row in header) == long  # folded over header lines, every character kept
    for m in res["metrics"][long].values():
        assert _shown(m["value"], out)


def test_odd_shapes_from_a_hand_edited_results_json_do_not_raise():
    res = {
        "metrics": {"base": {"pass@1": {"value": 0.25, "ci": [0.1]}}, "student": None},
        "claims": [
            "not a claim",
            {"metric": "pass@1", "arm": "student", "delta": 0.25, "ci": "wide", "p_holm": 0.5},
            {"kind": "probe", "id": "probe.cv.auc@C=1", "op": ">=", "bar": 0.7, "value": 0.8125, "holds": True},
        ],
    }
    out = _render(res)
    assert "0.2500" in out and "+0.2500" in out and "0.5000" in out
    assert "student:pass@1" in out and "probe.cv.auc@C=1" in out and "holds: True" in out and "0.8125" in out


def test_the_claims_table_keeps_the_holm_p_and_says_na_without_it():
    res = {"claims": [{"arm": "s", "metric": "pass@1", "delta": 0.1, "p": 0.01234, "p_holm": None}]}
    out = _render(res)
    assert "n/a" in out and "0.0123" not in out  # a raw p is never shown under the Holm header
