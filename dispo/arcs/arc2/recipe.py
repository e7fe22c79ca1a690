"""Arc 2: attention-head attribution by cohort, o_proj tempering sweep, replication.

    dispo train arc2 model=smollm2-135m domain=chef disposition=humble
    dispo train arc2 model=tiny-llama arc.preset=smoke

Stages (each recorded in the manifest and skipped on `--resume` once done):

  arm:base           base responses on the domain (evaluate_arm: content + verbal + rubric)
  cohorts            A/B labels per item for the disposition: rubric axis >= axis_min vs below
                     (humble -> hedging_appropriateness, deliberate -> pedagogical_framing,
                     adversarial -> self_verification, persistent -> completeness), or
                     correct vs wrong (disposition=correctness, or arc.cohort_source=correct).
                     Too few items in a cohort ends the run with a verdict, not a ranking.
  attribution        one batched forward pass per batch over prompt + response with o_proj
                     pre-hooks (dispo.arcs.arc2.attribution): artifacts/head_activations.npz, both rankings
                     (magnitude and directional), head_ranking.{csv,md,json}, head_heatmap.png
  arm:lam<l>         sweep: the top-k heads of arc.method tempered by each lambda (dispo.interventions.tempering),
                     regenerated and re-scored (lam1.0 has no hooks and reuses the base generations)
  arm:rep.lam<l>     replication: sampling decoding (arc.replicate.decoding) for every seed in
                     arc.replicate.seeds, at lambda 1 and at the best lambda; each seed's sample
                     has id "<item>@seed<k>" so the pooled arm pairs item x seed
  then always (cheap): monotonicity across lambdas, results.json (metrics per arm; a claim per
  lambda vs lambda=1 on the disposition rate and on content; the replication claims and
  outcome), sweep.png, report.md
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dispo.arcs import ARCS
from dispo.arcs.base import Recipe, arc_settings
from dispo.core.errors import ConfigError
from dispo.core.types import ScoreKey

DISPOSITION_AXES = {
    "humble": "hedging_appropriateness",
    "deliberate": "pedagogical_framing",
    "adversarial": "self_verification",
    "persistent": "completeness",
    "correctness": None,  # correct vs wrong
}
# --------------------------------------------------------------------------- factories (patchable in tests)


def make_domain(cfg: dict):
    from dispo.evaluation.eval_run import make_domain as _md

    return _md(cfg)


def make_judge(cfg: dict):
    from dispo.evaluation.eval_run import make_judge as _mj

    return _mj(cfg)


def load_lm(cfg: dict):
    from dispo.evaluation.eval_run import load_lm as _ll

    return _ll(cfg, adapter=cfg.get("adapter"))


# --------------------------------------------------------------------------- pure helpers


def arm_name(lam: float) -> str:
    return f"lam{float(lam)}"


def rep_arm_name(lam: float) -> str:
    return f"rep.lam{float(lam)}"


def _value(s: dict, task: str, src: str | None):
    sc = (s.get("scores") or {}).get(f"{task}:{src}") if src else None
    if not sc or sc.get("status", "ok") != "ok":
        return None
    return sc.get("value")


def _cohorts(samples: list[dict], y, task: str, src, axis, names: tuple[str, str]) -> dict[str, Any]:
    """The cohort record both labelers return: per-sample labels (1 = A, 0 = B, -1 = neither) and counts."""
    return {
        "ids": [str(s["id"]) for s in samples],
        "y": y,
        "task": task,
        "source": src,
        "axis": axis,
        "names": names,
        "n_a": int((y == 1).sum()),
        "n_b": int((y == 0).sum()),
        "n_unscored": int((y < 0).sum()),
    }


def paper_cohort_labels(samples: list[dict], disposition: str) -> dict[str, Any]:
    """The paper's cohorts (arc.cohort_source=paper). humble: A = wrong-and-asserted (cw),
    B = correct-and-asserted (cr); hedged answers are in neither (path_b_attribution.py:72-76,
    237). adversarial: A = self_verification >= 4, B = <= 2, 3 in neither
    (path_b_attr_gemma4_adv.py:4-5,34-35). Other dispositions had no cohort in the paper."""
    from dispo.stats.summary import pick_source

    y = np.full(len(samples), -1, dtype=np.int8)
    if disposition == "humble":
        cs, vs = pick_source(samples, "correct"), pick_source(samples, "verbal")
        for i, s in enumerate(samples):
            c, v = _value(s, "correct", cs), _value(s, "verbal", vs)
            if isinstance(c, bool) and isinstance(v, str) and v.lower() == "assert":
                y[i] = 0 if c else 1
        names, task, src, axis = ("wrong-asserted (cw)", "correct-asserted (cr)"), "correct+verbal", f"{cs},{vs}", None
    elif disposition == "adversarial":
        rs = pick_source(samples, "rubric")
        for i, s in enumerate(samples):
            v = _value(s, "rubric", rs)
            x = v.get("self_verification") if isinstance(v, dict) else None
            if isinstance(x, (int, float)) and not isinstance(x, bool):
                y[i] = 1 if x >= 4 else 0 if x <= 2 else -1
        names, task, src, axis = ("self_verification>=4", "self_verification<=2"), "rubric", rs, "self_verification"
    else:
        raise ConfigError(
            f"arc.cohort_source=paper has cohorts for disposition humble or adversarial only "
            f"(the paper's two arc-2 runs); got {disposition}"
        )
    return _cohorts(samples, y, task, src, axis, names)


def outcome_2x2(samples: list[dict]) -> dict[str, Any]:
    """The paper's arc-2 outcome per arm: counts of correct/wrong x asserted/hedged
    (cr, hr, cw, hw), hallucination rate cw/(cw+hw), assertion asymmetry
    P(assert|wrong) - P(assert|correct), and the share correct. A rate with an empty
    denominator is None with a reason, never 0."""
    from dispo.stats.summary import pick_source

    cs, vs = pick_source(samples, "correct"), pick_source(samples, "verbal")
    n = {"cr": 0, "hr": 0, "cw": 0, "hw": 0}
    for s in samples:
        c, v = _value(s, "correct", cs), _value(s, "verbal", vs)
        if isinstance(c, bool) and isinstance(v, str) and v.lower() in ("assert", "hedge"):
            n[("c" if v.lower() == "assert" else "h") + ("r" if c else "w")] += 1
    right, wrong = n["cr"] + n["hr"], n["cw"] + n["hw"]
    out: dict[str, Any] = {"counts": n, "n": right + wrong, "sources": {"correct": cs, "verbal": vs}, "undefined": {}}

    def rate(name, num, den, why):
        out[name] = num / den if den else None
        if not den:
            out["undefined"][name] = why

    rate("hallucination_rate", n["cw"], wrong, "no wrong answers")
    rate("p_assert_wrong", n["cw"], wrong, "no wrong answers")
    rate("p_assert_correct", n["cr"], right, "no correct answers")
    rate("accuracy", right, right + wrong, "no scored answers")
    a, b = out["p_assert_wrong"], out["p_assert_correct"]
    out["assertion_asymmetry"] = a - b if a is not None and b is not None else None
    if out["assertion_asymmetry"] is None:
        out["undefined"]["assertion_asymmetry"] = "needs both correct and wrong answers"
    return out


def cohort_labels(samples: list[dict], disposition: str, source: str = "auto", axis_min: int = 4) -> dict[str, Any]:
    """Per-sample cohort label: 1 = cohort A (axis >= axis_min, or correct), 0 = B, -1 = unscored
    (or in neither cohort)."""
    from dispo.stats.summary import pick_source

    if source == "paper":
        return paper_cohort_labels(samples, disposition)

    axis = DISPOSITION_AXES[disposition]
    use = ("correct" if axis is None else "rubric") if source == "auto" else source
    if use == "rubric" and axis is None:
        raise ConfigError(
            "arc.cohort_source=rubric needs a disposition with a rubric axis "
            f"({', '.join(k for k, v in DISPOSITION_AXES.items() if v)}); got correctness"
        )
    task = "rubric" if use == "rubric" else "correct"
    src = pick_source(samples, task)
    y = np.full(len(samples), -1, dtype=np.int8)
    for i, s in enumerate(samples):
        sc = (s.get("scores") or {}).get(ScoreKey.of(task, src)) if src else None
        if not sc or sc.get("status", "ok") != "ok" or sc.get("value") is None:
            continue
        v = sc["value"]
        if task == "rubric":
            x = v.get(axis) if isinstance(v, dict) else None
            if isinstance(x, (int, float)) and not isinstance(x, bool):
                y[i] = int(x >= axis_min)
        elif isinstance(v, bool):
            y[i] = int(v)
    if use == "rubric":
        names = (f"{axis}>={axis_min}", f"{axis}<{axis_min}")
    else:
        names = ("correct", "wrong")
    return _cohorts(samples, y, task, src, axis, names)


def monotonicity(lambdas: list[float], values: list[float | None], tol: float = 0.0) -> dict[str, Any]:
    """Is the metric monotone in lambda? Lambdas are ordered from 1.0 (no tempering) down."""
    pairs = sorted(((float(lam), v) for lam, v in zip(lambdas, values)), key=lambda p: -p[0])
    vals = [v for _, v in pairs]
    out: dict[str, Any] = {"lambdas": [p[0] for p in pairs], "values": vals}
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in vals) or len(vals) < 2:
        out.update(
            monotone=None,
            direction="undefined",
            note="fewer than two lambdas with a value" if len(vals) < 2 else "a lambda has no value",
        )
        return out
    diffs = np.diff(np.asarray(vals, dtype=float))  # as lambda decreases
    if np.all(np.abs(diffs) <= tol):
        direction = "flat"
    elif np.all(diffs <= tol):
        direction = "decreasing as lambda decreases"
    elif np.all(diffs >= -tol):
        direction = "increasing as lambda decreases"
    else:
        direction = "non-monotone"
    out.update(
        monotone=direction != "non-monotone",
        direction=direction,
        tol=tol,
        note="two lambdas are always monotone" if len(vals) == 2 else None,
    )
    return out


def replication_outcome(
    greedy_delta: float | None, pooled: dict | None, per_seed: list[dict], alpha: float = 0.05
) -> dict[str, Any]:
    """Does the sampled seed block reproduce the greedy sweep's effect (same sign; significant)?"""
    if pooled is None:
        return {"outcome": "not_run", "reason": "no replication seeds (arc.replicate.seeds is empty)"}
    pd, p = pooled.get("delta"), pooled.get("p")
    signs = [c.get("delta") for c in per_seed]
    if greedy_delta is None or greedy_delta == 0:
        return {
            "outcome": "no_effect_to_replicate",
            "greedy_delta": greedy_delta,
            "pooled_delta": pd,
            "p": p,
            "per_seed_deltas": signs,
            "reason": "the greedy sweep showed no change at the best lambda, so there is nothing to replicate",
        }
    same = pd is not None and pd != 0 and math.copysign(1, pd) == math.copysign(1, greedy_delta)
    agree = sum(1 for d in signs if d is not None and d != 0 and math.copysign(1, d) == math.copysign(1, greedy_delta))
    if same and p is not None and p < alpha:
        outcome, reason = "replicated", f"same sign as greedy and p={p:.3g} < {alpha} on the pooled seed block"
    elif same:
        outcome, reason = (
            "same_direction_not_significant",
            f"same sign as greedy but p={p if p is None else f'{p:.3g}'} >= {alpha}",
        )
    else:
        outcome, reason = "not_replicated", "the sampled seed block does not move in the greedy direction"
    return {
        "outcome": outcome,
        "reason": reason,
        "greedy_delta": greedy_delta,
        "pooled_delta": pd,
        "p": p,
        "per_seed_deltas": signs,
        "seeds_agreeing": agree,
        "n_seeds": len(per_seed),
    }


