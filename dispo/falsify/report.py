"""falsify/report.md and the claimed-vs-re-measured figure (the paper's Figure 1)."""

from __future__ import annotations


def _fmt(v, d=4):
    return "n/a" if v is None else (f"{v:+.{d}f}" if isinstance(v, float) else str(v))


def remeasured_points(claim: dict) -> list[tuple[str, float]]:
    pts = []
    for name, r in claim["checks"].items():
        rm = r.get("remeasured") or {}
        if rm.get("delta") is not None:
            pts.append((name, rm["delta"]))
        for s in r.get("per_seed") or []:
            if s.get("delta") is not None:
                pts.append((f"seed {s['seed']}", s["delta"]))
    return pts


def plot(run, result: dict):
    from dispo.core.plotting import pyplot

    plt = pyplot()

    claims = [c for c in result["claims"] if c["claimed"].get("delta") is not None]
    if not claims:
        return None
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(claims) + 1.5))
    colours = {"SURVIVES": "tab:green", "FALSIFIED": "tab:red", "INCONCLUSIVE": "tab:orange"}
    for y, c in enumerate(claims):
        ax.scatter(
            [c["claimed"]["delta"]],
            [y],
            marker="D",
            s=60,
            color=colours[c["verdict"]],
            zorder=3,
            label="claimed" if y == 0 else None,
        )
        pts = remeasured_points(c)
        if pts:
            ax.scatter(
                [p[1] for p in pts],
                [y] * len(pts),
                marker="o",
                s=25,
                facecolors="none",
                edgecolors="k",
                label="re-measured" if y == 0 else None,
            )
    ax.axvline(0, color="grey", lw=1)
    ax.set_yticks(range(len(claims)), [f"{c['id']} ({c['verdict']})" for c in claims])
    ax.set_xlabel("treatment - baseline")
    ax.set_title("claimed vs re-measured deltas")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    path = run.dir / "falsify" / "deltas.png"
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path


def write_falsify_report(run, result: dict) -> None:
    lines = [f"# falsify {result['run']}", ""]
    s = result["summary"]
    lines.append(
        f"{s['SURVIVES']} survive, {s['FALSIFIED']} falsified, {s['INCONCLUSIVE']} inconclusive "
        f"(alpha {result['settings']['alpha']}, Holm-corrected across the run's claims)."
    )
    if not result["has_model"]:
        lines += [
            "",
            f"**Checks that regenerate outputs could not run: {result['why_no_model']}.** A paired test on "
            "the recorded outputs can call a gain significant even when it is a decoding artefact "
            "(truncation) or a scoring artefact (different judge prompts per arm): resampling items "
            "cannot see either. Those claims stay INCONCLUSIVE until re-run with the model.",
        ]
    lines += ["", "| claim | claimed delta | verdict | reasons |", "|---|---|---|---|"]
    for c in result["claims"]:
        lines.append(
            f"| {c['id']} | {_fmt(c['claimed'].get('delta'))} | **{c['verdict']}** | {'; '.join(c['reasons'])} |"
        )
    lines += ["", "## Checks per claim", ""]
    for c in result["claims"]:
        lines += [
            f"### {c['id']}",
            "",
            "| check | status | detail | re-measured delta [CI] | p (Holm-consistent) | n | how |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, r in c["checks"].items():
            ev = r.get("evidence") or {}
            ci = ev.get("ci")
            delta = (
                "" if ev.get("delta") is None else _fmt(ev["delta"]) + (f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "")
            )
            p = (
                ""
                if ev.get("p") is None
                else f"{ev['p']:.3g} ({ev['p_holm']:.3g})"
                if ev.get("p_holm") is not None
                else f"{ev['p']:.3g}"
            )
            lines.append(
                f"| {name} | {r['status']} | {r['reason']} | {delta} | {p} | {ev.get('n') if ev.get('n') is not None else ''} "
                f"| {ev.get('how', '')} |"
            )
        if c.get("not_checked"):
            lines.append(f"\nNot checked: {', '.join(c['not_checked'])} (the claim cannot SURVIVE until they run).")
        lines.append("")
    png = plot(run, result)
    if png:
        lines += ["![claimed vs re-measured](deltas.png)", ""]
    run.write_text("falsify/report.md", "\n".join(lines) + "\n")
