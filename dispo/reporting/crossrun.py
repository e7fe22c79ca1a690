"""`dispo report RUN... [--out DIR]`: many runs (or sweep dirs) -> the paper's tables and figures.

Inputs: run dirs, sweep dirs (their jobs' run dirs, via sweep.json) or a directory of runs.
Output dir (default `<runs root>/report_<time>/`):

    report.md                  every table below as markdown, figures linked
    runs.csv                   one row per run: id, command, arc, model, domain, status
    metrics.csv                every run x arm x metric: value [CI], n
    arc1_summary.csv           Arc 1: per model x domain x metric, base vs student, delta [CI], p
    arc2_sweep.csv             Arc 2: per run x lambda x metric, value [CI], delta vs lambda 1.0
    arc3_axes.csv              Arc 3: per run x step x axis x C, CV AUC, fresh AUC, asymmetry, mode
    failure_modes.csv          Arc 3: model, train/fresh positives, AUC CV vs fresh, verdict
    cross_arc.csv              one row per claim: arc, model, domain, metric, claimed delta,
                               falsify verdict (when falsify/falsify.json exists)
    figures/claimed_vs_remeasured.png, figures/auc_collapse.png, figures/heads_<run>.png

Every number is read from the runs' results.json / falsify.json as written; nothing is
recomputed here. Missing parts (no falsify, no arc3 steps) leave cells empty, never fail.
"""

from __future__ import annotations

import datetime as _dt
import json
import shutil
from pathlib import Path
from typing import Any

from dispo.core import atomic
from dispo.core.errors import DispoError

TABLES = ("runs", "metrics", "arc1_summary", "arc2_sweep", "arc3_axes", "failure_modes", "cross_arc")


# --------------------------------------------------------------------------- inputs


def _is_run(p: Path) -> bool:
    return (p / "manifest.json").exists() and (p / "config.yaml").exists()


def resolve_runs(paths: list[Path]) -> list[Path]:
    """Run dirs from run dirs, sweep dirs and directories of runs (deduplicated, in order)."""
    from dispo.sweep import SWEEP_FILE, sweep_runs

    if not paths:
        raise DispoError("no runs given; pass run dirs or a sweep dir, e.g. dispo report runs/sweep_*")
    out: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise DispoError(f"{p} does not exist; pass run dirs (runs/<id>) or sweep dirs (runs/sweep_*)")
        if not p.is_dir():
            raise DispoError(f"{p} is not a directory; pass run dirs or sweep dirs")
        if _is_run(p):
            found = [p]
        elif (p / SWEEP_FILE).exists():
            found = sweep_runs(p)
            if not found:
                raise DispoError(f"sweep {p} has no finished run dirs yet; run it (or --resume it) first")
        else:
            found = sorted(c for c in p.iterdir() if c.is_dir() and _is_run(c))
            for s in sorted(c for c in p.iterdir() if c.is_dir() and (c / SWEEP_FILE).exists()):
                found += [r for r in sweep_runs(s) if r not in found]
            if not found:
                raise DispoError(
                    f"{p} is neither a run dir (no manifest.json) nor a sweep dir (no {SWEEP_FILE}) and holds no runs"
                )
        for r in found:
            r = r.resolve()
            if r not in out:
                out.append(r)
    return out


def _read_json(p: Path) -> Any:
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DispoError(f"{p} is corrupt ({type(e).__name__}); restore it or leave that run out") from None


