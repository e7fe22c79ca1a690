"""`tone` judge: an offline answer-level ASSERT/HEDGE classifier fitted to the paper's judge.

The paper's DeepSeek judge labels `verbal` by *dominant tone* ("a confident core with a
minor qualifier is ASSERT"). `lexical` calls any answer with one "might" a hedge, which
disagrees with it (kappa 0.18) and flips the assertion asymmetry's sign. `tone` reads the
answer-level features of `dispo.judges.hedge_features` (hedge density per marker family, the
share of hedged sentences, hedges in the opening and the closing) and applies a logistic
regression whose weights ship as a versioned data file (`dispo/data/judges/tone.<v>.json`,
made by `python -m dispo.judges.tone_fit`; nothing is trained at run time). Pure numpy +
regexes: 800 long answers take seconds on two cores.

Only `verbal` is the tone model. Every other task (coverage, rubric, mcas, mcas5 and the
marker tasks svr/hedge) is answered by the lexical judge's rules, with the scorer named
`tone.<task>` and the lexical version tag, so a run judged with `judge=tone` has every
task the default pipeline asks for. How far `tone` agrees with the paper's judge,
cross-model, is in docs/judges.md (`dispo judge agree`).
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from dispo.core.errors import ConfigError
from dispo.core.types import Score
from dispo.judges import JUDGES
from dispo.judges.base import Judge, JudgeRequest
from dispo.judges.hedge_features import FEATURE_VERSION, features

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "judges"
DEFAULT_WEIGHTS = "v1"
# The model's inputs. Frequency words ("often", "usually") and assertive framing are left
# out: in the released labels they do not separate the classes in either model.
FEATURES = (
    "listed.density",
    "limits.density",
    "contingent.density",
    "hedged_sentence_share",
    "listed.opening",
    "contingent.opening",
    "limits.opening",
    "listed.closing",
    "limits.closing",
    "contingent.closing",
)


def feature_matrix(texts: list[str]) -> np.ndarray:
    rows = []
    for t in texts:
        f = features(t)
        rows.append([f[n] for n in FEATURES])
    return np.asarray(rows, dtype=float).reshape(len(texts), len(FEATURES))


def weights_path(name: str) -> Path:
    """`v1` -> the shipped dispo/data/judges/tone.v1.json; a path to a .json is used as is."""
    p = Path(name)
    if p.suffix == ".json":
        return p
    return DATA_DIR / f"tone.{name}.json"


@lru_cache(maxsize=8)
def load_weights(name: str) -> dict[str, Any]:
    p = weights_path(name)
    if not p.is_file():
        shipped = sorted(x.name[len("tone.") : -len(".json")] for x in DATA_DIR.glob("tone.*.json"))
        raise ConfigError(
            f"judge.weights={name}: no weights file {p}; shipped: {', '.join(shipped) or 'none'} "
            "(or pass a .json made by python -m dispo.judges.tone_fit)"
        )
    raw = p.read_bytes()
    try:
        w = json.loads(raw)
        names, coef = list(w["features"]), list(w["coef"])
        ok = len(names) == len(coef) == len(w["mean"]) == len(w["scale"])
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise ConfigError(f"judge.weights={name}: {p} is not a tone weights file (features/mean/scale/coef)")
    if w.get("feature_version") != FEATURE_VERSION or names != list(FEATURES):
        raise ConfigError(
            f"judge.weights={name}: fitted for features {w.get('feature_version')} "
            f"{names}, this dispo computes {FEATURE_VERSION}; refit with python -m dispo.judges.tone_fit"
        )
    w["sha12"] = hashlib.sha256(raw).hexdigest()[:12]
    return w


@JUDGES.register("tone")
class ToneJudge(Judge):
    """Dominant-tone ASSERT/HEDGE from answer-level hedge features; other tasks via lexical rules."""

    name = "tone"

    def __init__(self, weights: str = DEFAULT_WEIGHTS, threshold: float | None = None, prompt_version: str = "v1"):
        from dispo.judges.lexical import LexicalJudge

        self.weights_name = str(weights)
        self.w = load_weights(self.weights_name)
        self.threshold = float(self.w.get("threshold", 0.5) if threshold is None else threshold)
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"judge.threshold={threshold}: must be a probability strictly between 0 and 1")
        self._lex = LexicalJudge(prompt_version=prompt_version)
        self._mean = np.asarray(self.w["mean"], dtype=float)
        self._scale = np.where(
            np.asarray(self.w["scale"], dtype=float) == 0, 1.0, np.asarray(self.w["scale"], dtype=float)
        )
        self._coef = np.asarray(self.w["coef"], dtype=float)
        self.version = f"tone-{self.weights_name}-{self.w['sha12']}"

    def hedge_probability(self, texts: list[str]) -> np.ndarray:
        """P(HEDGE) per answer under the fitted logistic model."""
        if not texts:
            return np.zeros(0)
        z = ((feature_matrix(texts) - self._mean) / self._scale) @ self._coef + float(self.w["intercept"])
        return 1.0 / (1.0 + np.exp(-z))

    def verbal(self, reqs: list[JudgeRequest]) -> list[Score]:
        p = self.hedge_probability([r.response or "" for r in reqs])
        out = []
        for r, ph in zip(reqs, p):
            if not (r.response or "").strip():
                out.append(Score.unscored("tone.verbal", f"verbal-{self.version}", "empty response"))
                continue
            label = "hedge" if ph >= self.threshold else "assert"
            out.append(
                Score(
                    scorer="tone.verbal",
                    version=f"verbal-{self.version}",
                    value=label,
                    detail={"p_hedge": round(float(ph), 4), "threshold": self.threshold},
                )
            )
        return out

    def _via_lexical(self, task: str, reqs: list[JudgeRequest]) -> list[Score]:
        out = []
        for s in getattr(self._lex, task)(reqs):
            s.scorer = f"tone.{task}"
            out.append(s)
        return out

    def coverage(self, reqs):
        return self._via_lexical("coverage", reqs)

    def rubric(self, reqs):
        return self._via_lexical("rubric", reqs)

    def mcas(self, reqs):
        return self._via_lexical("mcas", reqs)

    def mcas5(self, reqs):
        return self._via_lexical("mcas5", reqs)

    def svr(self, reqs):
        return self._via_lexical("svr", reqs)

    def hedge(self, reqs):
        return self._via_lexical("hedge", reqs)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "model": None,
            "temperature": None,
            "weights": {
                "name": self.weights_name,
                "sha12": self.w["sha12"],
                "model": self.w.get("model"),
                "fitted_on": [s.get("file") for s in self.w.get("fitted_on", [])],
            },
            "threshold": self.threshold,
            "features": FEATURE_VERSION,
            "prompts": {"markers": {"version": "v1"}},
        }
