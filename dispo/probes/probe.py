"""Arc 3 probes: logistic probes on frozen features, the gate sweep, and the failure taxonomy.

Definitions (arXiv 2604.11867, Arc 3; reproduced exactly from the paper's artifact files):

* probe = ``make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))``; its
  ``predict_proba[:, 1]`` is P(correct).
* gate sweep over thr in 0.01, 0.02, ..., 0.99: the sidecar *asserts* when P(correct) >= thr;
  ``p_assert(c)`` = share of class c with P(correct) >= thr;
  ``asymmetry = p_assert(wrong) - p_assert(correct)`` (negative is good).
* balanced = the most negative asymmetry over thresholds with ``p_assert(correct) >= 0.70``.
  Ties: the *first* (lowest) threshold reaching the minimum wins (strict ``<`` while scanning
  upwards). On the reference data this gives the published thr (0.06 at C=1.0, 0.16 at C=0.1).
* CV: ``StratifiedKFold(k, shuffle=True, random_state=seed)``; AUC and the balanced asymmetry
  are computed on the pooled out-of-fold probabilities. k is lowered to the minority class
  count when that is smaller (recorded as ``k_used``).
* transfer: fit on all of train, score test.

Failure taxonomy (`classify`, applied to a held-out evaluation such as fresh prompts):

* ``capability-cliff``: positives collapse on the test set. Criteria: (test positives < 15
  OR test positive rate < 0.10) AND test positive rate < 0.5 x train positive rate. With so few
  positives p_assert(correct) moves in steps of 1/n_pos, so the asymmetry numbers are
  class-imbalance artefacts and are not evidence either way (SmolLM2-1.7B: 9/193 fresh
  positives vs 56/100 in train). Checked first: it overrides pass/fail.
* ``uniform-output``: class balance is fine (not a cliff, minority class >= 15 and >= 10%) but
  ``|AUC - 0.5| < 0.05``: correct and wrong answers look alike to the probe (Gemma).
* ``pass``: AUC >= the step's AUC bar AND balanced asymmetry <= its asymmetry bar AND each
  class has >= 15 items (``cliff_min_positives``): a bar cleared on fewer is not trusted.
* ``fail``: anything else (including no threshold keeping p_assert(correct) >= 0.70, and
  "passing" numbers on an underpowered minority class).

All thresholds are parameters (`Bars`, `Taxonomy`), set from ``dispo/conf/arc/arc3.yaml``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dispo.core.errors import InputFileError

THRESHOLDS = np.arange(1, 100) / 100.0  # 0.01 .. 0.99, each the double nearest the decimal
NAN = float("nan")


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class Bars:
    """A step's pass bars: AUC >= auc and balanced asymmetry <= asym."""

    auc: float
    asym: float


CV_BARS = Bars(auc=0.65, asym=-0.20)
FRESH_BARS = Bars(auc=0.63, asym=-0.15)


@dataclass(frozen=True)
class Taxonomy:
    """Thresholds of the failure taxonomy (see module docstring)."""

    cliff_min_positives: int = 15
    cliff_min_rate: float = 0.10
    cliff_rel_rate: float = 0.5
    uniform_auc_band: float = 0.05
    min_assert_correct: float = 0.70


# --------------------------------------------------------------------------- data


@dataclass
class ProbeData:
    X: np.ndarray
    y: np.ndarray
    coverage: np.ndarray | None = None
    ids: np.ndarray | None = None
    source: str = "<memory>"

    @property
    def n_pos(self) -> int:
        return int(self.y.sum())

    @property
    def pos_rate(self) -> float:
        return float(self.y.mean()) if self.y.size else NAN


