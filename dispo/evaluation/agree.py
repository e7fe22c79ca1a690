"""Judge agreement: score reference-labelled responses with any judge and compare.

`dispo judge agree PATH... judge=NAME [tasks=[...]]` (library: `agree_paths`). A PATH is a
results JSONL in `dispo import` format (the paper's `*_step16_responses.jsonl` import
unchanged) or a run dir whose samples carry reference scores (`TASK:import` by default;
`--ref SOURCE` picks another scorer, e.g. `openai` to compare hf against an API judge).

Per set (each file / arm, plus `pooled` when there are several) and task:

* n (both labelled), the judge's and the reference's unscored counts;
* Cohen's kappa (sklearn; quadratic-weighted for the ordinal tasks mcas, rubric axes and
  mcas5 dimensions), raw agreement, each with a seeded percentile bootstrap CI
  (scipy.stats.bootstrap, items resampled in pairs), and the confusion matrix
  (rows = reference, columns = judge);
* for `verbal` with a reference `correct`: the paper's metrics under each label set,
  assertion asymmetry P(assert|wrong) - P(assert|correct) and hallucination rate
  P(assert|wrong), both with the reference correctness, with CIs, and whether the
  asymmetry's sign is preserved.

An undefined statistic (kappa when both raters used one label, an asymmetry with no wrong
items) is null with a reason, never 0. A task the judge cannot score on these items (e.g.
coverage without checklists) is reported as not checked, with the judge's reason.
"""

from __future__ import annotations

import hashlib
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from dispo.core.errors import InputFileError

REF_TASKS = ("verbal", "correct", "coverage", "mcas", "rubric", "mcas5")
ORDINAL = {"mcas", "rubric", "mcas5"}
BINARY_LABELS = {"verbal": ["assert", "hedge"], "correct": [False, True]}


@dataclass
class RefSet:
    """One set of responses with reference scores: a file or a run arm."""

    name: str
    samples: list[dict]
    gold: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- input


def load_sets(paths: list[str | Path], ref: str = "import") -> list[RefSet]:
    """Read each PATH (a results .jsonl or a dispo run dir) into reference sets."""
    from dispo.evaluation.importer import read_arm_jsonl

    sets: list[RefSet] = []
    for raw in paths:
        p = Path(raw)
        if p.is_file():
            if ref != "import":
                raise InputFileError(
                    f"{p}: a results file only carries imported labels; drop --ref {ref} or pass a run dir"
                )
            sets.append(RefSet(p.name.removesuffix(".jsonl"), read_arm_jsonl(p)))
        elif p.is_dir():
            from dispo.core.runs import Run
            from dispo.evaluation.rescore import domain_gold

            run = Run.open(p)
            gold = domain_gold(run.config)
            arms = [RefSet(f"{p.name}/{arm}", samples, gold) for arm, samples in run.iter_arms()]
            # a run mixes imported and generated arms: compare the arms that carry labels
            labelled = [a for a in arms if reference_tasks(a.samples, ref)]
            if not labelled:
                raise InputFileError(
                    f"{p}: no arm has reference labels (no {'/'.join(REF_TASKS)} scores from '{ref}'); "
                    f"dispo import a labelled file into it or pass --ref with the scorer to compare against"
                )
            sets += labelled
        else:
            raise InputFileError(f"{p}: no such file or run dir; pass a results .jsonl or a dispo run directory")
    for s in sets:
        if not reference_tasks(s.samples, ref):
            raise InputFileError(
                f"{s.name}: no reference labels (no {'/'.join(REF_TASKS)} scores from '{ref}'); "
                f"import a file with verbal/correct/coverage fields or pass --ref with the scorer to compare against"
            )
    return sets


def reference_tasks(samples: list[dict], ref: str) -> list[str]:
    have = {k.split(":", 1)[0] for s in samples for k in (s.get("scores") or {}) if k.endswith(f":{ref}")}
    return [t for t in REF_TASKS if t in have]


def _ref_value(sample: dict, task: str, ref: str) -> Any:
    s = (sample.get("scores") or {}).get(f"{task}:{ref}")
    if not s or s.get("status", "ok") != "ok" or s.get("value") is None:
        return None
    return s["value"]


# --------------------------------------------------------------------------- statistics


def _kappa(weighted: bool) -> Callable[[np.ndarray, np.ndarray], float]:
    from sklearn.metrics import cohen_kappa_score

    def k(a: np.ndarray, b: np.ndarray) -> float:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            return float(cohen_kappa_score(a, b, weights="quadratic" if weighted else None))

    return k


def _agree(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(a == b))


def _asym(correct: np.ndarray, asserted: np.ndarray) -> float:
    c, a = correct.astype(bool), asserted.astype(bool)
    if c.all() or (~c).all():
        return math.nan
    return float(a[~c].mean() - a[c].mean())


