"""falsify on the terminal: a verdict and its first reason per claim, then the re-measured evidence.

Reads the dict `falsify_run` returns (falsify/falsify.json) and tolerates fields it does not
know, or an older file that lacks some: the checks evolve, this module only presents them. The
table fits 80 columns (the reason column wraps, no cell is cut with "…"); every reason and
every check's evidence stays in falsify/report.md.
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape

COLOURS = {"SURVIVES": "green", "FALSIFIED": "red", "INCONCLUSIVE": "yellow"}
# the check status that decides each verdict: its reason is shown when a claim lists none
_DECISIVE = {"FALSIFIED": ("fail",), "INCONCLUSIVE": ("flag", "skipped", "error"), "SURVIVES": ("pass",)}


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _signed(v: Any) -> str:
    return f"{v:+.4f}" if _num(v) else "n/a"


def _dict(v: Any) -> dict:
    return v if isinstance(v, dict) else {}


def claimed_text(claim: dict) -> str:
    """The claimed delta, or for a probe claim (no delta) its AUC."""
    c = _dict(claim.get("claimed"))
    if _num(c.get("delta")):
        return _signed(c["delta"])
    for k in ("auc", "cv_auc"):
        if _num(c.get(k)):
            return f"AUC {c[k]:.4f}"
    return "n/a"


def main_reason(claim: dict) -> str:
    """The first reason the verdict gives (falsify lists the deciding failure first)."""
    reasons = claim.get("reasons")
    if isinstance(reasons, list) and reasons:
        return str(reasons[0])
    for name, r in _dict(claim.get("checks")).items():
        if isinstance(r, dict) and r.get("status") in _DECISIVE.get(claim.get("verdict"), ()):
            return f"{name}: {r.get('reason', '')}"
    return ""


def _remeasured_delta(r: dict) -> Any:
    return _dict(r.get("remeasured")).get("delta")


def evidence(claim: dict) -> list[tuple[str, float]]:
    """(label, re-measured delta of the claim's own metric) from every check that re-measured it:
    each larger token budget, each sampling seed and their pooled test, the untruncated stored
    items, one scorer for both arms, the second judge. style_vs_substance measures another
    metric (content) and is left out; so is the run's own paired test (it is the claim)."""
    pts: list[tuple[str, float]] = []
    for name, r in _dict(claim.get("checks")).items():
        if not isinstance(r, dict) or name in ("statistics", "style_vs_substance"):
            continue
        steps = [s for s in r.get("steps") or [] if isinstance(s, dict)]
        per_seed = [s for s in r.get("per_seed") or [] if isinstance(s, dict)]
        stored = _remeasured_delta(_dict(r.get("stored")))
        if _num(stored):
            pts.append(("untruncated items", stored))
        for s in steps:
            if _num(_remeasured_delta(s)):
                pts.append((f"budget x{s.get('budget_factor')}", _remeasured_delta(s)))
        for s in per_seed:
            if _num(s.get("delta")):
                pts.append((f"seed {s.get('seed')}", s["delta"]))
        d = _remeasured_delta(r)
        if steps or _num(stored) or not _num(d):
            continue  # already listed: the last budget step, or the stored re-measure itself
        if per_seed:
            label = "seeds pooled"
        elif r.get("second_judge"):
            label = f"judge {r['second_judge']}"
        elif r.get("rescored_with"):
            label = f"one scorer ({r['rescored_with']})"
        else:
            label = name.replace("_", " ")
        pts.append((label, d))
    return pts


def verdict_table(result: dict):
    from rich.table import Table

    t = Table(title=f"falsify {escape(str(result.get('run', '')))}", title_justify="left")
    t.add_column("claim", overflow="fold", max_width=24)
    t.add_column("claimed", justify="right", no_wrap=True)
    t.add_column("verdict", no_wrap=True)
    t.add_column("reason (all: falsify/report.md)", overflow="fold", ratio=1)
    for c in result.get("claims") or []:
        if not isinstance(c, dict):
            continue
        v = str(c.get("verdict", "?"))
        reason = escape(main_reason(c))
        more = len(c.get("reasons") or []) - 1 if isinstance(c.get("reasons"), list) else 0
        if more > 0:
            reason += f" [dim](+{more} more)[/dim]"
        t.add_row(escape(str(c.get("id"))), claimed_text(c), f"[{COLOURS.get(v, 'white')}]{escape(v)}[/]", reason)
    return t


def print_verdicts(result: dict, console=None, run_dir: Any = None) -> None:
    """The verdict table, one line of re-measured deltas per claim that has them, what could
    not run, the verdict counts and where the report is."""
    from rich.console import Console

    con = console or Console()
    claims = [c for c in result.get("claims") or [] if isinstance(c, dict)]
    con.print(verdict_table(result))
    for c in claims:
        pts = evidence(c)
        if pts:
            shown = ", ".join(f"{label} {_signed(d)}" for label, d in pts)
            con.print(f"  {escape(str(c.get('id')))}: claimed {claimed_text(c)}; re-measured {escape(shown)}")
    if result.get("has_model") is False:
        why = result.get("why_no_model") or "no model"
        con.print(f"[yellow]checks that regenerate outputs did not run: {escape(str(why))}[/]")
    if not claims:
        con.print("this run makes no claims (results.json has no treatment-vs-baseline deltas)")
    s = _dict(result.get("summary"))
    if s:
        con.print(
            f"{s.get('SURVIVES', 0)} survive, {s.get('FALSIFIED', 0)} falsified, "
            f"{s.get('INCONCLUSIVE', 0)} inconclusive"
        )
    if run_dir is not None:
        con.print(f"report: [bold]{escape(str(run_dir))}/falsify/report.md[/bold]", soft_wrap=True)
