"""Fit the `tone` judge's weights from reference-labelled responses (offline, once).

    python -m dispo.judges.tone_fit OUT.json FILE.jsonl [FILE.jsonl ...] [--C 0.1]

Each FILE carries `response` and the reference `verbal` label ("assert"/"hedge"), like the
paper's released `*_step16_responses.jsonl`. The model is StandardScaler + LogisticRegression
(class_weight="balanced") over `dispo.judges.tone.FEATURES`; the result is a small JSON file
(feature names, scaler mean/scale, coefficients, intercept, threshold, what it was fitted on)
that the judge reads with numpy alone. The judge never trains at run time.

The shipped files under `dispo/data/judges/` were made with:

    R=../shared/reference/tinman-dd
    python -m dispo.judges.tone_fit dispo/data/judges/tone.v1.json $R/smollm2-1.7b_step16_responses.jsonl $R/qwen3.5-0.8b_step16_responses.jsonl
    python -m dispo.judges.tone_fit dispo/data/judges/tone.v1-fit-smollm2.json $R/smollm2-1.7b_step16_responses.jsonl
    python -m dispo.judges.tone_fit dispo/data/judges/tone.v1-fit-qwen35.json $R/qwen3.5-0.8b_step16_responses.jsonl

The two single-model files exist for the cross-model check (fit on one model's responses,
score the other's with `judge=tone judge.weights=v1-fit-...`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

from dispo.core.atomic import write_text
from dispo.judges.agreement import read_responses

DEFAULT_C = 0.1


def fit(paths: list[Path], C: float = DEFAULT_C) -> dict:
    from sklearn import __version__ as skv
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from dispo.judges.hedge_features import FEATURE_VERSION
    from dispo.judges.tone import FEATURES, feature_matrix

    texts, labels, sources = [], [], []
    for p in paths:
        rows = read_responses(p)
        texts += [r["response"] for r in rows]
        labels += [str(r["verbal"]).lower() == "hedge" for r in rows]
        sources.append(
            {
                "file": p.name,
                "n": len(rows),
                "sha256": hashlib.sha256(p.read_bytes()).hexdigest()[:16],
                "hedge_share": round(sum(str(r["verbal"]).lower() == "hedge" for r in rows) / len(rows), 4),
            }
        )
    X, y = feature_matrix(texts), np.array(labels)
    scaler = StandardScaler().fit(X)
    lr = LogisticRegression(C=C, class_weight="balanced", max_iter=5000).fit(scaler.transform(X), y)
    return {
        "judge": "tone",
        "feature_version": FEATURE_VERSION,
        "features": list(FEATURES),
        "mean": scaler.mean_.round(8).tolist(),
        "scale": scaler.scale_.round(8).tolist(),
        "coef": lr.coef_[0].round(8).tolist(),
        "intercept": round(float(lr.intercept_[0]), 8),
        "threshold": 0.5,
        "model": f"StandardScaler + LogisticRegression(C={C}, class_weight='balanced') (sklearn {skv})",
        "fitted_on": sources,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dispo.judges.tone_fit")
    ap.add_argument("out")
    ap.add_argument("files", nargs="+")
    ap.add_argument("--C", type=float, default=DEFAULT_C)
    a = ap.parse_args(argv)
    w = fit([Path(f) for f in a.files], C=a.C)
    write_text(Path(a.out), json.dumps(w, indent=1) + "\n")
    print(f"wrote {a.out}: {len(w['features'])} features, fitted on {', '.join(s['file'] for s in w['fitted_on'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