def _halluc(correct: np.ndarray, asserted: np.ndarray) -> float:
    c, a = correct.astype(bool), asserted.astype(bool)
    return float(a[~c].mean()) if (~c).any() else math.nan


def _num(x: float, nd: int = 4) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), nd)


def boot(data: tuple[np.ndarray, ...], stat: Callable[..., float], n_boot: int, seed: int) -> dict[str, Any]:
    """Point value and 95% percentile bootstrap CI (scipy.stats.bootstrap, paired resampling).
    Resamples where the statistic is undefined are dropped and counted."""
    from scipy.stats import bootstrap

    point = stat(*data)
    out: dict[str, Any] = {"value": _num(point)}
    if not math.isfinite(point):
        out["reason"] = "undefined on these items"
    if len(data[0]) < 2:
        out["ci"] = None
        out["ci_reason"] = "fewer than 2 items"
        return out
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        res = bootstrap(
            data,
            stat,
            paired=True,
            vectorized=False,
            n_resamples=n_boot,
            method="percentile",
            confidence_level=0.95,
            random_state=np.random.default_rng(seed),
        )
    dist = np.asarray(res.bootstrap_distribution, dtype=float)
    ok = dist[np.isfinite(dist)]
    if ok.size == 0:
        out["ci"] = None
        out["ci_reason"] = "undefined on every resample"
        return out
    lo, hi = np.percentile(ok, [2.5, 97.5])
    out["ci"] = [_num(lo), _num(hi)]
    if ok.size < dist.size:
        out["resamples_undefined"] = int(dist.size - ok.size)
    return out


# --------------------------------------------------------------------------- per task


def _judge_scores(judge, samples: list[dict], gold: dict, task: str) -> list[dict | None]:
    """The judge's Score json per sample for `task` (correct: derived from its coverage)."""
    from dispo.evaluation.evaluate import score_tasks
    from dispo.evaluation.rescore import sample_items

    items = sample_items(samples, gold or None)
    outs = [s.get("output", "") for s in samples]
    jt = "coverage" if task == "correct" else task
    judged = score_tasks(judge, items, outs, [jt])
    key = f"{jt}:{judge.name}"
    res = []
    for j in judged:
        s = j.get(key)
        if s is not None and task == "correct" and s.get("status", "ok") == "ok":
            s = {**s, "value": bool(s["value"] >= 0.5)}
        res.append(s)
    return res


def _pairs(ref_vals: list[Any], judge_scores: list[dict | None]) -> tuple[list[int], int, int, list[str]]:
    idx, n_ref_missing, n_judge_unscored, reasons = [], 0, 0, []
    for i, (r, j) in enumerate(zip(ref_vals, judge_scores)):
        if r is None:
            n_ref_missing += 1
            continue
        if j is None or j.get("status", "ok") != "ok" or j.get("value") is None:
            n_judge_unscored += 1
            reasons.append((j or {}).get("reason") or "the judge has no such task")
            continue
        idx.append(i)
    return idx, n_ref_missing, n_judge_unscored, reasons


def _label_stats(name: str, ref: list, jud: list, labels: list, weighted: bool, n_boot: int, seed: int) -> dict:
    code = {lab: i for i, lab in enumerate(labels)}
    a = np.array([code[x] for x in ref])
    b = np.array([code[x] for x in jud])
    cm = np.zeros((len(labels), len(labels)), dtype=int)
    for x, y in zip(a, b):
        cm[x, y] += 1
    kappa = boot((a, b), _kappa(weighted), n_boot, seed)
    if kappa["value"] is None:
        kappa["reason"] = (
            "undefined: a rater used one label only" if len(set(a)) < 2 or len(set(b)) < 2 else kappa.get("reason")
        )
    return {
        "what": name,
        "n": int(a.size),
        "kappa": kappa,
        "kappa_weights": "quadratic" if weighted else None,
        "raw_agreement": boot((a, b), _agree, n_boot, seed),
        "labels": [str(x).lower() for x in labels],
        "confusion": cm.tolist(),
        "share": {
            "reference": [_num(float(np.mean(a == k))) for k in range(len(labels))],
            "judge": [_num(float(np.mean(b == k))) for k in range(len(labels))],
        },
    }


