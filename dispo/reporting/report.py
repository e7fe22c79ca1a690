"""report.md for one run: metrics per arm and the run's claims, from results.json only."""

from __future__ import annotations

from typing import Any

from dispo.stats.catalog import HEADLINE


def fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def fmt_metric(m: dict | None) -> str:
    if not m or not isinstance(m, dict):
        return "n/a"
    s = fmt(m.get("value"))
    ci = m.get("ci")
    if ci and ci[0] is not None:
        s += f" [{fmt(ci[0], 3)}, {fmt(ci[1], 3)}]"
    if m.get("n_unscored"):
        s += f" ({m['n_unscored']} unscored)"
    return s


def headline_metrics(metrics: dict[str, dict]) -> list[str]:
    present = {k for arm in metrics.values() for k in arm}
    return [k for k in HEADLINE if k in present]


def metrics_table(metrics: dict[str, dict]) -> str:
    cols = headline_metrics(metrics)
    lines = ["| arm | n | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    for arm, m in metrics.items():
        n = max((v.get("n") or 0 for v in m.values() if isinstance(v, dict)), default=0)
        lines.append(f"| {arm} | {n} | " + " | ".join(fmt_metric(m.get(c)) for c in cols) + " |")
    return "\n".join(lines)


def claim_id(c: dict) -> str:
    return c.get("id") or f"{c.get('arm', c.get('kind', 'claim'))}:{c.get('metric')}"


def claims_table(claims: list[dict]) -> str:
    if not claims:
        return "_No treatment-vs-baseline claims in this run._"
    lines = [
        "| claim | metric | baseline | treatment | delta [95% CI] | p (Holm) | test |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in claims:
        ci = c.get("ci") or [None, None]
        if c.get("kind") == "probe":
            lines.append(
                f"| {claim_id(c)} | {c.get('metric')} | bar {c.get('op', '')} {fmt(c.get('bar'))} | "
                f"{fmt(c.get('value'))} | holds: {c.get('holds')} | n/a | probe |"
            )
            continue
        lines.append(
            f"| {claim_id(c)} | {c.get('metric')} | {fmt(c.get('base'))} | {fmt(c.get('treat'))} | "
            f"{fmt(c.get('delta'))} [{fmt(ci[0], 3)}, {fmt(ci[1], 3)}] | {fmt(c.get('p_holm', c.get('p')), 4)} | {c.get('test', '')} |"
        )
    return "\n".join(lines)


def write_report(run, title: str | None = None, sections: list[str] | None = None) -> None:
    res = run.results
    m = run.manifest
    cfg = run.config
    dec = cfg.get("decoding", {})
    parts = [
        f"# {title or m.get('command', 'run')}: {m.get('model')}  ({run.id})",
        "",
        f"domain `{cfg.get('domain', {}).get('name')}` split `{cfg.get('domain', {}).get('split')}`, "
        f"judge `{cfg.get('judge', {}).get('name')}`, decoding max_new_tokens={dec.get('max_new_tokens')} "
        f"temperature={dec.get('temperature')}, seed {cfg.get('seed')}, git {m.get('git_commit')}",
        "",
        "## Metrics per arm (95% bootstrap CI)",
        "",
        metrics_table(res.get("metrics", {})),
        "",
        "## Claims (treatment vs baseline, paired by item)",
        "",
        claims_table(res.get("claims", [])),
        "",
        "Truncation rate is reported for every arm: a gain that comes with a truncated baseline is the "
        "paper's first false positive. Run `dispo falsify " + str(run.dir) + "` to re-check each claim.",
    ]
    if sections:
        parts += ["", *sections]
    run.write_text("report.md", "\n".join(parts) + "\n")
