"""Arm summaries with confidence intervals, and paired treatment-vs-baseline claims.

Input is a list of sample records (``samples/<arm>.jsonl`` lines, or
``dispo.evaluation.importer.read_arm_jsonl`` output). Scores live under ``record["scores"]`` keyed
``"<task>:<source>"``. Output is plain JSON (no numpy scalars; NaN written as None) for
``results.json``; ``dispo falsify`` calls the same functions on perturbed arms.

Metric names (``arm_metrics`` keys, ``per_item``/``paired_claim`` metric argument):

    accuracy | pass@1   correct score; named pass@1 when its source is "tests"   (binary)
    coverage            mean gold-checklist coverage                              (continuous)
    truncation_rate     share of finish_reason == "length"                        (binary)
    mean_tokens         mean n_tokens                                             (continuous)
    cells               confident/hedged x right/wrong counts (no CI)
    assertion_asymmetry, hallucination_rate, over_hedging
                        ratios over (correct, verbal) pairs                       (ratio)
    mcas                0..100; per item score * 50, so the mean is the MCAS      (continuous)
    mcas25              mean per-item sum of the five mcas5 dimensions (/25)      (continuous)
    rubric.<axis>       mean 1..5 rubric score                                    (continuous)
    rubric.<axis>.ge4   share of items scored >= 4 on that axis                   (binary)
    svr_rate, hedge_rate  share with the marker present                           (binary)

Source choice: when a task has scores from several sources, ``prefer`` ({task: source})
decides; otherwise the first present in ``SOURCE_ORDER`` (execution, imported labels,
API judge, local-model judge, the tone judge, lexical), then any other source alphabetically. The chosen
source is recorded with every metric. A sample without an ok, valid score from the chosen
source is *unscored* for that metric: excluded from value and CI, counted in n_unscored.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import numpy as np

from dispo.core.errors import ConfigError, RunDirError
from dispo.core.types import Claim, ScoreKey
from dispo.stats import metrics as M
from dispo.stats.catalog import AXES, CELL_METRICS, CORRECT_ALIASES, MCAS5_DIMS, known_metrics

SOURCE_ORDER = ("tests", "import", "openai", "hf", "tone", "lexical")
GENERATION = "generation"  # pseudo-source of finish_reason / n_tokens
# Generation diagnostics are reported per arm but are not claims by default.
NOT_CLAIMS = ("cells", "truncation_rate", "mean_tokens")

Sample = dict[str, Any]


# --------------------------------------------------------------------------- score access


def _split_key(key: str) -> tuple[str, str]:
    k = ScoreKey.parse(key)
    return k.task, k.source


def available_sources(samples: Iterable[Sample], task: str) -> list[str]:
    """Sources that scored `task` on at least one sample, in preference order."""
    found = {s for smp in samples for t, s in map(_split_key, smp.get("scores") or {}) if t == task}
    return sorted(found, key=lambda s: (SOURCE_ORDER.index(s) if s in SOURCE_ORDER else len(SOURCE_ORDER), s))


def pick_source(samples: list[Sample], task: str, prefer: dict[str, str] | None = None) -> str | None:
    """The source used for `task`: prefer[task] if given, else the first available in
    SOURCE_ORDER, else alphabetical; None when no sample has the task. A preferred source
    with no scores raises ConfigError."""
    found = available_sources(samples, task)
    if prefer and task in prefer:
        if prefer[task] not in found:
            raise ConfigError(
                f"prefer {task}={prefer[task]}: no {task} scores from that source; available: "
                f"{', '.join(found) or 'none'}"
            )
        return prefer[task]
    return found[0] if found else None


def _valid(task: str, v: Any) -> Any:
    """Normalised value of an ok score, or raise ValueError when it is not the task's type."""
    if task in ("correct", "svr", "hedge"):
        if isinstance(v, bool) or (isinstance(v, int) and v in (0, 1)):
            return bool(v)
    elif task == "coverage":
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0 <= v <= 1:
            return float(v)
    elif task == "verbal":
        if isinstance(v, str) and v.lower() in ("assert", "hedge"):
            return v.lower() == "assert"
    elif task == "mcas":
        if not isinstance(v, bool) and v in (0, 1, 2):
            return int(v)
    elif task in ("rubric", "mcas5"):
        if isinstance(v, dict):
            return v
    else:
        return v
    raise ValueError(v)