# --------------------------------------------------------------------------- the recipe


@ARCS.register("arc2")
class Arc2Tempering(Recipe):
    """Head attribution -> top-k o_proj tempering sweep -> replication with sampled seeds."""

    def setup(self) -> None:
        from dispo.arcs.arc2.attribution import METHODS

        if "vllm" in (self.cfg.get("engine"), (self.cfg.get("decoding") or {}).get("engine")):
            # vLLM runs its own copy of the weights: no forward hooks at o_proj to reach
            raise ConfigError("arc2 needs forward hooks at o_proj: it runs on transformers; drop engine=vllm")
        a = self.a = arc_settings(self.cfg, "arc2")
        if a["disposition"] not in DISPOSITION_AXES:
            raise ConfigError(f"unknown disposition '{a['disposition']}'; valid choices: {', '.join(DISPOSITION_AXES)}")
        if a["cohort_source"] not in ("auto", "rubric", "correct", "paper"):
            raise ConfigError(f"arc.cohort_source must be auto, rubric, correct or paper; got {a['cohort_source']!r}")
        if a["method"] not in METHODS:
            raise ConfigError(f"arc.method must be one of {', '.join(METHODS)}; got {a['method']!r}")
        for key in ("top_k", "last_n_tokens", "min_cohort", "attribution_batch_size"):
            v = a[key]
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"arc.{key} must be an integer >= 1, got {v!r}")
        try:
            lams = [float(x) for x in (a["lambdas"] if isinstance(a["lambdas"], (list, tuple)) else [a["lambdas"]])]
        except (TypeError, ValueError):
            raise ConfigError(
                f"arc.lambdas must be a list of numbers, got {a['lambdas']!r}; e.g. arc.lambdas=[1.0,0.8,0.5]"
            ) from None
        if any(not (x >= 0) for x in lams):
            raise ConfigError(f"arc.lambdas must be >= 0, got {lams}")
        if 1.0 not in lams:
            lams = [1.0] + lams  # the baseline every claim is paired against
        self.lambdas = sorted(set(lams), key=lambda x: -x)
        if len(self.lambdas) < 2:
            raise ConfigError("arc.lambdas needs at least one value besides 1.0, e.g. arc.lambdas=[1.0,0.5]")
        rep = a.get("replicate") or {}
        seeds = rep.get("seeds") or []
        if not isinstance(seeds, (list, tuple)) or any(not isinstance(s, int) or isinstance(s, bool) for s in seeds):
            raise ConfigError(f"arc.replicate.seeds must be a list of integers, got {seeds!r}")
        self.rep_seeds = list(seeds)
        self.axis = DISPOSITION_AXES[a["disposition"]]
        self.domain = make_domain(self.cfg)
        self.judge = self.given_judge or make_judge(self.cfg)
        self._lm = None

    @property
    def lm(self):
        if self._lm is None:
            self._lm = load_lm(self.cfg)
        return self._lm

    def cleanup(self) -> None:
        self._lm = None

    # -- helpers ---------------------------------------------------------------------
    def _tasks(self) -> tuple[str, ...]:
        tasks = tuple(self.cfg.get("tasks") or ("verbal", "svr", "hedge"))
        if self.axis is not None and "rubric" not in tasks:
            tasks = tasks + ("rubric",)
        return tasks

    def _items(self):
        return self.domain.items(self.cfg.get("domain", {}).get("split", "eval"), self.cfg.get("limit"))

    def _evaluate(
        self,
        arm: str,
        heads: list[tuple[int, int]],
        lam: float,
        *,
        decoding: dict | None = None,
        seed: int | None = None,
        run=True,
    ) -> list[dict]:
        from dispo.evaluation.evaluate import evaluate_arm
        from dispo.interventions.tempering import temper, tempering_spec

        if run and self.run_dir.finished(f"arm:{arm}", f"samples/{arm}.jsonl"):
            return self.run_dir.read_samples(arm)  # finished: no model load on resume
        intervention = tempering_spec(heads, lam) if lam != 1.0 else None
        with temper(self.lm.model, heads, lam):
            return evaluate_arm(
                self.run_dir if run else None,
                arm,
                self.lm,
                self.domain,
                self._items(),
                self.cfg,
                self.judge,
                decoding=decoding,
                seed=seed,
                intervention=intervention,
                tasks=self._tasks(),
                progress=bool(self.cfg.get("progress", True)),
            )

    def metric_names(self, samples: list[dict]) -> tuple[str, list[str]]:
        """(disposition metric, content metrics) the samples can compute."""
        from dispo.stats.summary import arm_metric_names

        have = arm_metric_names(samples)
        disp = "accuracy" if self.axis is None else f"rubric.{self.axis}.ge4"
        if disp == "accuracy" and "accuracy" not in have and "pass@1" in have:
            disp = "pass@1"
        content = [m for m in ("pass@1", "accuracy", "coverage") if m in have and m != disp]
        return disp, content

    # -- stages ----------------------------------------------------------------------
    def base(self) -> list[dict]:
        if self.axis is not None and not hasattr(self.judge, "rubric"):
            raise ConfigError(
                f"disposition={self.a['disposition']} needs the 5-axis rubric, which judge "
                f"'{self.judge.name}' does not score; use judge=lexical, hf or openai"
            )
        return self._evaluate("base", [], 1.0)

    def cohorts(self, base: list[dict]) -> dict:
        run = self.run_dir
        rel = "artifacts/cohorts.json"
        if run.finished("cohorts", rel):
            return run.read_json(rel)
        lab = cohort_labels(base, self.a["disposition"], self.a["cohort_source"], int(self.a["axis_min"]))
        info = {k: v for k, v in lab.items() if k != "y"}
        info["labels"] = [int(x) for x in lab["y"]]
        info["disposition"] = self.a["disposition"]
        info["min_cohort"] = int(self.a["min_cohort"])
        info["sufficient"] = min(lab["n_a"], lab["n_b"]) >= int(self.a["min_cohort"])
        run.write_json(rel, info)
        run.complete_stage(
            "cohorts",
            {
                "path": rel,
                "n_a": lab["n_a"],
                "n_b": lab["n_b"],
                "n_unscored": lab["n_unscored"],
                "sufficient": info["sufficient"],
            },
        )
        return info

    def attribution(self, base: list[dict], coh: dict) -> dict:
        """Capture once, rank by both methods; returns the stage info (paths, top heads)."""
        from dispo.arcs.arc2.attribution import HeadActivations, capture_head_activations, rank_heads

        run = self.run_dir
        if run.finished("attribution", "artifacts/head_ranking.json"):
            # the stage's own info, without the manifest's bookkeeping (status, finished time):
            # results.json must not depend on whether this stage ran in this process
            return {k: v for k, v in run.stage_info("attribution").items() if k not in ("status", "finished")}
        a = self.a
        npz = run.artifacts / "head_activations.npz"
        if npz.exists() and (run.dir / "artifacts/head_activations.npz.json").exists():
            acts = HeadActivations.load(npz)  # captured before an interruption
        else:
            acts = capture_head_activations(
                self.lm.model,
                self.lm.tokenizer,
                [s["prompt"] for s in base],
                [s["output"] for s in base],
                last_n_tokens=int(a["last_n_tokens"]),
                batch_size=int(a["attribution_batch_size"]),
                ids=[str(s["id"]) for s in base],
                max_length=a.get("max_length"),
            )
            acts.save(npz)
        y = np.asarray(coh["labels"])
        rankings = {}
        for method in dict.fromkeys(("magnitude", "directional", a["method"])):
            r = rank_heads(
                acts,
                y == 1,
                y == 0,
                method=method,
                artefact_d=float(a["artefact"]["d"]),
                artefact_cos=float(a["artefact"]["cos"]),
                min_cohort=int(a["min_cohort"]),
                cohort_names=tuple(coh["names"]),
            )
            rankings[method] = r
            run.write_text(f"artifacts/head_ranking_{method}.csv", r.to_csv())
        main = rankings[a["method"]]
        heads = main.top(int(a["top_k"]), exclude_artefacts=bool(a["exclude_artefacts"]))
        run.write_text("artifacts/head_ranking.csv", main.to_csv())
        run.write_text("artifacts/head_ranking.md", main.to_markdown(limit=None))
        run.write_json("artifacts/head_ranking.json", {m: r.to_json() for m, r in rankings.items()})
        main.heatmap(
            run.artifacts / "head_heatmap.png",
            top_k=len(heads),
            title=f"{a['method']} attribution, {a['disposition']}\n{coh['names'][0]} vs {coh['names'][1]}",
        )
        info = {
            "method": a["method"],
            "heads": [list(h) for h in heads],
            "top": [
                {k: r[k] for k in ("rank", "layer", "head", "score", "d", "cos", "variance_artefact", "d_heldout")}
                for r in main.rows[: int(a["top_k"])]
            ],
            "n_artefacts": sum(r["variance_artefact"] for r in main.rows),
            "n_heads": len(main.rows),
            "skipped_layers": acts.skipped,
            "overlap_topk_methods": len(
                set(rankings["magnitude"].top(int(a["top_k"]))) & set(rankings["directional"].top(int(a["top_k"])))
            ),
            "files": {
                "activations": "artifacts/head_activations.npz",
                "ranking_csv": "artifacts/head_ranking.csv",
                "ranking_md": "artifacts/head_ranking.md",
                "heatmap": "artifacts/head_heatmap.png",
            },
            "last_n_tokens": int(a["last_n_tokens"]),
        }
        run.complete_stage("attribution", info)
        return info

    def sweep(self, heads: list[tuple[int, int]]) -> dict[str, list[dict]]:
        return {arm_name(lam): self._evaluate(arm_name(lam), heads, lam) for lam in self.lambdas}

    def best_lambda(self, sweep: dict[str, list[dict]], disp: str) -> tuple[float, float | None]:
        from dispo.stats.summary import paired_claim

        base = sweep[arm_name(1.0)]
        best, best_delta = None, None
        for lam in self.lambdas:
            if lam == 1.0:
                continue
            c = paired_claim(base, sweep[arm_name(lam)], disp, n_boot=200)
            d = c.get("delta")
            if best is None or (d is not None and (best_delta is None or d > best_delta)):
                best, best_delta = lam, d
        return best, best_delta

    def replicate(self, heads: list[tuple[int, int]], best: float) -> dict[str, list[dict]]:
        """Sampled seed block at lambda 1 and the best lambda; pooled arms with ids <item>@seed<k>."""
        run = self.run_dir
        dec = {**dict(self.cfg["decoding"]), **dict((self.a.get("replicate") or {}).get("decoding") or {})}
        out = {}
        for lam in (1.0, best):
            arm = rep_arm_name(lam)
            if run.finished(f"arm:{arm}", f"samples/{arm}.jsonl"):
                out[arm] = run.read_samples(arm)
                continue
            pooled = []
            for seed in self.rep_seeds:
                for s in self._evaluate(arm, heads, lam, decoding=dec, seed=seed, run=False):
                    s = dict(s)
                    s["meta"] = {**(s.get("meta") or {}), "item_id": s["id"], "seed": seed, "arm": arm}
                    s["id"] = f"{s['id']}@seed{seed}"
                    pooled.append(s)
            run.write_samples(arm, pooled)
            run.complete_stage(
                f"arm:{arm}",
                {
                    "n": len(pooled),
                    "seeds": self.rep_seeds,
                    "decoding": dec,
                    "lambda": lam,
                    "heads": [list(h) for h in heads],
                    "model": self.lm.describe(),
                    "judge": self.judge.describe(),
                },
            )
            out[arm] = pooled
        return out

    # -- main --------------------------------------------------------------------------
    def run(self) -> dict:
        base = self.base()
        coh = self.cohorts(base)
        if not coh["sufficient"]:
            return self.finalize(coh, None, {}, {}, None, None)
        att = self.attribution(base, coh)
        heads = [tuple(h) for h in att["heads"]]
        sweep = self.sweep(heads)
        disp, _ = self.metric_names(sweep[arm_name(1.0)])
        best, best_delta = self.best_lambda(sweep, disp)
        rep = self.replicate(heads, best) if self.rep_seeds else {}
        self._lm = None
        return self.finalize(coh, att, sweep, rep, best, best_delta)

    def finalize(
        self, coh: dict, att: dict | None, sweep: dict, rep: dict, best: float | None, best_delta: float | None
    ) -> dict:
        from dispo.reporting.report import write_report
        from dispo.stats.summary import arm_metrics, claims, paired_claim

        run = self.run_dir
        arms = dict(run.iter_arms())
        metrics = {arm: arm_metrics(s) for arm, s in arms.items()}
        arc2: dict[str, Any] = {
            "disposition": self.a["disposition"],
            "axis": self.axis,
            "cohorts": {
                k: coh[k] for k in ("task", "source", "names", "n_a", "n_b", "n_unscored", "min_cohort", "sufficient")
            },
            "method": self.a["method"],
            "top_k": int(self.a["top_k"]),
            "lambdas": self.lambdas,
            "outcome_2x2": {arm: outcome_2x2(s) for arm, s in arms.items()},
        }
        cl: list[dict] = []
        if att is None:
            arc2["verdict"] = {
                "status": "insufficient_cohorts",
                "reason": (
                    f"cohort {coh['names'][0]} has {coh['n_a']} and {coh['names'][1]} has {coh['n_b']} "
                    f"items (need >= {coh['min_cohort']} each): no head ranking, no sweep; raise `limit`, "
                    f"pick another disposition or arc.cohort_source=correct"
                ),
            }
            run.write_results(metrics, cl, {"arc2": arc2})
            write_report(run, title="train arc2 (head attribution + tempering)", sections=self.report_sections(arc2))
            return arc2
        base_arm = arm_name(1.0)
        disp, content = self.metric_names(sweep[base_arm])
        wanted = [disp] + content
        cl = claims({a: s for a, s in sweep.items()}, base_arm, wanted, alpha=float(self.a["alpha"]))
        for c in cl:
            c["id"] = f"arc2.{c['arm']}.{c['metric']}"
            c["family"] = "sweep"
            c["arc"] = "arc2"  # dispo falsify checks the intervention below against the arm's record
            c["intervention"] = (
                (arms[c["arm"]][0].get("meta") or {}).get("intervention") if arms.get(c["arm"]) else None
            )
        mono = {}
        for m in wanted:
            vals = [(metrics.get(arm_name(lam)) or {}).get(m, {}).get("value") for lam in self.lambdas]
            mono[m] = monotonicity(self.lambdas, vals, float(self.a["monotone_tol"]))
        arc2.update(
            attribution=att,
            heads=att["heads"],
            disposition_metric=disp,
            content_metrics=content,
            monotonicity=mono,
            best_lambda=best,
            best_lambda_delta=best_delta,
        )
        if rep:
            b, t = rep[rep_arm_name(1.0)], rep[rep_arm_name(best)]
            rcl = claims(
                {rep_arm_name(1.0): b, rep_arm_name(best): t}, rep_arm_name(1.0), wanted, alpha=float(self.a["alpha"])
            )
            for c in rcl:
                c["id"] = f"arc2.replication.lam{best}.{c['metric']}"
                c["family"] = "replication"
                c["arc"] = "arc2"
                c["intervention"] = (
                    (arms[c["arm"]][0].get("meta") or {}).get("intervention") if arms.get(c["arm"]) else None
                )
            per_seed = []
            for seed in self.rep_seeds:
                bs = [s for s in b if (s.get("meta") or {}).get("seed") == seed]
                ts = [s for s in t if (s.get("meta") or {}).get("seed") == seed]
                pc = paired_claim(bs, ts, disp, n_boot=200)
                per_seed.append(
                    {"seed": seed, "delta": pc.get("delta"), "p": pc.get("p"), "n_pairs": pc.get("n_pairs")}
                )
            pooled = next((c for c in rcl if c["metric"] == disp), None)
            arc2["replication"] = {
                "lambda": best,
                "seeds": self.rep_seeds,
                "decoding": (run.stage_info(f"arm:{rep_arm_name(best)}") or {}).get("decoding"),
                "per_seed": per_seed,
                **replication_outcome(best_delta, pooled, per_seed, float(self.a["alpha"])),
            }
            cl += rcl
        else:
            arc2["replication"] = replication_outcome(best_delta, None, [])
        arc2["figures"] = {"heatmap": "artifacts/head_heatmap.png", "sweep": self.sweep_figure(metrics, wanted)}
        run.write_results(metrics, cl, {"arc2": arc2})
        write_report(run, title="train arc2 (head attribution + tempering)", sections=self.report_sections(arc2))
        return arc2

    # -- figures and report ---------------------------------------------------------------
    def sweep_figure(self, metrics: dict, wanted: list[str]) -> str | None:
        from dispo.core.plotting import pyplot

        plt = pyplot()

        rel = "artifacts/sweep.png"
        fig, ax = plt.subplots(figsize=(5, 3.2))
        for m in wanted:
            xs, ys, lo, hi = [], [], [], []
            for lam in self.lambdas:
                e = (metrics.get(arm_name(lam)) or {}).get(m) or {}
                if e.get("value") is None:
                    continue
                xs.append(lam)
                ys.append(e["value"])
                ci = e.get("ci") or [e["value"], e["value"]]
                lo.append(e["value"] - (ci[0] if ci[0] is not None else e["value"]))
                hi.append((ci[1] if ci[1] is not None else e["value"]) - e["value"])
            if xs:
                ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=m)
        ax.set_xlabel("lambda (top-k heads' o_proj input scale)")
        ax.invert_xaxis()
        ax.legend(fontsize=7)
        ax.set_title("tempering sweep (95% CI)")
        fig.tight_layout()
        p = self.run_dir.dir / rel
        tmp = p.with_name(".sweep.tmp.png")
        fig.savefig(tmp, dpi=110)
        plt.close(fig)
        tmp.replace(p)
        return rel

    def report_sections(self, arc2: dict) -> list[str]:
        from dispo.reporting.report import fmt

        c = arc2["cohorts"]
        out = [
            "## Arc 2: head attribution and o_proj tempering",
            "",
            f"Disposition **{arc2['disposition']}**; cohorts from `{c['task']}:{c['source']}`: "
            f"{c['names'][0]} n={c['n_a']}, {c['names'][1]} n={c['n_b']} ({c['n_unscored']} unscored).",
        ]
        if "verdict" in arc2:
            return out + ["", f"**Verdict: {arc2['verdict']['status']}**: {arc2['verdict']['reason']}"]
        att = arc2["attribution"]
        out += [
            "",
            f"### Head ranking ({att['method']}, top {arc2['top_k']})",
            "",
            "Full table: `artifacts/head_ranking.md` / `.csv` (both methods in `head_ranking_*.csv`); "
            "heat map: `artifacts/head_heatmap.png`. The directional d is fitted in-sample; "
            "`d held-out` is the 2-fold cross-fitted value. A flagged head (|d| large, cos(mu_A, mu_B) ~ 1) "
            "is the paper's variance artefact.",
            "",
            "| rank | layer | head | score | d | cos | d held-out | artefact |",
            "|---:|---:|---:|---:|---:|---:|---:|:---|",
        ]
        for r in att["top"]:
            out.append(
                f"| {r['rank']} | {r['layer']} | {r['head']} | {fmt(r['score'])} | {fmt(r['d'], 3)} | "
                f"{fmt(r['cos'], 4)} | {fmt(r['d_heldout'], 3)} | {'YES' if r['variance_artefact'] else ''} |"
            )
        out += [
            "",
            f"{att['n_artefacts']} of {att['n_heads']} heads flagged as variance artefacts; "
            f"top-{arc2['top_k']} overlap between magnitude and directional rankings: {att['overlap_topk_methods']}.",
        ]
        for s in att.get("skipped_layers") or []:
            out.append(f"- layer {s['index']} skipped: {s['reason']}")
        out += [
            "",
            "### Sweep",
            "",
            f"Tempered heads: {att['heads']}. Disposition metric `{arc2['disposition_metric']}`, "
            f"content {', '.join('`' + m + '`' for m in arc2['content_metrics']) or 'none'}. Figure: `artifacts/sweep.png`.",
            "",
        ]
        for m, mo in arc2["monotonicity"].items():
            vals = ", ".join(f"{lam:g}: {fmt(v, 3)}" for lam, v in zip(mo["lambdas"], mo["values"]))
            out.append(f"- `{m}` ({vals}): {mo['direction']}" + (f" ({mo['note']})" if mo.get("note") else ""))
        rep = arc2["replication"]
        out += ["", "### Replication", ""]
        if rep.get("outcome") == "not_run":
            out.append(f"Not run: {rep['reason']}.")
        else:
            out.append(
                f"Best greedy lambda {arc2['best_lambda']} (delta {fmt(arc2['best_lambda_delta'], 3)} on "
                f"`{arc2['disposition_metric']}`), re-run with sampling over seeds {rep.get('seeds')}: "
                f"**{rep['outcome']}** ({rep['reason']}). Per-seed deltas: "
                + ", ".join(f"seed {p['seed']}: {fmt(p['delta'], 3)}" for p in rep.get("per_seed", []))
                + "."
            )
        return out
