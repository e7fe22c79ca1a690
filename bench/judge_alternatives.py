"""The offline verbal-judge approaches tried for `tone`, each measured cross-model.

    .venv/bin/python bench/judge_alternatives.py

Every approach is fitted (or has its threshold tuned) on one model's released responses and
scored on the other's, both directions, against the paper's DeepSeek `verbal` labels:
Cohen's kappa, the judge's hedge share, AUC of its score where it has one, and the
assertion asymmetry under its labels (reference correctness) vs the paper's. Writes
bench/results/judge_alternatives.json and prints a markdown table. The model-judge rows
(hf) come from bench/judge_agreement.py.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def _load(ref: Path, name: str):
    rows = [
        json.loads(x)
        for x in (ref / f"{name}_step16_responses.jsonl").read_text(encoding="utf-8").splitlines()
        if x.strip()
    ]
    return (
        [r["response"] for r in rows],
        np.array([r["verbal"] == "hedge" for r in rows]),
        np.array([bool(r["correct"]) for r in rows]),
    )


def _asym(hedge, correct):
    a = ~hedge
    return float(a[~correct].mean() - a[correct].mean())


def main() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import cohen_kappa_score, roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from dispo.judges.hedge_features import feature_names, features
    from dispo.judges.lexical import markers
    from dispo.judges.tone import FEATURES

    ref = next(
        Path(p)
        for p in (
            os.environ.get("DISPO_REFERENCE"),
            HERE.parent.parent / "shared/reference/tinman-dd",
            "/work/shared/reference/tinman-dd",
        )
        if p and Path(p).is_dir()
    )
    data = {"SmolLM2-1.7B": _load(ref, "smollm2-1.7b"), "Qwen3.5-0.8B": _load(ref, "qwen3.5-0.8b")}
    allf = feature_names()
    fm = {k: np.array([[features(t)[n] for n in allf] for t in v[0]]) for k, v in data.items()}

    def cols(names):
        return [allf.index(n) for n in names]

    def best_cut(score, y):
        return max(np.unique(score), key=lambda c: cohen_kappa_score(y, score >= c))

    def lr(C, cw, names):
        def fit(k):
            m = make_pipeline(StandardScaler(), LogisticRegression(C=C, class_weight=cw, max_iter=5000))
            m.fit(fm[k][:, cols(names)], data[k][1])
            return lambda kk: m.predict_proba(fm[kk][:, cols(names)])[:, 1], 0.5

        return fit

    def rule(name):
        def fit(k):
            s = lambda kk: fm[kk][:, allf.index(name)]  # noqa: E731
            return s, best_cut(s(k), data[k][1])

        return fit

    def tfidf(k):
        m = make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
            LogisticRegression(C=1.0, class_weight="balanced", max_iter=5000),
        ).fit(data[k][0], data[k][1])
        return (lambda kk: m.predict_proba(data[kk][0])[:, 1]), 0.5

    def lexical_count(k):
        s = lambda kk: np.array([len(markers("hedge", t)) for t in data[kk][0]], dtype=float)  # noqa: E731
        return s, best_cut(s(k), data[k][1])

    approaches = {
        "lexical marker count, cut tuned on the fit model": lexical_count,
        "hedged-sentence share (one feature), cut tuned on the fit model": rule("hedged_sentence_share"),
        "hedge density over all families, cut tuned on the fit model": rule("all.density"),
        "TF-IDF word 1-2-grams + LogisticRegression (balanced)": tfidf,
        "all hand features + LogisticRegression C=0.1 balanced": lr(0.1, "balanced", allf),
        "tone recipe: 10 features + LogisticRegression C=0.1 balanced (shipped)": lr(0.1, "balanced", list(FEATURES)),
        "tone features, LogisticRegression C=0.1 unweighted": lr(0.1, None, list(FEATURES)),
    }
    res = []
    for name, fit in approaches.items():
        row = {"approach": name}
        for a, b in (("SmolLM2-1.7B", "Qwen3.5-0.8B"), ("Qwen3.5-0.8B", "SmolLM2-1.7B")):
            score, cut = fit(a)
            s = score(b)
            pred = s >= cut
            y, c = data[b][1], data[b][2]
            row[f"{a} -> {b}"] = {
                "kappa": round(float(cohen_kappa_score(y, pred)), 3),
                "hedge_share": round(float(pred.mean()), 2),
                "auc": round(float(roc_auc_score(y, s)), 3),
                "asym_judge": round(_asym(pred, c), 3),
                "asym_paper": round(_asym(y, c), 3),
            }
        res.append(row)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "judge_alternatives.json").write_text(json.dumps(res, indent=1) + "\n")
    dirs = [k for k in res[0] if "->" in k]
    print("| approach | " + " | ".join(f"{d}: kappa / hedge share / AUC / asym (paper)" for d in dirs) + " |")
    print("|---|" + "---|" * len(dirs))
    for r in res:
        print(
            f"| {r['approach']} | "
            + " | ".join(
                f"{r[d]['kappa']:+.3f} / {r[d]['hedge_share']:.2f} / {r[d]['auc']:.3f} / {r[d]['asym_judge']:+.3f} ({r[d]['asym_paper']:+.3f})"
                for d in dirs
            )
            + " |"
        )


if __name__ == "__main__":
    sys.exit(main())