class _RunInfo:
    def __init__(self, path: Path):
        import yaml

        self.dir = path
        self.manifest = _read_json(path / "manifest.json") or {}
        try:
            self.config = yaml.safe_load((path / "config.yaml").read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            self.config = {}
        self.results = _read_json(path / "results.json") or {}
        self.falsify = _read_json(path / "falsify" / "falsify.json")
        if not isinstance(self.results, dict):
            raise DispoError(f"{path}/results.json is not a JSON object; restore it or leave that run out")

    @property
    def id(self) -> str:
        return self.dir.name

    @property
    def command(self) -> str:
        return str(self.manifest.get("command") or "")

    @property
    def arc(self) -> str:
        for a in ("arc1", "arc2", "arc3"):
            if a in self.results or self.command in (f"train-{a}", f"train {a}"):
                return a
        name = (self.config.get("arc") or {}).get("name") if isinstance(self.config.get("arc"), dict) else None
        if name and name != "none" and self.command.startswith("train"):
            return str(name)
        return self.command or "eval"

    @property
    def model(self) -> str:
        m = self.config.get("model")
        return str((m or {}).get("name") if isinstance(m, dict) else (m or self.manifest.get("model") or ""))

    @property
    def domain(self) -> str:
        d = self.config.get("domain")
        return str((d or {}).get("name") if isinstance(d, dict) else (d or ""))

    def metric(self, arm: str, name: str) -> dict:
        v = ((self.results.get("metrics") or {}).get(arm) or {}).get(name)
        return v if isinstance(v, dict) else {}


def _ci(x: Any) -> tuple[Any, Any]:
    if isinstance(x, (list, tuple)) and len(x) == 2:
        return x[0], x[1]
    return None, None


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


# --------------------------------------------------------------------------- tables


def runs_rows(runs: list[_RunInfo]) -> list[dict]:
    return [
        {
            "run": r.id,
            "command": r.command,
            "arc": r.arc,
            "model": r.model,
            "domain": r.domain,
            "status": r.manifest.get("status"),
            "n_claims": len(r.results.get("claims") or []),
            "falsified": r.falsify is not None,
        }
        for r in runs
    ]


def metrics_rows(runs: list[_RunInfo]) -> list[dict]:
    """Every run x arm x metric with a value (eval sweeps: the model x domain grid)."""
    rows = []
    for r in runs:
        for arm, ms in (r.results.get("metrics") or {}).items():
            for name, v in (ms or {}).items():
                if not isinstance(v, dict) or "value" not in v:
                    continue
                lo, hi = _ci(v.get("ci"))
                rows.append(
                    {
                        "run": r.id,
                        "arc": r.arc,
                        "model": r.model,
                        "domain": r.domain,
                        "arm": arm,
                        "metric": name,
                        "value": _num(v.get("value")),
                        "ci_lo": lo,
                        "ci_hi": hi,
                        "n": v.get("n"),
                    }
                )
    return rows


def arc1_rows(runs: list[_RunInfo]) -> list[dict]:
    rows = []
    for r in runs:
        if r.arc != "arc1":
            continue
        groups = r.results.get("claim_groups") or {}
        group_of = {m: g for g, ms in groups.items() if isinstance(ms, list) for m in ms}
        for c in r.results.get("claims") or []:
            if c.get("kind") == "probe":
                continue
            base, arm, metric = c.get("baseline") or "base", c.get("arm") or "student", c.get("metric")
            bm, tm = r.metric(base, metric), r.metric(arm, metric)
            blo, bhi = _ci(bm.get("ci"))
            tlo, thi = _ci(tm.get("ci"))
            dlo, dhi = _ci(c.get("ci"))
            rows.append(
                {
                    "run": r.id,
                    "model": r.model,
                    "domain": r.domain,
                    "group": group_of.get(metric, ""),
                    "metric": metric,
                    "baseline": base,
                    "arm": arm,
                    "base": _num(bm.get("value", c.get("base"))),
                    "base_ci_lo": blo,
                    "base_ci_hi": bhi,
                    "student": _num(tm.get("value", c.get("treat"))),
                    "student_ci_lo": tlo,
                    "student_ci_hi": thi,
                    "delta": _num(c.get("delta")),
                    "delta_ci_lo": dlo,
                    "delta_ci_hi": dhi,
                    "p_holm": _num(c.get("p_holm", c.get("p"))),
                    "significant": c.get("significant"),
                    "n": bm.get("n"),
                }
            )
    return rows


def _lambda_of(arm: str) -> float | None:
    if arm.startswith("lam"):
        try:
            return float(arm[3:])
        except ValueError:
            return None
    return None


def arc2_rows(runs: list[_RunInfo]) -> list[dict]:
    rows = []
    for r in runs:
        if r.arc != "arc2":
            continue
        a2 = r.results.get("arc2") or {}
        metrics = r.results.get("metrics") or {}
        wanted = [m for m in [a2.get("disposition_metric"), *(a2.get("content_metrics") or [])] if m]
        claims = {(c.get("arm"), c.get("metric")): c for c in r.results.get("claims") or []}
        lams = a2.get("lambdas") or sorted((x for x in map(_lambda_of, metrics) if x is not None), reverse=True)
        for lam in lams:
            arm = f"lam{float(lam)}"
            m_arm = metrics.get(arm) or {}
            names = wanted or [k for k, v in m_arm.items() if isinstance(v, dict) and "value" in v]
            for metric in names:
                v = m_arm.get(metric) or {}
                c = claims.get((arm, metric)) or {}
                lo, hi = _ci(v.get("ci"))
                dlo, dhi = _ci(c.get("ci"))
                rows.append(
                    {
                        "run": r.id,
                        "model": r.model,
                        "domain": r.domain,
                        "disposition": a2.get("disposition"),
                        "method": a2.get("method"),
                        "top_k": a2.get("top_k"),
                        "lambda": float(lam),
                        "metric": metric,
                        "role": "disposition" if metric == a2.get("disposition_metric") else "content",
                        "value": _num(v.get("value")),
                        "ci_lo": lo,
                        "ci_hi": hi,
                        "delta_vs_1.0": _num(c.get("delta")) if c else (0.0 if float(lam) == 1.0 and v else None),
                        "delta_ci_lo": dlo,
                        "delta_ci_hi": dhi,
                        "p_holm": _num(c.get("p_holm")),
                        "best": a2.get("best_lambda") is not None and float(lam) == float(a2.get("best_lambda")),
                    }
                )
    return rows


def arc3_axis_rows(runs: list[_RunInfo]) -> list[dict]:
    rows = []
    for r in runs:
        if r.arc != "arc3":
            continue
        steps = (r.results.get("arc3") or {}).get("steps") or {}
        for name, st in steps.items():
            if not isinstance(st, dict):
                continue
            for row in st.get("rows") or []:
                cv, fr = row.get("cv") or {}, row.get("fresh") or {}
                rows.append(
                    {
                        "run": r.id,
                        "model": r.model,
                        "step": name,
                        "axis": row.get("axis") or "correct",
                        "C": row.get("C"),
                        "cv_auc": _num(cv.get("auc")),
                        "fresh_auc": _num(fr.get("auc")),
                        "fresh_asymmetry": _num((fr.get("balanced") or {}).get("asymmetry")),
                        "fresh_n_pos": fr.get("n_pos"),
                        "fresh_n": fr.get("n"),
                        "mode": row.get("mode"),
                        "status": row.get("status"),
                    }
                )
    return rows


def _train_positives(r: _RunInfo) -> tuple[Any, Any]:
    a3 = r.results.get("arc3") or {}
    rel = (a3.get("features") or {}).get("train")
    for st in (r.manifest.get("stages") or {}).values():
        if isinstance(st, dict) and rel and st.get("path") == rel and "n_pos" in st:
            return st.get("n_pos"), st.get("n")
    if rel and (r.dir / rel).exists():
        try:
            import numpy as np

            with np.load(r.dir / rel, allow_pickle=False) as z:
                y = np.asarray(z["y"])
                y = y[y >= 0]
                return int(y.sum()), int(len(y))
        except Exception:  # noqa: BLE001 - a broken npz leaves the cell empty
            pass
    return None, None


def failure_rows(runs: list[_RunInfo]) -> list[dict]:
    rows = []
    for r in runs:
        if r.arc != "arc3":
            continue
        a3 = r.results.get("arc3") or {}
        steps = a3.get("steps") or {}
        tp, tn = _train_positives(r)
        fresh = steps.get("step2_fresh") or {}
        cv_by_c = {
            row.get("C"): (row.get("cv") or {}).get("auc") for row in (steps.get("step1_cv") or {}).get("rows") or []
        }
        for row in fresh.get("rows") or [{}]:
            fr = row.get("fresh") or {}
            cv_auc = cv_by_c.get(row.get("C"), (row.get("cv") or {}).get("auc"))
            rows.append(
                {
                    "run": r.id,
                    "model": r.model,
                    "C": row.get("C"),
                    "train_positives": tp,
                    "train_n": tn,
                    "fresh_positives": fr.get("n_pos"),
                    "fresh_n": fr.get("n"),
                    "auc_cv": _num(cv_auc),
                    "auc_fresh": _num(fr.get("auc")),
                    "auc_drop": (_num(cv_auc) - _num(fr.get("auc")))
                    if _num(cv_auc) is not None and _num(fr.get("auc")) is not None
                    else None,
                    "verdict": row.get("mode") or a3.get("failure_mode"),
                }
            )
    return rows


def _worst_remeasured(fc: dict) -> tuple[Any, Any]:
    """(check, delta) of the re-measurement furthest from the claim, for the table."""
    claimed = _num((fc.get("claimed") or {}).get("delta"))
    best = (None, None)
    for name, ch in (fc.get("checks") or {}).items():
        d = _num(((ch or {}).get("remeasured") or {}).get("delta"))
        if d is None:
            continue
        if best[1] is None or (claimed is not None and abs(d - claimed) > abs(best[1] - claimed)):
            best = (name, d)
    return best


def cross_rows(runs: list[_RunInfo]) -> list[dict]:
    from dispo.reporting.report import claim_id

    rows = []
    for r in runs:
        fal = {c.get("id"): c for c in (r.falsify or {}).get("claims") or [] if isinstance(c, dict)}
        for c in r.results.get("claims") or []:
            cid = claim_id(c)
            fc = fal.get(cid) or {}
            lo, hi = _ci(c.get("ci"))
            check, red = _worst_remeasured(fc) if fc else (None, None)
            rows.append(
                {
                    "run": r.id,
                    "arc": c.get("arc") or r.arc,
                    "model": r.model,
                    "domain": r.domain,
                    "claim": cid,
                    "kind": c.get("kind", "paired"),
                    "metric": c.get("metric"),
                    "claimed_delta": _num(c.get("delta")) if c.get("kind") != "probe" else None,
                    "claimed_value": _num(c.get("value")) if c.get("kind") == "probe" else None,
                    "ci_lo": lo,
                    "ci_hi": hi,
                    "p_holm": _num(c.get("p_holm", c.get("p"))),
                    "significant": c.get("significant", c.get("holds")),
                    "verdict": fc.get("verdict") if r.falsify is not None else None,
                    "remeasured_check": check,
                    "remeasured_delta": red,
                    # the verdict's evidence, as falsify worded it (numbers and intervals included)
                    "verdict_reasons": "; ".join(map(str, fc.get("reasons") or [])) or None,
                }
            )
    return rows


# --------------------------------------------------------------------------- figures


def _plt():
    from dispo.core.plotting import pyplot

    plt = pyplot()

    return plt


def fig_claimed_vs_remeasured(runs: list[_RunInfo], path: Path) -> Path | None:
    pts: dict[str, list[tuple[float, float]]] = {}
    for r in runs:
        for fc in (r.falsify or {}).get("claims") or []:
            claimed = _num((fc.get("claimed") or {}).get("delta"))
            if claimed is None:
                continue
            for name, ch in (fc.get("checks") or {}).items():
                d = _num(((ch or {}).get("remeasured") or {}).get("delta"))
                if d is not None:
                    pts.setdefault(name, []).append((claimed, d))
    if not pts:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    allv = [v for ps in pts.values() for p in ps for v in p]
    lo, hi = min(allv + [0.0]), max(allv + [0.0])
    pad = (hi - lo) * 0.08 or 0.1
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="grey", ls="--", lw=1, label="re-measured = claimed")
    ax.axhline(0, color="black", lw=0.6)
    ax.axvline(0, color="black", lw=0.6)
    for name, ps in sorted(pts.items()):
        ax.scatter([p[0] for p in ps], [p[1] for p in ps], label=name, s=28, alpha=0.8)
    ax.set_xlabel("claimed delta (treatment - baseline)")
    ax.set_ylabel("re-measured delta")
    ax.set_title("dispo falsify: claimed vs re-measured")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def fig_auc_collapse(rows: list[dict], path: Path) -> Path | None:
    pts = [r for r in rows if r["auc_cv"] is not None or r["auc_fresh"] is not None]
    if not pts:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in pts:
        label = f"{r['model']} C={r['C']}" if r.get("C") is not None else str(r["model"])
        ax.plot([0, 1], [r["auc_cv"], r["auc_fresh"]], marker="o", label=label)
    ax.axhline(0.5, color="grey", ls=":", lw=1, label="chance")
    ax.axhline(0.65, color="tab:red", ls="--", lw=1, label="CV gate 0.65")
    ax.axhline(0.63, color="tab:orange", ls="--", lw=1, label="fresh gate 0.63")
    ax.set_xticks([0, 1], ["CV (train prompts)", "fresh prompts"])
    ax.set_xlim(-0.3, 1.3)
    ax.set_ylim(0, 1)
    ax.set_ylabel("probe AUC")
    ax.set_title("Arc 3: AUC collapse from CV to fresh prompts")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def fig_heads(r: _RunInfo, fig_dir: Path) -> Path | None:
    """arc2's own heat map when present; otherwise re-plotted from its head ranking CSV."""
    dest = fig_dir / f"heads_{r.id}.png"
    src = r.dir / "artifacts" / "head_heatmap.png"
    if src.exists():
        fig_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        return dest
    csv = r.dir / "artifacts" / "head_ranking.csv"
    if not csv.exists():
        return None
    import pandas as pd

    try:
        df = pd.read_csv(csv)
        piv = df.pivot_table(index="layer", columns="head", values="score", aggfunc="first")
    except Exception:  # noqa: BLE001 - an unexpected CSV leaves the figure out
        return None
    if piv.empty:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(4, 0.4 * piv.shape[1] + 2), max(3, 0.3 * piv.shape[0] + 1.5)))
    im = ax.imshow(piv.to_numpy(dtype=float), aspect="auto", cmap="viridis")
    ax.set_xticks(range(piv.shape[1]), [str(c) for c in piv.columns], fontsize=7)
    ax.set_yticks(range(piv.shape[0]), [str(i) for i in piv.index], fontsize=7)
    ax.set_xlabel("head")
    ax.set_ylabel("layer")
    ax.set_title(f"head attribution score: {r.model}", fontsize=9)
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(dest, dpi=110)
    plt.close(fig)
    return dest