def validate(X: Any, y: Any, source: str = "<memory>", need_two_classes: bool = True) -> ProbeData:
    """Check shapes and values; raise InputFileError naming the file and field."""
    try:
        Xa = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputFileError(f"{source}: field X is not numeric; save X as a float (n, d) array") from None
    if Xa.ndim != 2:
        raise InputFileError(f"{source}: field X has shape {Xa.shape}; it must be 2-D (n_items, n_features)")
    if Xa.shape[0] == 0 or Xa.shape[1] == 0:
        raise InputFileError(f"{source}: field X has shape {Xa.shape}; it needs at least one item and one feature")
    if not np.isfinite(Xa).all():
        bad = int((~np.isfinite(Xa)).any(axis=1).sum())
        raise InputFileError(f"{source}: field X has NaN/inf in {bad} row(s); drop or re-extract those items")
    ya = np.asarray(y)
    if ya.ndim != 1:
        raise InputFileError(f"{source}: field y has shape {ya.shape}; it must be 1-D (n_items,) of 0/1 labels")
    if ya.shape[0] != Xa.shape[0]:
        raise InputFileError(f"{source}: X has {Xa.shape[0]} rows but y has {ya.shape[0]} labels; they must match")
    try:
        yf = ya.astype(np.float64)
    except (TypeError, ValueError):
        raise InputFileError(f"{source}: field y is not numeric; use 0/1 labels") from None
    if not np.isfinite(yf).all() or not np.isin(yf, (0.0, 1.0)).all():
        raise InputFileError(
            f"{source}: field y must hold only 0/1 labels (found {sorted(set(np.unique(yf).tolist()))[:5]})"
        )
    yb = yf.astype(np.int64)
    if need_two_classes and len(np.unique(yb)) < 2:
        raise InputFileError(
            f"{source}: field y has a single class (all {int(yb[0])}); a probe needs correct and wrong items"
        )
    return ProbeData(X=Xa, y=yb, source=source)


def _fields(path: str | Path, *keys: str) -> dict[str, np.ndarray]:
    """A features .npz's arrays, with a one-line error naming any of `keys` it lacks."""
    from dispo.probes.features import load_npz

    arr = load_npz(path)
    for key in keys:
        if key not in arr:
            raise InputFileError(
                f"{path}: missing field '{key}' (has {', '.join(sorted(arr))}); save X (n, d) and y (n,)"
            )
    return arr


def class_counts(path: str | Path, y_key: str = "y") -> tuple[int, int]:
    """(positives, negatives) of a features file's labels, without `load`'s refusal of a one-class file."""
    y = np.asarray(_fields(path, y_key)[y_key], dtype=float).ravel()
    return int((y > 0).sum()), int((y <= 0).sum())


def load(path: str | Path, x_key: str = "X", y_key: str = "y") -> ProbeData:
    """Load and validate a features .npz (X, y, optional coverage and ids)."""
    arr = _fields(path, x_key, y_key)
    d = validate(arr[x_key], arr[y_key], source=str(path))
    if "coverage" in arr:
        d.coverage = np.asarray(arr["coverage"], dtype=np.float64)
    if "ids" in arr:
        d.ids = arr["ids"]
    return d


# --------------------------------------------------------------------------- probe and sweep


def fit_probe(X: np.ndarray, y: np.ndarray, C: float):
    """StandardScaler + LogisticRegression(C, max_iter=2000), fitted."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=float(C), max_iter=2000)).fit(X, y)


def gate_sweep(p_correct: np.ndarray, y: np.ndarray, thresholds: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per threshold: p_assert(correct), p_assert(wrong), asymmetry (nan where a class is empty)."""
    p = np.asarray(p_correct, dtype=np.float64).reshape(-1)
    yb = np.asarray(y).astype(bool).reshape(-1)
    thr = THRESHOLDS if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    asserted = p[None, :] >= thr[:, None]  # (n_thr, n)
    n_c, n_w = int(yb.sum()), int((~yb).sum())
    pc = asserted[:, yb].sum(axis=1) / n_c if n_c else np.full(thr.shape, NAN)
    pw = asserted[:, ~yb].sum(axis=1) / n_w if n_w else np.full(thr.shape, NAN)
    return {"thresholds": thr, "p_assert_correct": pc, "p_assert_wrong": pw, "asymmetry": pw - pc}


def balanced(sweep: dict[str, np.ndarray], min_assert_correct: float = 0.70) -> dict[str, float]:
    """Most negative asymmetry with p_assert(correct) >= min_assert_correct; first thr wins ties.

    Returns {asymmetry, thr, p_assert_correct, p_assert_wrong}; all nan when no threshold
    qualifies (e.g. no correct items)."""
    best: int | None = None
    for i, (a, pc) in enumerate(zip(sweep["asymmetry"], sweep["p_assert_correct"])):
        if not (np.isfinite(a) and pc >= min_assert_correct):
            continue
        if best is None or a < sweep["asymmetry"][best]:
            best = i
    if best is None:
        return {"asymmetry": NAN, "thr": NAN, "p_assert_correct": NAN, "p_assert_wrong": NAN}
    return {
        "asymmetry": float(sweep["asymmetry"][best]),
        "thr": float(sweep["thresholds"][best]),
        "p_assert_correct": float(sweep["p_assert_correct"][best]),
        "p_assert_wrong": float(sweep["p_assert_wrong"][best]),
    }