def task_agreement(judge, rs: RefSet, task: str, ref: str, n_boot: int, seed: int) -> dict[str, Any]:
    samples = rs.samples
    ref_vals = [_ref_value(s, task, ref) for s in samples]
    if all(v is None for v in ref_vals):
        return {"checked": False, "reason": f"no reference {task} labels from '{ref}'"}
    jscores = _judge_scores(judge, samples, rs.gold, task)
    idx, n_ref_missing, n_unscored, reasons = _pairs(ref_vals, jscores)
    base = {"n_reference_missing": n_ref_missing, "n_judge_unscored": n_unscored}
    if not idx:
        why = max(set(reasons), key=reasons.count) if reasons else "nothing to compare"
        return {"checked": False, "reason": f"the judge scored none of the labelled items ({why})", **base}
    rv = [ref_vals[i] for i in idx]
    jv = [jscores[i]["value"] for i in idx]
    out: dict[str, Any] = {"checked": True, **base}
    # per item, so a threshold or a disagreement can be studied without re-judging
    out["items"] = [
        {
            "id": samples[i].get("id"),
            "reference": r,
            "judge": j,
            **{k: v for k, v in (jscores[i].get("detail") or {}).items() if k in ("p", "p_hedge")},
        }
        for i, r, j in zip(idx, rv, jv)
    ]
    if task in BINARY_LABELS:
        labels = BINARY_LABELS[task]
        norm = (lambda v: str(v).lower()) if task == "verbal" else bool
        out.update(_label_stats(task, [norm(x) for x in rv], [norm(x) for x in jv], labels, False, n_boot, seed))
        if task == "verbal":
            out["paper_metrics"] = _paper_metrics(samples, idx, rv, jv, ref, n_boot, seed)
    elif task == "coverage":
        a, b = np.array(rv, dtype=float), np.array(jv, dtype=float)
        out.update(
            {
                "what": "coverage",
                "n": int(a.size),
                "mean_abs_diff": boot((a, b), lambda x, y: float(np.mean(np.abs(x - y))), n_boot, seed),
                "correct_at_0.5": _label_stats(
                    "coverage>=0.5", list(a >= 0.5), list(b >= 0.5), [False, True], False, n_boot, seed
                ),
            }
        )
    elif task == "mcas":
        out.update(_label_stats("mcas", [int(x) for x in rv], [int(x) for x in jv], [0, 1, 2], True, n_boot, seed))
    else:  # rubric / mcas5: per axis, ordinal 1..5
        axes = sorted({k for v in rv for k in v} & {k for v in jv for k in v})
        out["axes"] = {
            ax: _label_stats(
                f"{task}.{ax}", [int(v[ax]) for v in rv], [int(v[ax]) for v in jv], [1, 2, 3, 4, 5], True, n_boot, seed
            )
            for ax in axes
        }
        out["n"] = len(idx)
    return out


def _paper_metrics(samples, idx, rv, jv, ref, n_boot, seed) -> dict[str, Any]:
    correct = [_ref_value(samples[i], "correct", ref) for i in idx]
    keep = [k for k, c in enumerate(correct) if c is not None]
    if not keep:
        return {"checked": False, "reason": f"no reference correct labels from '{ref}'"}
    c = np.array([bool(correct[k]) for k in keep])
    ar = np.array([str(rv[k]).lower() == "assert" for k in keep])
    aj = np.array([str(jv[k]).lower() == "assert" for k in keep])
    out: dict[str, Any] = {"checked": True, "n": int(c.size), "correctness": f"reference correct ('{ref}')"}
    for name, fn in (("assertion_asymmetry", _asym), ("hallucination_rate", _halluc)):
        r = boot((c, ar), fn, n_boot, seed)
        j = boot((c, aj), fn, n_boot, seed)
        d = boot((c, ar, aj), lambda cc, x, y, fn=fn: fn(cc, y) - fn(cc, x), n_boot, seed)
        out[name] = {"reference": r, "judge": j, "judge_minus_reference": d}
    rv_, jv_ = out["assertion_asymmetry"]["reference"]["value"], out["assertion_asymmetry"]["judge"]["value"]
    out["asymmetry_sign_preserved"] = (
        None if rv_ is None or jv_ is None or rv_ == 0 else bool(np.sign(rv_) == np.sign(jv_))
    )
    return out


# --------------------------------------------------------------------------- driver


def judge_tag(judge) -> str:
    desc = json.dumps(judge.describe(), sort_keys=True, default=str)
    return f"{judge.name}-{hashlib.sha256(desc.encode()).hexdigest()[:8]}"


def agree_sets(
    judge, sets: list[RefSet], tasks: list[str] | None = None, ref: str = "import", n_boot: int = 2000, seed: int = 0
) -> dict[str, Any]:
    """The agreement report (see module doc) as a JSON-ready dict."""
    groups = [(s.name, s) for s in sets]
    if len(sets) > 1:
        pooled = RefSet("pooled", [x for s in sets for x in s.samples], {k: v for s in sets for k, v in s.gold.items()})
        # ids repeat across files; pooled keeps every line (the judge sees each response once)
        groups.append(("pooled", pooled))
    report: dict[str, Any] = {
        "judge": judge.describe(),
        "reference": ref,
        "n_boot": n_boot,
        "seed": seed,
        "ci": "95% percentile bootstrap over items (scipy.stats.bootstrap, paired)",
        "sets": {},
    }
    for name, rs in groups:
        want = list(tasks) if tasks else reference_tasks(rs.samples, ref)
        report["sets"][name] = {t: task_agreement(judge, rs, t, ref, n_boot, seed) for t in want}
    return report