@dataclass
class _Series:
    """Per-item values of one metric for one arm."""

    values: dict[str, Any]  # id -> value (scored items only)
    n_unscored: int
    source: str
    kind: str  # binary | continuous | ratio
    scorers: list[str]  # distinct "scorer/version" strings behind the values


def _task_values(samples: list[Sample], task: str, source: str) -> tuple[dict[str, Any], int, list[str]]:
    key = ScoreKey.of(task, source)
    out: dict[str, Any] = {}
    unscored = 0
    scorers: set[str] = set()
    for smp in samples:
        sc = (smp.get("scores") or {}).get(key)
        if not sc or sc.get("status", "ok") != "ok" or sc.get("value") is None:
            unscored += 1
            continue
        try:
            out[str(smp["id"])] = _valid(task, sc["value"])
        except ValueError:
            raise RunDirError(
                f"sample {smp.get('id')!r}: score {key} has invalid value {sc['value']!r}; re-score this arm"
            ) from None
        scorers.add(f"{sc.get('scorer', source)}/{sc.get('version', '')}")
    return out, unscored, sorted(scorers)


def _sub_values(vals: dict[str, Any], n_unscored: int, extract: Callable[[Any], Any]) -> tuple[dict[str, Any], int]:
    """Apply extract to dict-valued scores; items where it yields None become unscored."""
    out = {}
    for k, v in vals.items():
        x = extract(v)
        if x is None:
            n_unscored += 1
        else:
            out[k] = x
    return out, n_unscored