def at_threshold(p_correct: np.ndarray, y: np.ndarray, thr: float) -> dict[str, float]:
    """The gate's asymmetry at one fixed threshold (e.g. a thr chosen on train, applied to test)."""
    s = gate_sweep(p_correct, y, np.array([thr], dtype=np.float64))
    return {
        "asymmetry": float(s["asymmetry"][0]),
        "thr": float(thr),
        "p_assert_correct": float(s["p_assert_correct"][0]),
        "p_assert_wrong": float(s["p_assert_wrong"][0]),
    }


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    from dispo.stats.metrics import auc

    return auc(y, p)


def evaluate(p_correct: np.ndarray, y: np.ndarray, min_assert_correct: float = 0.70) -> dict[str, Any]:
    """AUC + balanced asymmetry of probabilities against labels."""
    bal = balanced(gate_sweep(p_correct, y), min_assert_correct)
    return {"auc": _auc(y, p_correct), "balanced": bal, "n": int(len(y)), "n_pos": int(np.sum(y))}


def cv_predict(X: np.ndarray, y: np.ndarray, C: float, k: int = 5, seed: int = 0) -> tuple[np.ndarray, int]:
    """Out-of-fold P(correct) from stratified k-fold (shuffled, fixed seed). Returns (p, k_used)."""
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(y).astype(int)
    minority = int(min(y.sum(), len(y) - y.sum()))
    k_used = min(int(k), minority)
    if k_used < 2:
        raise InputFileError(
            f"cross-validation needs at least 2 items of each class (have {int(y.sum())} correct, "
            f"{len(y) - int(y.sum())} wrong); use more items (raise limit)"
        )
    p = np.full(len(y), NAN)
    for tr, te in StratifiedKFold(n_splits=k_used, shuffle=True, random_state=seed).split(X, y):
        if len(np.unique(y[tr])) < 2:  # cannot happen with stratification, kept as a guard
            p[te] = float(y[tr].mean())
            continue
        p[te] = fit_probe(X[tr], y[tr], C).predict_proba(X[te])[:, 1]
    return p, k_used


def cross_validate(
    data: ProbeData, C: float, k: int = 5, seed: int = 0, min_assert_correct: float = 0.70
) -> dict[str, Any]:
    p, k_used = cv_predict(data.X, data.y, C, k, seed)
    out = evaluate(p, data.y, min_assert_correct)
    out.update({"k": int(k), "k_used": k_used, "seed": int(seed), "C": float(C), "p": p})
    return out


def transfer(train: ProbeData, test: ProbeData, C: float, min_assert_correct: float = 0.70) -> dict[str, Any]:
    """Fit on all of train, score test. Test may have a single class (AUC is then nan)."""
    model = fit_probe(train.X, train.y, C)
    if test.X.shape[1] != train.X.shape[1]:
        raise InputFileError(
            f"{test.source}: field X has {test.X.shape[1]} features but {train.source} has {train.X.shape[1]}; "
            f"extract both with the same model and layers"
        )
    p = model.predict_proba(test.X)[:, 1]
    out = evaluate(p, test.y, min_assert_correct)
    out.update({"C": float(C), "p": p, "model": model})
    return out


# --------------------------------------------------------------------------- verdicts


def passes(auc_value: float, asym: float, bars: Bars) -> bool:
    return bool(np.isfinite(auc_value) and np.isfinite(asym) and auc_value >= bars.auc and asym <= bars.asym)


