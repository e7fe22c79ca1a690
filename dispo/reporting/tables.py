"""Terminal tables for results.json that stay readable at 80 columns (`dispo show`, `eval`, `train`...).

Metrics are rows and arms are columns, each cell the value over its 95% CI on a second line, so
a column is only as wide as one number. When the arms do not fit the console, they are split
over several tables (the metric column repeated) instead of letting rich shorten cells with
"…": a number on screen is either whole or not shown at all.
"""

from __future__ import annotations

import math
from typing import Any

from rich.markup import escape

# rich's default box: one border char per column plus one at the end, one space of padding each side
_COL_OVERHEAD = 3
_METRIC_COL_MAX = 26
_ARM_NAME_MAX = 30


def num(v: Any, digits: int = 4) -> str:
    """A number as the tables print it: fixed decimals, p-values below 1e-4 in scientific form."""
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if v != 0 and abs(v) < 10**-digits:
            return f"{v:.2e}"
        return f"{v:.{1 if abs(v) >= 10 else digits}f}"  # token counts need no 4 decimals
    return str(v)


def signed(v: Any, digits: int = 4) -> str:
    return num(v, digits) if not isinstance(v, float) or math.isnan(v) else ("+" if v >= 0 else "") + num(v, digits)


def ci_text(ci: Any, digits: int = 3, sign: bool = False) -> str:
    if not isinstance(ci, (list, tuple)) or len(ci) != 2 or ci[0] is None or ci[1] is None:
        return ""
    f = signed if sign else num
    return f"[{f(ci[0], digits)}, {f(ci[1], digits)}]"


def metric_cell(m: dict | None) -> str:
    """value, then [lo, hi] and unscored count on their own lines (rich markup escaped)."""
    if not m or not isinstance(m, dict):
        return "n/a"
    v = m.get("value")
    if isinstance(v, dict):  # the 2x2 cells of verbal x correct: counts, not one number
        return escape(", ".join(f"{k} {v[k]}" for k in sorted(map(str, v))))
    lines = [escape(num(v))]
    ci = ci_text(m.get("ci"))
    if ci:
        lines.append(f"[dim]{escape(ci)}[/dim]")
    if m.get("n_unscored"):
        lines.append(f"[yellow]{escape(str(m['n_unscored']))} unscored[/yellow]")
    return "\n".join(lines)


def _plain_width(cell: str) -> int:
    from rich.text import Text

    return max((Text.from_markup(line).cell_len for line in cell.split("\n")), default=0)


def _chunks(widths: list[int], first: int, total: int) -> list[list[int]]:
    """Greedy split of column indices into groups that fit `total` next to a column of `first`."""
    groups: list[list[int]] = []
    cur: list[int] = []
    used = 1 + first + _COL_OVERHEAD
    for i, w in enumerate(widths):
        if cur and used + w + _COL_OVERHEAD > total:
            groups.append(cur)
            cur, used = [], 1 + first + _COL_OVERHEAD
        cur.append(i)
        used += w + _COL_OVERHEAD
    if cur:
        groups.append(cur)
    return groups


def results_tables(metrics: dict[str, dict], width: int, metric_names: list[str] | None = None) -> list:
    """Rich tables of metrics (rows) x arms (columns), split by arms to fit `width`."""
    from rich.table import Table

    from dispo.reporting.report import headline_metrics

    metrics = {str(a): (m if isinstance(m, dict) else {}) for a, m in (metrics or {}).items()}
    names = metric_names or headline_metrics(metrics)
    arms = list(metrics)
    if not names or not arms:
        return []
    cells = {a: [metric_cell(metrics[a].get(n)) for n in names] for a in arms}
    # a column is as wide as its widest cell (never narrower: numbers are not cut) or its arm
    # name up to _ARM_NAME_MAX (a longer name folds onto a second header line)
    cell_widths = [max(_plain_width(c) for c in cells[a]) for a in arms]
    widths = [max(min(len(a), _ARM_NAME_MAX), w) for a, w in zip(arms, cell_widths)]
    first = min(_METRIC_COL_MAX, max(len("metric"), *(len(n) for n in names)))
    tables = []
    groups = _chunks(widths, first, width)
    for gi, group in enumerate(groups):
        title = "results (95% bootstrap CI under each value)"
        if len(groups) > 1:
            title = f"results {gi + 1}/{len(groups)} (95% CI under each value)"
        t = Table(title=title, title_justify="left", show_lines=True)
        t.add_column("metric", overflow="fold", max_width=first)
        for i in group:
            t.add_column(escape(arms[i]), justify="right", overflow="fold", min_width=cell_widths[i])
        for r, n in enumerate(names):
            t.add_row(escape(n), *(cells[arms[i]][r] for i in group))
        tables.append(t)
    return tables


def claims_table(claims: list[dict]):
    """One row per claim: baseline -> treatment, delta over its CI, Holm p."""
    from rich.table import Table

    if not claims:
        return None
    from dispo.reporting.report import claim_id

    t = Table(title="claims: treatment - baseline, paired by item", title_justify="left", show_lines=True)
    t.add_column("claim", overflow="fold", max_width=28)
    t.add_column("baseline", justify="right", no_wrap=True)
    t.add_column("treatment", justify="right", no_wrap=True)
    t.add_column("delta [95% CI]", justify="right", no_wrap=True)
    t.add_column("p (Holm)", justify="right", no_wrap=True)
    for c in claims:
        if not isinstance(c, dict):
            continue
        cid = escape(str(claim_id(c)))
        if c.get("kind") == "probe":
            t.add_row(
                cid,
                escape(f"bar {c.get('op', '')} {num(c.get('bar'))}"),
                escape(num(c.get("value"))),
                escape(f"holds: {c.get('holds')}"),
                "n/a",
            )
            continue
        ci = ci_text(c.get("ci"), sign=True)
        delta = escape(signed(c.get("delta"))) + (f"\n[dim]{escape(ci)}[/dim]" if ci else "")
        p = c.get("p_holm", c.get("p"))
        t.add_row(cid, escape(num(c.get("base"))), escape(num(c.get("treat"))), delta, escape(num(p, 4)))
    return t


def print_results(results: dict, console=None, run_dir: Any = None) -> None:
    """The results and claims of one run, fitted to the console's width."""
    from rich.console import Console

    con = console or Console()
    for t in results_tables(results.get("metrics") or {}, con.width):
        con.print(t)
    t = claims_table(results.get("claims") or [])
    if t is not None:
        con.print(t)
    if run_dir is not None:
        con.print(f"run dir: [bold]{escape(str(run_dir))}[/bold]", soft_wrap=True)