# --------------------------------------------------------------------------- assembly


_TITLES = {
    "runs": "Runs",
    "metrics": "Metrics per run and arm (95% CI)",
    "arc1_summary": "Arc 1: distillation, base vs student (delta = student - base, 95% CI, Holm p)",
    "arc2_sweep": "Arc 2: head tempering sweep (per lambda; delta vs lambda 1.0)",
    "arc3_axes": "Arc 3: probe AUC per step / axis",
    "failure_modes": "Arc 3: two failure modes (train vs fresh positives, AUC CV vs fresh)",
    "cross_arc": "All claims across arcs, with the falsify verdict",
}


def _markdown(df) -> str:
    if df.empty:
        return "_none in these runs_"
    d = df.copy()
    for c in d.columns:
        if d[c].dtype.kind == "f":
            d[c] = d[c].map(lambda x: "" if x != x else f"{x:.4g}")
    d = d.fillna("")
    head = "| " + " | ".join(map(str, d.columns)) + " |"
    sep = "|" + "|".join("---" for _ in d.columns) + "|"
    body = ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in d.itertuples(index=False)]
    return "\n".join([head, sep, *body])


def build_tables(runs: list[Path]) -> dict[str, Any]:
    """{table name: pandas DataFrame} for these run dirs (no files written)."""
    import pandas as pd

    infos = [_RunInfo(p) for p in runs]
    builders = {
        "runs": runs_rows,
        "metrics": metrics_rows,
        "arc1_summary": arc1_rows,
        "arc2_sweep": arc2_rows,
        "arc3_axes": arc3_axis_rows,
        "failure_modes": failure_rows,
        "cross_arc": cross_rows,
    }
    return {name: pd.DataFrame(fn(infos)) for name, fn in builders.items()}