def classify(
    test_y: np.ndarray,
    auc_value: float,
    asym: float,
    bars: Bars,
    train_y: np.ndarray | None = None,
    tax: Taxonomy = Taxonomy(),
) -> dict[str, Any]:
    """Name the outcome of one evaluation: capability-cliff | uniform-output | pass | fail.

    Returns {mode, reason, n_pos, n, pos_rate, train_pos_rate}. See the module docstring for the
    criteria. `train_y` None (CV on the train set itself) disables the capability-cliff test,
    which compares the test positive rate with the train one.
    """
    y = np.asarray(test_y).astype(int)
    n, n_pos = int(y.size), int(y.sum())
    rate = n_pos / n if n else NAN
    train_rate = float(np.mean(train_y)) if train_y is not None and len(train_y) else NAN
    info: dict[str, Any] = {
        "n": n,
        "n_pos": n_pos,
        "pos_rate": rate,
        "train_pos_rate": train_rate,
        "auc": auc_value,
        "asymmetry": asym,
        "bars": asdict(bars),
    }
    few = n_pos < tax.cliff_min_positives or rate < tax.cliff_min_rate
    collapsed = np.isfinite(train_rate) and rate < tax.cliff_rel_rate * train_rate
    if few and collapsed:
        info.update(
            mode="capability-cliff",
            reason=(
                f"positives collapse: {n_pos}/{n} ({rate:.1%}) vs {train_rate:.1%} in train; with "
                f"{n_pos} positives p_assert(correct) moves in steps of 1/{max(n_pos, 1)}, so the "
                f"asymmetry is a class-imbalance artefact"
            ),
        )
        return info
    minority = min(n_pos, n - n_pos)
    balanced_ok = minority >= tax.cliff_min_positives and minority / max(n, 1) >= tax.cliff_min_rate
    if balanced_ok and np.isfinite(auc_value) and abs(auc_value - 0.5) < tax.uniform_auc_band:
        info.update(
            mode="uniform-output",
            reason=(
                f"classes balanced ({n_pos}/{n} positive) but AUC {auc_value:.3f} is within "
                f"{tax.uniform_auc_band} of chance: correct and wrong answers look alike"
            ),
        )
        return info
    if passes(auc_value, asym, bars) and minority < tax.cliff_min_positives:
        info.update(
            mode="fail",
            reason=(
                f"AUC {auc_value:.3f} and asymmetry {asym:+.3f} clear the bars, but on only {minority} "
                f"{'correct' if n_pos <= n - n_pos else 'wrong'} item(s) (< {tax.cliff_min_positives}): too few to trust"
            ),
        )
        return info
    if passes(auc_value, asym, bars):
        info.update(mode="pass", reason=f"AUC {auc_value:.3f} >= {bars.auc} and asymmetry {asym:+.3f} <= {bars.asym}")
        return info
    why = []
    if not (np.isfinite(auc_value) and auc_value >= bars.auc):
        why.append(f"AUC {auc_value:.3f} < {bars.auc}")
    if not np.isfinite(asym):
        why.append("no threshold keeps p_assert(correct) >= the minimum")
    elif asym > bars.asym:
        why.append(f"asymmetry {asym:+.3f} > {bars.asym}")
    info.update(mode="fail", reason="; ".join(why))
    return info


# --------------------------------------------------------------------------- the probe command's core


def probe_report(
    train: ProbeData,
    test: ProbeData,
    Cs: list[float] = (1.0, 0.1),
    cv: int = 5,
    seed: int = 0,
    cv_bars: Bars = CV_BARS,
    test_bars: Bars = FRESH_BARS,
    tax: Taxonomy = Taxonomy(),
) -> dict[str, Any]:
    """CV on train and transfer to test for each C, with verdicts. JSON-ready (no arrays)."""
    rows = []
    for C in Cs:
        cvr = cross_validate(train, C, cv, seed, tax.min_assert_correct)
        tr = transfer(train, test, C, tax.min_assert_correct)
        rows.append(
            {
                "C": float(C),
                "cv": {
                    "auc": cvr["auc"],
                    "balanced": cvr["balanced"],
                    "k_used": cvr["k_used"],
                    "verdict": classify(train.y, cvr["auc"], cvr["balanced"]["asymmetry"], cv_bars, None, tax)["mode"],
                },
                "test": {"auc": tr["auc"], "balanced": tr["balanced"]},
                "verdict": classify(test.y, tr["auc"], tr["balanced"]["asymmetry"], test_bars, train.y, tax),
            }
        )
    return {
        "train": {"path": train.source, "n": int(len(train.y)), "n_pos": train.n_pos, "dim": int(train.X.shape[1])},
        "test": {"path": test.source, "n": int(len(test.y)), "n_pos": test.n_pos, "dim": int(test.X.shape[1])},
        "cv_folds": int(cv),
        "seed": int(seed),
        "bars": {"cv": asdict(cv_bars), "test": asdict(test_bars)},
        "taxonomy": asdict(tax),
        "results": rows,
    }


def jsonable(obj: Any) -> Any:
    """Floats nan/inf -> None, numpy scalars -> Python; drops arrays and fitted models."""
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items() if k not in ("p", "model")}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