def _fmt(entry: dict | None) -> str:
    if not entry or entry.get("value") is None:
        return "undefined"
    ci = entry.get("ci")
    return f"{entry['value']:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else f"{entry['value']:+.3f}"


def markdown(report: dict[str, Any]) -> str:
    j = report["judge"]
    lines = [
        f"# Agreement: judge `{j.get('name')}` ({j.get('version')}) vs reference `{report['reference']}`",
        "",
        f"CIs: {report['ci']}, {report['n_boot']} resamples, seed {report['seed']}.",
        "",
        "| set | task | n | kappa [95% CI] | raw agreement | reference / judge share | note |",
        "|---|---|---|---|---|---|---|",
    ]
    metric_rows = []
    for sname, tasks in report["sets"].items():
        for task, t in tasks.items():
            if not t.get("checked"):
                lines.append(f"| {sname} | {task} | 0 | not checked | | | {t.get('reason')} |")
                continue
            entries = [(task, t)] if "kappa" in t else []
            if "axes" in t:
                entries = [(f"{task}.{ax}", e) for ax, e in t["axes"].items()]
            if "correct_at_0.5" in t:
                entries = [("coverage>=0.5", t["correct_at_0.5"])]
            for label, e in entries:
                share = ""
                if len(e["labels"]) == 2:
                    share = f"{e['share']['reference'][1]:.2f} / {e['share']['judge'][1]:.2f} ({e['labels'][1]})"
                note = "quadratic-weighted" if e.get("kappa_weights") else ""
                if t.get("n_judge_unscored"):
                    note += f" {t['n_judge_unscored']} unscored by the judge"
                lines.append(
                    f"| {sname} | {label} | {e['n']} | {_fmt(e['kappa'])} | {_fmt(e['raw_agreement'])} | {share} | {note.strip()} |"
                )
            pm = t.get("paper_metrics")
            if pm and pm.get("checked"):
                a, h = pm["assertion_asymmetry"], pm["hallucination_rate"]
                metric_rows.append(
                    f"| {sname} | {pm['n']} | {_fmt(a['reference'])} | {_fmt(a['judge'])} | "
                    f"{'yes' if pm['asymmetry_sign_preserved'] else 'no' if pm['asymmetry_sign_preserved'] is False else 'undefined'} | "
                    f"{_fmt(h['reference'])} | {_fmt(h['judge'])} |"
                )
    if metric_rows:
        lines += [
            "",
            "Paper metrics from `verbal` (reference correctness for both):",
            "",
            "| set | n | assertion asymmetry, reference | same, judge | sign kept | hallucination rate, reference | same, judge |",
            "|---|---|---|---|---|---|---|",
            *metric_rows,
        ]
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    from dispo.core.atomic import write_json, write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jp, mp = out / "agreement.json", out / "agreement.md"
    write_json(jp, report)
    write_text(mp, markdown(report))
    return jp, mp


def agree_paths(
    paths: list[str | Path],
    overrides: list[str] | None = None,
    ref: str = "import",
    out_dir: str | Path | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[dict, Path]:
    """Compose the judge from `overrides` (judge=..., judge.KEY=..., tasks=[...]), score every
    set, write agreement.json + agreement.md. Returns (report, out_dir)."""
    from dispo.core.config import compose_config
    from dispo.evaluation.eval_run import make_judge

    overrides = list(overrides or [])
    sets = load_sets(paths, ref=ref)  # bad input fails before any judge is loaded
    cfg = compose_config(overrides)
    explicit_tasks = any(o.split("=", 1)[0].lstrip("+") == "tasks" for o in overrides)
    tasks = list(cfg.get("tasks") or []) if explicit_tasks else None
    if tasks:
        bad = [t for t in tasks if t not in REF_TASKS]
        if bad:
            from dispo.core.errors import ConfigError

            raise ConfigError(f"tasks={bad}: agreement needs reference labels; use some of {', '.join(REF_TASKS)}")
    judge = make_judge(cfg)
    report = agree_sets(judge, sets, tasks=tasks, ref=ref, n_boot=n_boot, seed=seed)
    report["inputs"] = [str(Path(p)) for p in paths]
    if out_dir is None:
        first = Path(paths[0])
        root = first / "agreement" if first.is_dir() else Path("agreement")
        out_dir = root / judge_tag(judge)
    write_report(report, out_dir)
    return report, Path(out_dir)