# the figures build_report writes: one written by an earlier report into the same --out and
# not by this one (another arc-2 run, a probe table now empty) would sit beside report.md
# looking current, so it is removed; any other file there is the user's and is left alone
_FIGURE_NAMES = ("claimed_vs_remeasured.png", "auc_collapse.png", "heads_*.png")


def _drop_stale_figures(fig_dir: Path, written: set[Path]) -> None:
    if not fig_dir.is_dir():
        return
    for pattern in _FIGURE_NAMES:
        for p in fig_dir.glob(pattern):
            if p not in written:
                p.unlink(missing_ok=True)


def build_report(runs: list[Path], out: Path | None = None) -> Path:
    """Write the tables (CSV + report.md) and figures for `runs`; returns the report.md path."""
    paths = resolve_runs(list(runs))
    infos = [_RunInfo(p) for p in paths]
    if out is None:
        from dispo.core.paths import runs_root

        out = runs_root() / f"report_{_dt.datetime.now().strftime('%Y%m%d_%H%M%S')}"
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DispoError(f"--out {out} is a file; pass a directory")
    out.mkdir(parents=True, exist_ok=True)
    tables = build_tables(paths)
    for name, df in tables.items():
        atomic.write_text(out / f"{name}.csv", df.to_csv(index=False))

    fig_dir = out / "figures"
    figs: list[tuple[str, Path]] = []
    p = fig_claimed_vs_remeasured(infos, fig_dir / "claimed_vs_remeasured.png")
    if p:
        figs.append(("Claimed vs re-measured deltas (dispo falsify)", p))
    p = fig_auc_collapse(
        tables["failure_modes"].to_dict("records") if not tables["failure_modes"].empty else [],
        fig_dir / "auc_collapse.png",
    )
    if p:
        figs.append(("Arc 3 AUC collapse", p))
    for r in infos:
        if r.arc == "arc2":
            p = fig_heads(r, fig_dir)
            if p:
                figs.append((f"Arc 2 head heat map: {r.model} ({r.id})", p))

    _drop_stale_figures(fig_dir, {fp for _, fp in figs})
    lines = [
        f"# dispo report: {len(paths)} run(s)",
        "",
        f"Generated {_dt.datetime.now().astimezone().isoformat(timespec='seconds')} from: "
        + ", ".join(f"`{p.name}`" for p in paths),
        "",
    ]
    for name in TABLES:
        lines += [f"## {_TITLES[name]}", "", f"CSV: `{name}.csv`", "", _markdown(tables[name]), ""]
    if figs:
        lines += ["## Figures", ""]
        for title, fp in figs:
            lines += [f"### {title}", "", f"![{title}]({fp.relative_to(out).as_posix()})", ""]
    atomic.write_text(out / "report.md", "\n".join(lines))
    return out / "report.md"