def _score_1_5(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and 1 <= v <= 5 else None


def _mcas5_sum(d: dict[str, Any]) -> float | None:
    xs = [_score_1_5(d.get(dim)) for dim in MCAS5_DIMS]
    return None if any(x is None for x in xs) else float(sum(xs))  # type: ignore[arg-type]


def _series(samples: list[Sample], metric: str, prefer: dict[str, str] | None) -> _Series | None:
    """Per-item values of `metric`, or None when the samples carry nothing to compute it."""
    if metric in CORRECT_ALIASES:
        src = pick_source(samples, "correct", prefer)
        if src is None:
            return None
        vals, nu, sc = _task_values(samples, "correct", src)
        return _Series(vals, nu, src, "binary", sc)
    if metric in ("truncation_rate", "mean_tokens"):
        field = "finish_reason" if metric == "truncation_rate" else "n_tokens"
        vals = {}
        for smp in samples:
            v = smp.get(field)
            if v is None:
                continue
            vals[str(smp["id"])] = (v == "length") if metric == "truncation_rate" else float(v)
        if not vals:
            return None
        kind = "binary" if metric == "truncation_rate" else "continuous"
        return _Series(vals, len(samples) - len(vals), GENERATION, kind, [])
    if metric in CELL_METRICS or metric == "cells":
        cs, vs = pick_source(samples, "correct", prefer), pick_source(samples, "verbal", prefer)
        if cs is None or vs is None:
            return None
        c, _, c_sc = _task_values(samples, "correct", cs)
        v, _, v_sc = _task_values(samples, "verbal", vs)
        pairs = {i: (c[i], v[i]) for i in c if i in v}
        return _Series(pairs, len(samples) - len(pairs), f"correct={cs},verbal={vs}", "ratio", c_sc + v_sc)
    simple = {"coverage": ("coverage", "continuous"), "svr_rate": ("svr", "binary"), "hedge_rate": ("hedge", "binary")}
    if metric in simple:
        task, kind = simple[metric]
        src = pick_source(samples, task, prefer)
        if src is None:
            return None
        vals, nu, sc = _task_values(samples, task, src)
        return _Series({k: (float(x) if kind == "continuous" else x) for k, x in vals.items()}, nu, src, kind, sc)
    if metric == "mcas":
        src = pick_source(samples, "mcas", prefer)
        if src is None:
            return None
        vals, nu, sc = _task_values(samples, "mcas", src)
        # score * 50 so the per-item mean is MCAS on 0..100 (sum / 2N * 100).
        return _Series({k: x * 50.0 for k, x in vals.items()}, nu, src, "continuous", sc)
    if metric == "mcas25":
        src = pick_source(samples, "mcas5", prefer)
        if src is None:
            return None
        vals, nu, sc = _task_values(samples, "mcas5", src)
        vals, nu = _sub_values(vals, nu, _mcas5_sum)
        return _Series(vals, nu, src, "continuous", sc)
    if metric.startswith("rubric."):
        axis, _, suffix = metric[len("rubric.") :].partition(".")
        if axis not in AXES or suffix not in ("", "ge4"):
            raise ConfigError(
                f"unknown metric {metric!r}; rubric metrics are rubric.<axis>[.ge4], axes: {', '.join(AXES)}"
            )
        src = pick_source(samples, "rubric", prefer)
        if src is None:
            return None
        vals, nu, sc = _task_values(samples, "rubric", src)
        vals, nu = _sub_values(vals, nu, lambda d: _score_1_5(d.get(axis)))
        if suffix == "ge4":  # the paper binarises rubric axes at >= 4
            return _Series({k: x >= 4 for k, x in vals.items()}, nu, src, "binary", sc)
        return _Series(vals, nu, src, "continuous", sc)
    raise ConfigError(f"unknown metric {metric!r}; known: {', '.join(known_metrics())}")


# --------------------------------------------------------------------------- statistics


def _cells_of(pairs: np.ndarray) -> M.Cells:
    pairs = np.asarray(pairs, dtype=bool).reshape(-1, 2)
    return M.Cells.from_labels(pairs[:, 0], pairs[:, 1])


_CELL_FN = {
    "assertion_asymmetry": M.assertion_asymmetry,
    "hallucination_rate": M.hallucination_rate,
    "over_hedging": M.over_hedging,
}


def _stat_for(metric: str) -> Callable[[np.ndarray], float]:
    if metric in _CELL_FN:
        fn = _CELL_FN[metric]
        return lambda arr: fn(_cells_of(arr))
    return np.mean


def _array(series: _Series, ids: Iterable[str]) -> np.ndarray:
    vals = [series.values[i] for i in ids]
    if series.kind == "ratio":
        return np.asarray(vals, dtype=bool).reshape(-1, 2)
    return np.asarray(vals, dtype=float)


def _clean(x: Any) -> Any:
    """JSON-safe copy: numpy -> python, NaN/inf -> None, tuples -> lists."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, np.ndarray):
        return [_clean(v) for v in x.tolist()]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    return x


def default_alpha() -> float:
    """The project's one alpha (dispo/conf/falsify/default.yaml `alpha`): significance, Holm and the
    (1 - alpha) CIs of results.json all use it, so `dispo falsify` judges claims on the same scale."""
    global _ALPHA
    if _ALPHA is None:
        import yaml

        from dispo.core.paths import conf_dir

        _ALPHA = float(yaml.safe_load((conf_dir() / "falsify" / "default.yaml").read_text())["alpha"])
    return _ALPHA


_ALPHA: float | None = None


def undefined_reason(metric: str, base: np.ndarray | None, treat: np.ndarray | None) -> str:
    """Why a claim's statistic cannot be computed on these paired items (ratio metrics need
    items on both sides of their denominator)."""
    need = {"assertion_asymmetry": ("correct", "wrong"), "hallucination_rate": ("wrong",), "over_hedging": ("correct",)}
    if metric in need:
        for arm, arr in (("baseline", base), ("treatment", treat)):
            c = _cells_of(arr) if arr is not None else M.Cells(0, 0, 0, 0)
            counts = {"correct": c.cr + c.hr, "wrong": c.cw + c.hw}
            for cls in need[metric]:
                if counts[cls] == 0:
                    return f"{metric} is undefined: no {cls} item in {arm}"
    return f"{metric} is undefined on these items"


def _ci(lo_hi: tuple[float, float]) -> list[float] | None:
    lo, hi = lo_hi
    return None if math.isnan(lo) or math.isnan(hi) else [float(lo), float(hi)]


# --------------------------------------------------------------------------- public API


def per_item(samples: list[Sample], metric: str, prefer: dict[str, str] | None = None) -> dict[str, Any]:
    """{id: value} for the scored items of one metric. Binary metrics give bools,
    continuous ones floats (mcas: score * 50), ratio metrics (cells family) a
    (correct, asserted) tuple. Empty when the samples carry no scores for it; unknown
    metric names raise ConfigError."""
    s = _series(samples, metric, prefer)
    return {} if s is None else dict(s.values)


def arm_metrics(
    samples: list[Sample],
    prefer: dict[str, str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float | None = None,
) -> dict[str, dict[str, Any]]:
    """Every metric the samples' scores allow: {name: {"value", "ci", "n", "n_unscored",
    "source"}} (plus "scorers"). ci is a seeded (1 - alpha) percentile bootstrap over items
    (alpha: default_alpha()), or None (cells, or fewer than two items). n counts scored items. Accuracy is named "pass@1"
    when its source is "tests"."""
    alpha = default_alpha() if alpha is None else alpha
    out: dict[str, dict[str, Any]] = {}
    names = ["accuracy", "coverage", "truncation_rate", "mean_tokens", "cells", *CELL_METRICS, "mcas", "mcas25"]
    if pick_source(samples, "rubric", prefer) is not None:
        for a in AXES:
            names += [f"rubric.{a}", f"rubric.{a}.ge4"]
    names += ["svr_rate", "hedge_rate"]
    for name in names:
        s = _series(samples, name, prefer)
        if s is None:
            continue
        ids = list(s.values)
        arr = _array(s, ids)
        entry: dict[str, Any] = {"n": len(ids), "n_unscored": s.n_unscored, "source": s.source}
        if s.scorers:
            entry["scorers"] = s.scorers
        if name == "cells":
            entry.update(value=_cells_of(arr).as_dict(), ci=None)
        else:
            stat = _stat_for(name)
            value = float(stat(arr)) if len(ids) else math.nan
            ci = _ci(M.bootstrap_ci(arr, stat, n_boot=n_boot, seed=seed, alpha=alpha)) if len(ids) > 1 else None
            entry.update(value=value, ci=ci)
        if name == "accuracy" and s.source == "tests":
            name = "pass@1"
        out[name] = entry
    return _clean(out)


def _common_unscored_reason(samples: list[Sample], source: str) -> str | None:
    """The most frequent reason its scorer gave for leaving an item unscored (for `source`)."""
    reasons: Counter[str] = Counter()
    for smp in samples:
        for key, sc in (smp.get("scores") or {}).items():
            if ScoreKey.parse(key).source in source.split(",") or f"={ScoreKey.parse(key).source}" in source:
                if sc and sc.get("status", "ok") != "ok" and sc.get("reason"):
                    reasons[str(sc["reason"])] += 1
    return reasons.most_common(1)[0][0] if reasons else None


def _no_pairs_reason(sb: _Series, st: _Series, base: list[Sample], treat: list[Sample]) -> str:
    """Why a claim has no paired item, with the scorer's own reason when it left an arm unscored
    (e.g. lm-eval could not rebuild an imported task offline): "undefined" says what to fix."""
    for arm, s, samples in (("baseline", sb, base), ("treatment", st, treat)):
        if not s.values:
            why = _common_unscored_reason(samples, s.source)
            return f"no item scored in the {arm} arm" + (f": {why}" if why else "")
    return "no item id scored in both arms"


def paired_claim(
    base: list[Sample],
    treat: list[Sample],
    metric: str,
    prefer: dict[str, str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float | None = None,
) -> dict[str, Any]:
    """Treatment-vs-baseline claim on one metric, paired by item id.

    Only ids scored in both arms count (n_pairs; the rest in n_unpaired). Returns metric,
    base and treat values on the paired items, delta = treat - base, a paired bootstrap
    (1 - alpha) CI of the delta, p with its test (McNemar exact for binary per-item
    metrics, with flips {"up": false->true, "down": true->false}; paired permutation on the
    mean for continuous ones and on the ratio itself for the cells family), the source and
    scorer/version strings of each arm, and same_scorers (False flags the judge-asymmetry
    artefact: the two arms were scored differently).

    An undefined statistic (e.g. an assertion asymmetry with no correct item in an arm) has
    delta, ci and p None and "undefined" = the reason: it is never tested, never significant.
    """
    alpha = default_alpha() if alpha is None else alpha
    sb, st = _series(base, metric, prefer), _series(treat, metric, prefer)
    if sb is None or st is None:
        which = "baseline" if sb is None else "treatment"
        raise ConfigError(f"metric {metric!r}: the {which} arm has no scores for it; score both arms first")
    ids = sorted(set(sb.values) & set(st.values))
    n_unpaired = len(set(sb.values) ^ set(st.values))
    a, b = _array(sb, ids), _array(st, ids)
    stat = _stat_for(metric)
    out: dict[str, Any] = {
        "metric": metric,
        "n_pairs": len(ids),
        "n_unpaired": n_unpaired,
        "source": {"base": sb.source, "treat": st.source},
        "scorers": {"base": sb.scorers, "treat": st.scorers},
        "same_scorers": sb.scorers == st.scorers,
    }
    if not ids:
        out.update(
            base=None,
            treat=None,
            delta=None,
            ci=None,
            p=None,
            test=None,
            undefined=_no_pairs_reason(sb, st, base, treat),
        )
        return _clean(out)
    vb, vt = float(stat(a)), float(stat(b))
    if not (math.isfinite(vb) and math.isfinite(vt)):
        out.update(
            base=vb,
            treat=vt,
            delta=None,
            ci=None,
            p=None,
            test=None,
            undefined=undefined_reason(metric, a if sb.kind == "ratio" else None, b if sb.kind == "ratio" else None),
        )
        return _clean(out)
    ci = _ci(M.paired_bootstrap_ci(a, b, stat, n_boot=n_boot, seed=seed, alpha=alpha))
    if sb.kind == "binary":
        ab, bb = a.astype(bool), b.astype(bool)
        p, test = M.mcnemar_p(ab, bb), "mcnemar_exact"
        out["flips"] = {"up": int(np.sum(~ab & bb)), "down": int(np.sum(ab & ~bb))}
    elif sb.kind == "ratio":
        # Encode (correct, asserted) as one code per item so whole items swap arms.
        ca, cb = a[:, 0] * 2 + a[:, 1], b[:, 0] * 2 + b[:, 1]
        fn = _CELL_FN[metric]

        def code_stat(codes: np.ndarray) -> float:
            codes = np.asarray(codes, dtype=int)
            return fn(M.Cells.from_labels(codes >= 2, codes % 2 == 1))

        p = M.paired_permutation_p(ca, cb, seed=seed, stat=code_stat, n_resamples=1999)
        test = "paired_permutation"
    else:
        p, test = M.paired_permutation_p(a, b, seed=seed), "paired_permutation"
    out.update(base=vb, treat=vt, delta=vt - vb, ci=ci, p=p, test=test)
    return _clean(out)


def claims(
    arms: dict[str, list[Sample]],
    baseline: str,
    metrics: list[str] | None = None,
    prefer: dict[str, str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float | None = None,
) -> list[dict[str, Any]]:
    """Every (treatment arm, metric) paired claim against `baseline`, with Holm-corrected
    p-values across all of them ("p_holm") and "significant" = p_holm < alpha (alpha:
    default_alpha()). A claim whose statistic is undefined has p None: it is not one of the
    Holm family and is never significant.

    metrics=None claims every metric both arms can compute, except generation diagnostics
    and cells (truncation_rate, mean_tokens, cells); named metrics missing from an arm raise
    ConfigError. Each claim also carries "arm" and "baseline".
    """
    if baseline not in arms:
        raise ConfigError(f"baseline arm {baseline!r} not found; arms: {', '.join(arms) or 'none'}")
    alpha = default_alpha() if alpha is None else alpha
    out: list[dict[str, Any]] = []
    for arm, samples in arms.items():
        if arm == baseline:
            continue
        if metrics is None:
            have_b = arm_metric_names(arms[baseline], prefer)
            names = [m for m in arm_metric_names(samples, prefer) if m in have_b and m not in NOT_CLAIMS]
        else:
            names = list(metrics)
        for m in names:
            c = paired_claim(arms[baseline], samples, m, prefer=prefer, n_boot=n_boot, seed=seed, alpha=alpha)
            out.append(Claim.build(arm, baseline, c))
    adj = M.holm([math.nan if c.p is None else c.p for c in out])
    for c, ph in zip(out, adj):
        c.p_holm = None if math.isnan(ph) else ph
        c.significant = c.p_holm is not None and c.p_holm < alpha
    return [c.to_json() for c in out]


def arm_metric_names(samples: list[Sample], prefer: dict[str, str] | None = None) -> list[str]:
    """Names of the metrics these samples can compute ("pass@1" instead of "accuracy" when
    the correct source is "tests"; per_item / paired_claim accept either name)."""
    names = []
    for m in known_metrics():
        if m == "pass@1":
            continue
        s = _series(samples, m, prefer)
        if s is not None:
            names.append("pass@1" if m == "accuracy" and s.source == "tests" else m)
    return names


def repeated_claim(
    base_runs: list[list[Sample]],
    treat_runs: list[list[Sample]],
    metric: str,
    prefer: dict[str, str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float | None = None,
) -> dict[str, Any]:
    """Treatment-vs-baseline claim over repeated measures: base_runs[k] and treat_runs[k] are
    the two arms regenerated with the k-th seed. Seeds re-measure the same item, so they are
    not independent pairs: per-item values are averaged over seeds first (binary and
    continuous metrics; paired permutation test on the item means, paired scipy bootstrap CI),
    and ratio metrics (cells family) keep each item's seeds together as one cluster
    (permutation and bootstrap resample whole items). n_pairs counts items, n_repeats seeds.
    Items not scored under every seed in both arms are dropped (n_unpaired)."""
    from scipy.stats import bootstrap

    alpha = default_alpha() if alpha is None else alpha
    sb = [_series(r, metric, prefer) for r in base_runs]
    st = [_series(r, metric, prefer) for r in treat_runs]
    if not sb or any(s is None for s in sb + st):
        raise ConfigError(f"metric {metric!r}: a regenerated arm has no scores for it")
    all_ids = set().union(*(s.values for s in sb + st))
    ids = sorted(set.intersection(*(set(s.values) for s in sb + st)))
    kind = sb[0].kind
    out: dict[str, Any] = {
        "metric": metric,
        "n_pairs": len(ids),
        "n_unpaired": len(all_ids) - len(ids),
        "n_repeats": len(sb),
        "source": {"base": sb[0].source, "treat": st[0].source},
        "test": None,
        "aggregation": "cluster by item" if kind == "ratio" else "mean per item",
    }
    if not ids:
        out.update(
            base=None, treat=None, delta=None, ci=None, p=None, undefined="no item scored under every seed in both arms"
        )
        return _clean(out)
    if kind == "ratio":
        fn = _CELL_FN[metric]
        S = len(sb)

        def codes(series: list[_Series]) -> np.ndarray:
            # one integer per item holding its S (correct, asserted) codes, so items move whole
            return np.array(
                [
                    sum(int(s.values[i][0]) * 2 + int(s.values[i][1]) << (2 * k) for k, s in enumerate(series))
                    for i in ids
                ],
                dtype=np.int64,
            )

        def stat(c: np.ndarray) -> float:
            c = np.asarray(c, dtype=np.int64).reshape(-1)
            per = np.stack([(c >> (2 * k)) & 3 for k in range(S)], axis=1).reshape(-1)
            return fn(M.Cells.from_labels(per >= 2, per % 2 == 1))

        ca, cb = codes(sb), codes(st)
        vb, vt = stat(ca), stat(cb)
        if not (math.isfinite(vb) and math.isfinite(vt)):
            out.update(
                base=vb, treat=vt, delta=None, ci=None, p=None, undefined=f"{metric} is undefined on the pooled seeds"
            )
            return _clean(out)
        ci = _ci(M.paired_bootstrap_ci(ca, cb, stat, n_boot=n_boot, seed=seed, alpha=alpha))
        p = M.paired_permutation_p(ca, cb, seed=seed, stat=stat, n_resamples=1999)
        out.update(base=vb, treat=vt, delta=vt - vb, ci=ci, p=p, test="paired_permutation_cluster")
        return _clean(out)
    a = np.array([np.mean([float(s.values[i]) for s in sb]) for i in ids])
    b = np.array([np.mean([float(s.values[i]) for s in st]) for i in ids])
    vb, vt = float(a.mean()), float(b.mean())
    ci = None
    if len(ids) > 1 and not np.all(a == b):
        res = bootstrap(
            (a, b),
            lambda x, y, axis: np.mean(y, axis=axis) - np.mean(x, axis=axis),
            paired=True,
            vectorized=True,
            n_resamples=n_boot,
            confidence_level=1 - alpha,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
        ci = _ci((res.confidence_interval.low, res.confidence_interval.high))
    elif len(ids) > 1:
        ci = [0.0, 0.0]
    p = M.paired_permutation_p(a, b, seed=seed)
    out.update(base=vb, treat=vt, delta=vt - vb, ci=ci, p=p, test="paired_permutation_item_means")
    return _clean(out)
