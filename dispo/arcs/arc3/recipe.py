"""Arc 3: a frozen-base probe of P(correct) and the hedge sidecar built on it (arXiv 2604.11867).

    dispo train arc3 model=smollm2-135m arc.preset=smoke

Stages (each recorded in the manifest and skipped on `--resume` once done):

  arm:<train_split>, arm:<test_split>   base responses on chef eval / fresh (evaluate_arm: content
                                        coverage -> correct, verbal, rubric when the judge has it)
  features:<split>                      one batched frozen forward pass over prompt + response:
                                        artifacts/features_<split>.npz (X = h_last or mean of
                                        the last N layers per arc.layers, X_pool per arc.pool, y,
                                        coverage, ids, scalar features, axis_<axis> labels)
  step1_cv .. step5_second_model        the five-step check, each with its bars (dispo.probes.probe):
                                        1 CV on train; 2 transfer to fresh prompts; 3 per rubric
                                        axis (label = axis >= axis_min); 4 multi-layer pooling;
                                        5 a second model family (only with arc.second_model)
  sidecar                               gate fresh answers: P(correct) < thr -> hedge prefix (or
                                        abstain); re-score the gated outputs (content + verbal)
                                        -> samples/sidecar.jsonl, artifacts/sidecar.json
  then always (cheap): results.json (metrics per arm, claims), figures, report.md

Every number is recomputable from the run dir: the claims carry the npz paths and the probe
settings (`dispo probe artifacts/features_eval.npz artifacts/features_fresh.npz`).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np

from dispo.arcs import ARCS
from dispo.arcs.base import Recipe, arc_settings
from dispo.core.errors import ConfigError, DispoError

STEPS = ("step1_cv", "step2_fresh", "step3_axes", "step4_pool", "step5_second_model")
STEP_TITLES = {
    "step1_cv": "1. cross-validation on the train prompts",
    "step2_fresh": "2. fresh prompts from the independent generator",
    "step3_axes": "3. per-axis sweep (labels = rubric axis >= axis_min)",
    "step4_pool": "4. multi-layer pooling",
    "step5_second_model": "5. second model family",
}
# --------------------------------------------------------------------------- factories (patchable in tests)


def make_domain(cfg: dict):
    from dispo.evaluation.eval_run import make_domain as _md

    return _md(cfg)


def make_judge(cfg: dict):
    from dispo.evaluation.eval_run import make_judge as _mj

    return _mj(cfg)


def load_lm(spec: dict, cfg: dict):
    from dispo.models.loading import load_model

    return load_model(dict(spec), adapter=None, device=cfg.get("device") or None)


# --------------------------------------------------------------------------- helpers


def _finite(x: Any) -> float | None:
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def labels_from_samples(samples: list[dict], axis_min: int = 4) -> dict[str, Any]:
    """Correct labels (from the run's chosen `correct:` source), coverage, rubric-axis labels.

    Returns {"ids", "y" (int8, -1 = unscored), "coverage" (nan = none), "source",
    "axes": {axis: int8 array, -1 = unscored}}."""
    from dispo.judges.base import AXES
    from dispo.stats.summary import pick_source

    src = pick_source(samples, "correct")
    cov_src = pick_source(samples, "coverage")
    rub_src = pick_source(samples, "rubric")
    n = len(samples)
    y = np.full(n, -1, dtype=np.int8)
    cov = np.full(n, np.nan, dtype=np.float32)
    axes = {a: np.full(n, -1, dtype=np.int8) for a in AXES} if rub_src else {}
    for i, s in enumerate(samples):
        sc = s.get("scores") or {}
        c = sc.get(f"correct:{src}") if src else None
        if c and c.get("status") == "ok" and isinstance(c.get("value"), bool):
            y[i] = int(c["value"])
        v = sc.get(f"coverage:{cov_src}") if cov_src else None
        if v and v.get("status") == "ok" and _finite(v.get("value")) is not None:
            cov[i] = float(v["value"])
        r = sc.get(f"rubric:{rub_src}") if rub_src else None
        if r and r.get("status") == "ok" and isinstance(r.get("value"), dict):
            for a in axes:
                val = _finite(r["value"].get(a))
                if val is not None:
                    axes[a][i] = int(val >= axis_min)
    return {"ids": [s["id"] for s in samples], "y": y, "coverage": cov, "source": src, "axes": axes}


def gate_outputs(
    outputs: list[str], p_correct: np.ndarray, thr: float, mode: str, hedge_text: str, abstain_text: str
) -> tuple[list[str], np.ndarray]:
    """The sidecar: assert (answer unchanged) when P(correct) >= thr, else hedge or abstain."""
    gated = np.asarray(p_correct) < thr
    out = []
    for o, g in zip(outputs, gated):
        if not g:
            out.append(o)
        elif mode == "abstain":
            out.append(abstain_text)
        else:
            out.append(hedge_text + o)
    return out, gated


def _row_json(r: dict) -> dict:
    from dispo.probes.probe import jsonable

    return jsonable(r)


# --------------------------------------------------------------------------- the recipe


@ARCS.register("arc3")
class Arc3Sidecar(Recipe):
    """Frozen-base probe, five-step falsification, failure taxonomy, hedge sidecar."""

    def setup(self) -> None:
        from dispo.probes.features import parse_layers
        from dispo.probes.probe import Bars, Taxonomy

        if "vllm" in (self.cfg.get("engine"), (self.cfg.get("decoding") or {}).get("engine")):
            # vLLM runs its own copy of the weights: no hidden states to reach
            raise ConfigError("arc3 needs hidden states: it runs on transformers; drop engine=vllm")
        self.a = arc_settings(self.cfg, "arc3")
        a = self.a
        try:
            self.Cs = [float(c) for c in (a["C"] if isinstance(a["C"], (list, tuple)) else [a["C"]])]
        except (TypeError, ValueError):
            raise ConfigError(
                f"arc.C must be a number or a list of numbers, got {a['C']!r}; e.g. arc.C=[1.0,0.1]"
            ) from None
        if not self.Cs or any(c <= 0 for c in self.Cs):
            raise ConfigError(f"arc.C must hold positive numbers, got {a['C']!r}; e.g. arc.C=[1.0,0.1]")
        if not isinstance(a["cv"], int) or isinstance(a["cv"], bool) or a["cv"] < 2:
            raise ConfigError(f"arc.cv must be an integer >= 2, got {a['cv']!r}")
        parse_layers(a["layers"])
        parse_layers(a["pool"])
        sc = a["sidecar"]
        if sc.get("mode") not in ("hedge", "abstain"):
            raise ConfigError(f"arc.sidecar.mode must be hedge or abstain, got {sc.get('mode')!r}")
        thr = sc.get("threshold")
        if thr not in ("cv", "fresh") and not (
            isinstance(thr, (int, float)) and not isinstance(thr, bool) and 0 < thr < 1
        ):
            raise ConfigError(f"arc.sidecar.threshold must be cv, fresh or a number in (0, 1), got {thr!r}")
        if a["rubric"] not in ("auto", True, False):
            raise ConfigError(f"arc.rubric must be auto, true or false, got {a['rubric']!r}")
        try:
            self.bars = {k: Bars(auc=float(v["auc"]), asym=float(v["asym"])) for k, v in a["bars"].items()}
            self.tax = Taxonomy(**(a.get("taxonomy") or {}))
        except (TypeError, KeyError, ValueError) as e:
            raise ConfigError(f"arc.bars / arc.taxonomy malformed ({e}); see dispo/conf/arc/arc3.yaml") from None
        for k in ("cv", "fresh"):
            if k not in self.bars:
                raise ConfigError(f"arc.bars.{k} is missing; give {{auc: ..., asym: ...}}")
        self.domain = make_domain(self.cfg)
        for split in (a["train_split"], a["test_split"]):
            if split not in getattr(self.domain, "splits", ()):
                raise ConfigError(
                    f"arc3 needs split '{split}' but domain {self.domain.name} has {', '.join(self.domain.splits)}; "
                    f"use domain=chef or domain=code (two independent prompt generators)"
                )
        # a probe "tested on fresh prompts" it was trained on tests nothing (code's fresh split
        # is HumanEval/82-163: an eval limit above 82, or another order, would reach into it)
        try:
            shared = {i.id for i in self.domain.items(a["train_split"], self.cfg.get("limit"))} & {
                i.id for i in self.domain.items(a["test_split"], self.cfg.get("limit"))
            }
        except ConfigError:  # a split not built yet (a generated pool): its own stage says how
            shared = set()
        if shared:
            raise ConfigError(
                f"arc3: the {a['train_split']} and {a['test_split']} items share {len(shared)} problems "
                f"(e.g. {sorted(shared)[0]}); lower limit (code: limit<=82 in domain.order=id) so the fresh "
                "prompts are new to the probe"
            )
        self.judge = self.given_judge or make_judge(self.cfg)
        self._lm = None
        self._lm_name: str | None = None

    # -- models ---------------------------------------------------------------------
    def lm(self, spec: dict | None = None):
        spec = dict(spec or self.cfg["model"])
        name = spec.get("name") or str(spec)
        if self._lm is None or self._lm_name != name:
            self._lm = None  # one model in memory at a time
            self._lm = load_lm(spec, self.cfg)
            self._lm_name = name
        return self._lm

    def cleanup(self) -> None:
        self._lm = None

    # -- stages ---------------------------------------------------------------------
    def _tasks(self) -> tuple[str, ...]:
        tasks = tuple(self.cfg.get("tasks") or ("verbal", "svr", "hedge"))
        if "verbal" not in tasks:
            tasks = ("verbal",) + tasks
        if self.a["rubric"] in ("auto", True) and "rubric" not in tasks:
            tasks = tasks + ("rubric",)
        return tasks

    def _arm(self, arm: str, split: str, spec: dict | None = None) -> list[dict]:
        from dispo.evaluation.evaluate import evaluate_arm

        run = self.run_dir
        if run.finished(f"arm:{arm}", f"samples/{arm}.jsonl"):
            return run.read_samples(arm)
        items = self.domain.items(split, self.cfg.get("limit"))
        if not items:
            raise DispoError(
                f"domain {self.domain.name} split '{split}' has no items; check the domain's data "
                f"(e.g. dispo/data/chef/*.yaml) or raise limit"
            )
        return evaluate_arm(
            run,
            arm,
            self.lm(spec),
            self.domain,
            items,
            self.cfg,
            self.judge,
            tasks=self._tasks(),
            progress=bool(self.cfg.get("progress", True)),
        )

    def _features(self, arm: str, samples: list[dict], spec: dict | None = None) -> str:
        """Extract and save features for one arm; returns the npz path relative to the run."""
        from dispo.probes.features import SCALARS, extract, parse_layers, pooled_key, save_npz

        rel = f"artifacts/features_{arm}.npz"
        run = self.run_dir
        stage = f"features:{arm}"
        if run.finished(stage, rel):
            return rel
        lab = labels_from_samples(samples, int(self.a["axis_min"]))
        keep = np.flatnonzero(lab["y"] >= 0)
        kept = [samples[i] for i in keep]
        lm = self.lm(spec)
        layers, pool = self.a["layers"], self.a["pool"]
        f = extract(
            lm,
            [s["prompt"] for s in kept],
            [s["output"] for s in kept],
            layers=layers,
            batch_size=int(self.a["feature_batch_size"]),
            also=(pool,),
        )
        x_pool = pooled_key(f, parse_layers(pool))
        # n_response_tokens: falsify's answer-length baseline for the probe
        extra = {k: f[k] for k in (*SCALARS, "n_response_tokens")}
        extra.update({f"axis_{a}": v[keep] for a, v in lab["axes"].items()})
        save_npz(
            rel,
            X=f["X"],
            y=lab["y"][keep],
            coverage=lab["coverage"][keep],
            ids=[s["id"] for s in kept],
            writer=run.write_npz,
            X_pool=x_pool,
            layers=np.array(layers),
            pool=np.array(pool),
            model=np.array(lm.name),
            fingerprint=np.array(lm.fingerprint),
            **extra,
        )
        run.complete_stage(
            stage,
            {
                "path": rel,
                "n": int(len(keep)),
                "n_unlabelled": int(len(samples) - len(keep)),
                "n_pos": int(lab["y"][keep].sum()),
                "dim": int(f["X"].shape[1]) if len(keep) else 0,
                "label_source": lab["source"],
                "layers": layers,
                "pool": pool,
            },
        )
        return rel

    def _data(self, rel: str, x_key: str = "X", y_key: str = "y"):
        from dispo.probes.features import load_npz
        from dispo.probes.probe import ProbeData

        arr = load_npz(self.run_dir.dir / rel)
        y = np.asarray(arr[y_key]).astype(np.int64)
        keep = y >= 0
        return ProbeData(
            X=np.asarray(arr[x_key], dtype=np.float64)[keep],
            y=y[keep],
            coverage=arr.get("coverage")[keep] if "coverage" in arr else None,
            ids=arr.get("ids")[keep] if "ids" in arr else None,
            source=rel if y_key == "y" else f"{rel} [{y_key}]",
        )

    # -- the five steps ---------------------------------------------------------------
    def _pair(self, train, test, cv_bars, test_bars) -> list[dict]:
        """Per C: CV on train (if both classes have >= 2 items), transfer to test."""
        from dispo.probes import probe as P

        rows = []
        n_tr, pos_tr = len(train.y), int(train.y.sum())
        for C in self.Cs:
            row: dict[str, Any] = {"C": C}
            if n_tr == 0 or pos_tr in (0, n_tr):
                row.update(
                    status="skipped",
                    mode="n/a",
                    reason=f"{train.source}: single class ({pos_tr}/{n_tr} positive): no probe can be fit",
                )
                rows.append(row)
                continue
            if min(pos_tr, n_tr - pos_tr) >= 2:
                cvr = P.cross_validate(train, C, int(self.a["cv"]), int(self.a["cv_seed"]), self.tax.min_assert_correct)
                cls = P.classify(train.y, cvr["auc"], cvr["balanced"]["asymmetry"], cv_bars, None, self.tax)
                row["cv"] = {
                    "auc": cvr["auc"],
                    "balanced": cvr["balanced"],
                    "k_used": cvr["k_used"],
                    "mode": cls["mode"],
                    "reason": cls["reason"],
                    "bars": cls["bars"],
                }
            else:
                row["cv"] = {"auc": None, "mode": "n/a", "reason": "fewer than 2 items of a class: no CV"}
            if test is not None and len(test.y):
                tr = P.transfer(train, test, C, self.tax.min_assert_correct)
                cls = P.classify(test.y, tr["auc"], tr["balanced"]["asymmetry"], test_bars, train.y, self.tax)
                row["fresh"] = {
                    "auc": tr["auc"],
                    "balanced": tr["balanced"],
                    "n": int(len(test.y)),
                    "n_pos": int(test.y.sum()),
                    "mode": cls["mode"],
                    "reason": cls["reason"],
                    "bars": cls["bars"],
                }
                row.update(status="done", mode=cls["mode"], reason=cls["reason"])
            else:
                row.update(status="done", mode=row["cv"]["mode"], reason=row["cv"].get("reason"))
            rows.append(row)
        return rows

    @staticmethod
    def _verdict(rows: list[dict]) -> dict:
        done = [r for r in rows if r.get("status") == "done"]
        if not done:
            return {
                "status": "skipped",
                "passed": False,
                "mode": "n/a",
                "reason": rows[0]["reason"] if rows else "nothing to evaluate",
            }
        passed = any(r["mode"] == "pass" for r in done)
        return {
            "status": "done",
            "passed": passed,
            "mode": "pass" if passed else done[0]["mode"],
            "reason": next(r["reason"] for r in done if r["mode"] == "pass") if passed else done[0]["reason"],
        }

    def _step(self, name: str, fn) -> dict:
        return self.stage(
            name,
            lambda: {"step": name, "title": STEP_TITLES[name], **_row_json(fn())},
            artifact=f"artifacts/steps/{name}.json",
            summary=lambda res: {"mode": res.get("mode"), "passed": res.get("passed")},
        )

    def step1(self, tr_rel: str) -> dict:
        train = self._data(tr_rel)
        rows = self._pair(train, None, self.bars["cv"], self.bars["cv"])  # verdict = the CV one
        return {"bars": self.bars["cv"].__dict__, "rows": rows, **self._verdict(rows)}

    def step2(self, tr_rel: str, te_rel: str) -> dict:
        rows = self._pair(self._data(tr_rel), self._data(te_rel), self.bars["cv"], self.bars["fresh"])
        return {"bars": self.bars["fresh"].__dict__, "rows": rows, **self._verdict(rows)}

    def step3(self, tr_rel: str, te_rel: str) -> dict:
        from dispo.probes.features import load_npz

        axes = sorted(k[5:] for k in load_npz(self.run_dir.dir / tr_rel) if k.startswith("axis_"))
        if not axes:
            return {
                "status": "skipped",
                "passed": False,
                "mode": "n/a",
                "rows": [],
                "reason": f"judge '{self.judge.name}' gave no rubric scores (arc.rubric={self.a['rubric']}); "
                f"use a judge with the 5-axis rubric (judge=openai or judge=hf)",
            }
        per_axis = {}
        all_rows = []
        for ax in axes:
            train = self._data(tr_rel, y_key=f"axis_{ax}")
            if len(train.y) == 0:
                per_axis[ax] = {
                    "status": "skipped",
                    "passed": False,
                    "mode": "n/a",
                    "rows": [],
                    "reason": "no rubric scores for this axis",
                }
                continue
            test = self._data(te_rel, y_key=f"axis_{ax}")
            rows = self._pair(train, test, self.bars["cv"], self.bars["fresh"])
            for r in rows:
                r["axis"] = ax
            per_axis[ax] = {
                "rows": rows,
                "n_pos_train": int(train.y.sum()),
                "n_train": int(len(train.y)),
                **self._verdict(rows),
            }
            all_rows += rows
        v = (
            self._verdict(all_rows)
            if all_rows
            else {"status": "skipped", "passed": False, "mode": "n/a", "reason": "no axis had rubric scores"}
        )
        return {"bars": self.bars["fresh"].__dict__, "axes": per_axis, "rows": all_rows, **v}

    def step4(self, tr_rel: str, te_rel: str) -> dict:
        rows = self._pair(
            self._data(tr_rel, x_key="X_pool"), self._data(te_rel, x_key="X_pool"), self.bars["cv"], self.bars["fresh"]
        )
        return {"pool": self.a["pool"], "bars": self.bars["fresh"].__dict__, "rows": rows, **self._verdict(rows)}

    def step5(self) -> dict:
        from dispo.models.registry import get_spec

        name = self.a["second_model"]
        spec = get_spec(name) if isinstance(name, str) else dict(name)
        tag = spec.get("name") or "second"
        tr_arm, te_arm = f"{self.a['train_split']}@{tag}", f"{self.a['test_split']}@{tag}"
        tr_s = self._arm(tr_arm, self.a["train_split"], spec)
        te_s = self._arm(te_arm, self.a["test_split"], spec)
        tr_rel = self._features(tr_arm, tr_s, spec)
        te_rel = self._features(te_arm, te_s, spec)
        rows = self._pair(self._data(tr_rel), self._data(te_rel), self.bars["cv"], self.bars["fresh"])
        return {
            "model": tag,
            "arms": [tr_arm, te_arm],
            "features": {"train": tr_rel, "test": te_rel},
            "bars": self.bars["fresh"].__dict__,
            "rows": rows,
            **self._verdict(rows),
        }

    # -- sidecar ------------------------------------------------------------------------
    def sidecar(self, tr_rel: str, te_rel: str, fresh: list[dict]) -> dict:
        from dispo.evaluation.evaluate import content_keys, score_tasks
        from dispo.probes import probe as P
        from dispo.stats.summary import arm_metrics

        run = self.run_dir
        rel = "artifacts/sidecar.json"
        if run.finished("sidecar", rel):
            return run.read_json(rel)
        sc = self.a["sidecar"]
        train, test = self._data(tr_rel), self._data(te_rel)
        C = self.Cs[0]
        pos = int(train.y.sum())
        if len(train.y) == 0 or pos in (0, len(train.y)):
            info = {
                "status": "skipped",
                "reason": f"train split has a single class ({pos}/{len(train.y)} correct): no probe, no gate",
            }
            run.write_json(rel, info)
            run.complete_stage("sidecar", {"status": "skipped", "reason": info["reason"]})
            return info
        thr_src = sc["threshold"]
        note = None
        if thr_src == "cv":
            if min(pos, len(train.y) - pos) >= 2:
                thr = P.cross_validate(
                    train, C, int(self.a["cv"]), int(self.a["cv_seed"]), self.tax.min_assert_correct
                )["balanced"]["thr"]
            else:
                thr = float("nan")
        elif thr_src == "fresh":
            thr = P.transfer(train, test, C, self.tax.min_assert_correct)["balanced"]["thr"]
        else:
            thr = float(thr_src)
        if not math.isfinite(thr):
            thr, note = (
                0.5,
                f"no {thr_src} threshold keeps P(assert|correct) >= {self.tax.min_assert_correct}; used 0.5",
            )
        model = P.fit_probe(train.X, train.y, C)
        ids = [str(i) for i in test.ids] if test.ids is not None else []
        p_by_id = dict(zip(ids, model.predict_proba(test.X)[:, 1])) if len(test.y) else {}
        p_all = np.array([p_by_id.get(s["id"], np.inf) for s in fresh])  # unlabelled items are never gated
        outputs, gated = gate_outputs(
            [s["output"] for s in fresh], p_all, thr, sc["mode"], sc["hedge_text"], sc["abstain_text"]
        )
        items_by_id = {it.id: it for it in self.domain.items(self.a["test_split"], self.cfg.get("limit"))}
        items = [items_by_id[s["id"]] for s in fresh]
        content = self.domain.content_scores(items, outputs, self.judge)
        tasks = tuple(t for t in self._tasks() if t != "rubric")
        judged = score_tasks(self.judge, items, outputs, tasks)
        samples = []
        for s, out, g, p, c, j in zip(fresh, outputs, gated, p_all, content, judged):
            new = copy.deepcopy(s)
            new["output"] = out
            new["scores"] = {**content_keys(c), **j}
            new["meta"] = {
                **(s.get("meta") or {}),
                "arm": "sidecar",
                "gate": {"p_correct": _finite(p), "thr": thr, "gated": bool(g), "mode": sc["mode"]},
            }
            samples.append(new)
        run.write_samples("sidecar", samples)
        probe_gate = P.at_threshold(model.predict_proba(test.X)[:, 1], test.y, thr) if len(test.y) else None
        mb, ms = arm_metrics(fresh), arm_metrics(samples)
        info = {
            "status": "done",
            "C": C,
            "thr": thr,
            "thr_source": thr_src,
            "note": note,
            "mode": sc["mode"],
            "n": len(samples),
            "n_gated": int(gated.sum()),
            "probe_asymmetry": probe_gate,  # the gate's own asymmetry on the fresh labels
            "measured": {
                "base": {
                    "assertion_asymmetry": (mb.get("assertion_asymmetry") or {}).get("value"),
                    "cells": (mb.get("cells") or {}).get("value"),
                },
                "sidecar": {
                    "assertion_asymmetry": (ms.get("assertion_asymmetry") or {}).get("value"),
                    "cells": (ms.get("cells") or {}).get("value"),
                },
            },
            "hedge_text": sc["hedge_text"] if sc["mode"] == "hedge" else None,
            "abstain_text": sc["abstain_text"] if sc["mode"] == "abstain" else None,
        }
        info = _row_json(info)
        run.write_json(rel, info)
        run.complete_stage("sidecar", {"path": rel, "n_gated": info["n_gated"], "thr": thr})
        return info

    # -- orchestration ---------------------------------------------------------------------
    def run(self) -> dict:
        a = self.a
        tr_arm, te_arm = a["train_split"], a["test_split"]
        train_s = self._arm(tr_arm, tr_arm)
        fresh_s = self._arm(te_arm, te_arm)
        tr_rel = self._features(tr_arm, train_s)
        te_rel = self._features(te_arm, fresh_s)
        steps = {
            "step1_cv": self._step("step1_cv", lambda: self.step1(tr_rel)),
            "step2_fresh": self._step("step2_fresh", lambda: self.step2(tr_rel, te_rel)),
            "step3_axes": self._step("step3_axes", lambda: self.step3(tr_rel, te_rel)),
            "step4_pool": self._step("step4_pool", lambda: self.step4(tr_rel, te_rel)),
        }
        if a.get("second_model"):
            steps["step5_second_model"] = self._step("step5_second_model", self.step5)
        else:
            steps["step5_second_model"] = {
                "step": "step5_second_model",
                "title": STEP_TITLES["step5_second_model"],
                "status": "skipped",
                "passed": False,
                "mode": "n/a",
                "rows": [],
                "reason": "arc.second_model not set (e.g. arc.second_model=qwen3-0.6b)",
            }
        self._lm = None
        side = self.sidecar(tr_rel, te_rel, fresh_s)
        summary = self.finalize(steps, side, tr_rel, te_rel)
        return summary

    def finalize(self, steps: dict, side: dict, tr_rel: str, te_rel: str) -> dict:
        from dispo.reporting.report import write_report
        from dispo.stats.summary import arm_metric_names, arm_metrics, claims

        run = self.run_dir
        arms = dict(run.iter_arms())
        metrics = {arm: arm_metrics(s) for arm, s in arms.items()}
        te_arm = self.a["test_split"]
        cl: list[dict] = []
        if "sidecar" in arms and te_arm in arms:
            common = set(arm_metric_names(arms[te_arm])) & set(arm_metric_names(arms["sidecar"]))
            wanted = [m for m in ("assertion_asymmetry", "hedge_rate", "accuracy", "coverage") if m in common]
            if wanted:
                cl = claims({te_arm: arms[te_arm], "sidecar": arms["sidecar"]}, te_arm, wanted)
                for c in cl:
                    c["id"] = f"sidecar.{c['metric']}"
                    c["arc"], c["features"] = "arc3", {"train": tr_rel, "test": te_rel}  # for dispo falsify
        cl += self.probe_claims(steps, tr_rel, te_rel)
        figs = self.figures(steps, te_rel)
        arc3 = {
            "steps": steps,
            "sidecar": side,
            "features": {"train": tr_rel, "test": te_rel},
            "failure_mode": steps["step2_fresh"].get("mode"),
            "figures": figs,
            "bars": {k: v.__dict__ for k, v in self.bars.items()},
            "taxonomy": self.tax.__dict__,
        }
        run.write_results(metrics, cl, {"arc3": arc3})
        write_report(run, title="train arc3 (frozen-base probe + sidecar)", sections=self.report_sections(arc3))
        return arc3

    def probe_claims(self, steps: dict, tr_rel: str, te_rel: str) -> list[dict]:
        """Claims `dispo falsify` can recompute: each names the npz files and probe settings."""
        out = []
        recompute = {
            "train": tr_rel,
            "test": te_rel,
            "x_key": "X",
            "cv": int(self.a["cv"]),
            "cv_seed": int(self.a["cv_seed"]),
            "min_assert_correct": self.tax.min_assert_correct,
            "command": f"dispo probe {tr_rel} {te_rel} --cv {int(self.a['cv'])}",
        }
        specs = [("step1_cv", "cv", "cv"), ("step2_fresh", "fresh", "fresh")]
        for step, key, bar_key in specs:
            st = steps.get(step) or {}
            for r in st.get("rows", []):
                res = r.get(key)
                if r.get("status") != "done" or not res:
                    continue
                bars = self.bars[bar_key]
                auc, asym = res.get("auc"), (res.get("balanced") or {}).get("asymmetry")
                base = {
                    "kind": "probe",
                    "arc": "arc3",
                    "features": {"train": tr_rel, "test": te_rel},
                    "step": step,
                    "C": r["C"],
                    "mode": res.get("mode"),
                    "artifacts": {"train": tr_rel, "test": te_rel},
                    "recompute": recompute,
                }
                out.append(
                    {
                        "id": f"probe.{key}.auc@C={r['C']:g}",
                        "metric": "probe_auc",
                        "value": auc,
                        "bar": bars.auc,
                        "op": ">=",
                        "holds": auc is not None and auc >= bars.auc,
                        "baseline": f"bar >= {bars.auc}",
                        "treatment": auc,
                        **base,
                    }
                )
                out.append(
                    {
                        "id": f"probe.{key}.asymmetry@C={r['C']:g}",
                        "metric": "probe_balanced_asymmetry",
                        "value": asym,
                        "thr": (res.get("balanced") or {}).get("thr"),
                        "bar": bars.asym,
                        "op": "<=",
                        "holds": asym is not None and asym <= bars.asym,
                        "baseline": f"bar <= {bars.asym}",
                        "treatment": asym,
                        **base,
                    }
                )
        return out

    # -- figures and report -------------------------------------------------------------
    def figures(self, steps: dict, te_rel: str) -> dict:
        from dispo.core.plotting import pyplot

        plt = pyplot()

        run = self.run_dir
        figs = {}
        # AUC collapse: CV vs fresh vs pooled vs second model, per C
        cols = [
            ("CV (train)", "step1_cv", "cv"),
            ("fresh", "step2_fresh", "fresh"),
            (f"fresh, {self.a['pool']} pooled", "step4_pool", "fresh"),
            ("2nd model CV", "step5_second_model", "cv"),
            ("2nd model fresh", "step5_second_model", "fresh"),
        ]
        fig, ax = plt.subplots(figsize=(7.5, 4))
        markers = "osD^v"
        for ci, C in enumerate(self.Cs):
            xs, ys = [], []
            for xi, (_, step, key) in enumerate(cols):
                for r in (steps.get(step) or {}).get("rows", []):
                    if r.get("C") == C and isinstance(r.get(key), dict) and r[key].get("auc") is not None:
                        xs.append(xi + (ci - (len(self.Cs) - 1) / 2) * 0.12)
                        ys.append(r[key]["auc"])
            ax.plot(xs, ys, markers[ci % len(markers)], label=f"C={C:g}", markersize=8)
        ax.axhline(0.5, color="grey", ls=":", label="chance")
        ax.axhline(self.bars["cv"].auc, color="tab:red", ls="--", lw=1, label=f"CV gate {self.bars['cv'].auc}")
        ax.axhline(
            self.bars["fresh"].auc, color="tab:orange", ls="--", lw=1, label=f"fresh gate {self.bars['fresh'].auc}"
        )
        ax.set_xticks(range(len(cols)), [c[0] for c in cols], rotation=15, fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_ylabel("probe AUC")
        ax.set_title(f"Arc 3 probe AUC: {self.cfg['model'].get('name')}")
        ax.legend(fontsize=7, loc="lower left")
        fig.tight_layout()
        fig.savefig(run.dir / "auc_collapse.png", dpi=110)
        plt.close(fig)
        figs["auc_collapse"] = "auc_collapse.png"
        # PCA of fresh features by label
        from dispo.probes.features import load_npz

        arr = load_npz(run.dir / te_rel)
        X, y = np.asarray(arr["X"], dtype=np.float64), np.asarray(arr["y"])
        if X.shape[0] >= 3 and X.shape[1] >= 2:
            from sklearn.decomposition import PCA
            from sklearn.preprocessing import StandardScaler

            Z = PCA(n_components=2, random_state=0).fit_transform(StandardScaler().fit_transform(X))
            fig, ax = plt.subplots(figsize=(5, 4))
            for lab, color, name in ((0, "tab:red", "wrong"), (1, "tab:green", "correct")):
                m = y == lab
                ax.scatter(Z[m, 0], Z[m, 1], s=14, c=color, alpha=0.7, label=f"{name} ({int(m.sum())})")
            ax.set_xlabel("PC1")
            ax.set_ylabel("PC2")
            ax.set_title(f"{self.a['test_split']} features (h_last, {self.a['layers']}) by label")
            ax.legend(fontsize=8)
            fig.tight_layout()
            fig.savefig(run.dir / "pca_fresh.png", dpi=110)
            plt.close(fig)
            figs["pca_fresh"] = "pca_fresh.png"
        return figs

    def report_sections(self, arc3: dict) -> list[str]:
        from dispo.reporting.report import fmt

        lines = [
            "## Arc 3: the five-step check",
            "",
            "| step | C | CV AUC | CV asym (thr) | fresh AUC | fresh asym (thr) | fresh pos | verdict |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name in STEPS:
            st = arc3["steps"].get(name) or {}
            rows = st.get("rows") or []
            if not rows:
                lines.append(f"| {STEP_TITLES[name]} | | | | | | | {st.get('status', 'n/a')}: {st.get('reason', '')} |")
            for r in rows:
                cv, fr = r.get("cv") or {}, r.get("fresh") or {}
                cb, fb = cv.get("balanced") or {}, fr.get("balanced") or {}
                label = STEP_TITLES[name] + (f" [{r['axis']}]" if r.get("axis") else "")
                lines.append(
                    f"| {label} | {r['C']:g} | {fmt(cv.get('auc'))} | {fmt(cb.get('asymmetry'))} ({fmt(cb.get('thr'), 2)}) | "
                    f"{fmt(fr.get('auc'))} | {fmt(fb.get('asymmetry'))} ({fmt(fb.get('thr'), 2)}) | "
                    f"{fr.get('n_pos', '')}/{fr.get('n', '')} | **{r.get('mode')}**: {r.get('reason', '')} |"
                )
        b = arc3["bars"]
        t = arc3["taxonomy"]
        lines += [
            "",
            f"Bars: CV AUC >= {b['cv']['auc']}, asym <= {b['cv']['asym']}; fresh AUC >= {b['fresh']['auc']}, "
            f"asym <= {b['fresh']['asym']}. Failure taxonomy: capability-cliff = fresh positives < "
            f"{t['cliff_min_positives']} or rate < {t['cliff_min_rate']}, and below {t['cliff_rel_rate']}x "
            f"the train rate; uniform-output = balanced classes but |AUC - 0.5| < {t['uniform_auc_band']}.",
            "",
            f"**Failure mode on fresh prompts: {arc3['failure_mode']}**",
            "",
        ]
        s = arc3["sidecar"]
        lines += ["## Sidecar", ""]
        if s.get("status") != "done":
            lines.append(f"Skipped: {s.get('reason')}")
        else:
            pg = s.get("probe_asymmetry") or {}
            m = s["measured"]
            lines += [
                f"mode `{s['mode']}`, C={s['C']:g}, thr {fmt(s['thr'], 2)} ({s['thr_source']}"
                + (f"; {s['note']}" if s.get("note") else "")
                + f"), gated {s['n_gated']}/{s['n']}",
                "",
                "| asymmetry | value |",
                "|---|---|",
                f"| probe gate on fresh labels | {fmt(pg.get('asymmetry'))} |",
                f"| measured, base responses (verbal judge) | {fmt(m['base']['assertion_asymmetry'])} |",
                f"| measured, sidecar responses (verbal judge) | {fmt(m['sidecar']['assertion_asymmetry'])} |",
            ]
        lines += ["", "![AUC collapse](auc_collapse.png)"]
        if "pca_fresh" in arc3["figures"]:
            lines.append("![PCA of fresh features](pca_fresh.png)")
        f = arc3["features"]
        lines += ["", f"Recompute: `dispo probe {self.run_dir.dir / f['train']} {self.run_dir.dir / f['test']}`"]
        return lines
