"""The checks `dispo falsify` runs on each claim.

Each check returns {"status": pass|fail|flag|skipped|n/a, "reason": str, ...numbers}.
  fail     the claim's sign or significance changed under the perturbation (-> FALSIFIED)
  flag     a warning sign that stops a claim from SURVIVING (-> INCONCLUSIVE)
  skipped  the check applies but could not run here (no model, no second judge...); a claim
           whose decoding checks were skipped cannot SURVIVE, it is INCONCLUSIVE
  n/a      the check does not apply to this claim
"""

from __future__ import annotations

import math
from typing import Any

from dispo.falsify.context import FalsifyContext
from dispo.stats.catalog import CONTENT_METRICS, DISPOSITION_PREFIXES, LOWER_IS_BETTER, task_of

CONTENT = CONTENT_METRICS


def is_disposition(metric: str) -> bool:
    return metric.startswith(DISPOSITION_PREFIXES)


def _result(status: str, reason: str, **numbers: Any) -> dict:
    return {"status": status, "reason": reason, **numbers}


def reclaim(base: list[dict], treat: list[dict], metric: str, prefer: dict | None = None, seed: int = 0) -> dict:
    from dispo.stats.summary import paired_claim

    return paired_claim(base, treat, metric, prefer=prefer, seed=seed)


def contradicts(claim: dict, new: dict, alpha: float) -> str | None:
    """Why `new` contradicts the original claim (sign flip, lost significance), or None."""
    d0, d1 = claim.get("delta"), new.get("delta")
    if d0 is None or d1 is None:
        return None
    if d0 != 0 and (d1 == 0 or math.copysign(1, d0) != math.copysign(1, d1)):
        return f"sign flipped: claimed {d0:+.4f}, re-measured {d1:+.4f}"
    was_sig = (claim.get("p_holm") if claim.get("p_holm") is not None else claim.get("p") or 1) < alpha
    if was_sig and (new.get("p") is None or new["p"] >= alpha):
        return f"significance lost: p {new.get('p') if new.get('p') is None else round(new['p'], 4)} >= {alpha} (delta {d1:+.4f})"
    return None


def _brief(c: dict) -> dict:
    return {k: c.get(k) for k in ("base", "treat", "delta", "ci", "p", "test", "n_pairs")}


def _trunc(samples: list[dict]) -> float | None:
    """Share of outputs that hit the budget; None when finish_reason was not recorded."""
    if not samples or any(s.get("finish_reason") not in ("stop", "length") for s in samples):
        return None
    return sum(1 for s in samples if s.get("finish_reason") == "length") / len(samples)


def _think_share(samples: list[dict]) -> float:
    """Share of outputs that spend tokens in a <think> block (counted against the budget)."""
    if not samples:
        return 0.0
    return sum(1 for s in samples if "<think>" in (s.get("output") or "")) / len(samples)


# --------------------------------------------------------------------------- checks


def statistics(claim: dict, ctx: FalsifyContext) -> dict:
    p, ph = claim.get("p"), claim.get("p_holm")
    alpha = ctx.cfg["alpha"]
    if claim.get("delta") is None or ph is None:
        return _result("flag", "no paired data to test", p=p, p_holm=ph)
    if ph >= alpha:
        return _result(
            "flag", f"inside the noise: Holm-corrected p {ph:.4f} >= {alpha}", p=p, p_holm=ph, ci=claim.get("ci")
        )
    return _result(
        "pass",
        f"paired {claim.get('test')} p {p:.3g}, Holm p {ph:.3g} < {alpha}; resampling items alone cannot "
        f"reveal decoding or scoring artefacts",
        p=p,
        p_holm=ph,
        ci=claim.get("ci"),
    )


def apples_to_apples(claim: dict, ctx: FalsifyContext) -> dict:
    a, b = claim["baseline"], claim["arm"]
    pa, pb = ctx.provenance.get(a) or {}, ctx.provenance.get(b) or {}
    diffs = {}
    if not claim.get("same_scorers", True):
        diffs["scorer"] = claim.get("scorers")
    ja, jb = pa.get("judge"), pb.get("judge")
    if ja and jb and ja != jb:
        diffs["judge"] = {"base": ja, "treat": jb}
    gen_diffs = {}
    for k in ("system_prompt",):
        if pa.get(k) != pb.get(k):
            gen_diffs[k] = {"base": pa.get(k), "treat": pb.get(k)}
    ta = (pa.get("model") or {}).get("chat_template_sha256")
    tb = (pb.get("model") or {}).get("chat_template_sha256")
    if ta and tb and ta != tb:
        gen_diffs["chat_template"] = {"base": ta, "treat": tb}
    task = task_of(claim["metric"])
    if not diffs:
        return _result(
            "pass", "both arms scored by the same scorer and prompt version", generation_differences=gen_diffs or None
        )
    if task == "correct" and (claim.get("source") or {}).get("base") == "tests":
        return _result("pass", "content measured by execution in both arms", scorer_differences=diffs)
    if ctx.rescore is None:
        return _result(
            "flag",
            "arms scored differently and no common scorer is available to re-score them",
            scorer_differences=diffs,
        )
    judge = ctx.cfg.get("rescore_judge") or (ctx.run.config.get("judge") or {}).get("name") if ctx.run else "lexical"
    judge = judge if judge and judge != "import" else "lexical"
    base_r, treat_r = ctx.rescore(ctx.arms[a], judge), ctx.rescore(ctx.arms[b], judge)
    if base_r is None or treat_r is None:
        return _result(
            "skipped", "re-scoring needs the responses; the arm carries labels only", scorer_differences=diffs
        )
    new = reclaim(base_r, treat_r, claim["metric"], prefer={task: judge})
    why = contradicts(claim, new, ctx.cfg["alpha"])
    return _result(
        "fail" if why else "pass",
        f"judge-asymmetry: re-scored both arms with one scorer ({judge}): {why}"
        if why
        else f"re-scored both arms with one scorer ({judge}); the claim holds",
        scorer_differences=diffs,
        rescored_with=judge,
        remeasured=_brief(new),
    )


def truncation(claim: dict, ctx: FalsifyContext) -> dict:
    a, b = claim["baseline"], claim["arm"]
    before = {"base": _trunc(ctx.arms[a]), "treat": _trunc(ctx.arms[b])}
    think = {"base": _think_share(ctx.arms[a]), "treat": _think_share(ctx.arms[b])}
    if all(v == 0 for v in before.values()):
        return _result(
            "pass", "no output in either arm hit the token budget", truncation_before=before, think_share=think
        )
    if ctx.regenerate is None and None in before.values():
        return _result(
            "skipped",
            f"finish_reason not recorded, so truncation is unknown; regenerating needs the model ({ctx.why_no_model})",
            truncation_before=before,
        )
    if ctx.regenerate is None:
        return _result(
            "skipped",
            f"truncation {before}: regenerating needs the model ({ctx.why_no_model})",
            truncation_before=before,
            think_share=think,
        )
    steps = []
    for factor in (ctx.cfg["budget_factor"], ctx.cfg["budget_factor_max"]):
        res = _regen_claim(
            claim,
            ctx,
            lambda arm, factor=factor: {
                **ctx.decoding_of(arm),
                "max_new_tokens": int(ctx.decoding_of(arm).get("max_new_tokens", 512) * factor),
            },
            seed_of=lambda arm: (ctx.provenance.get(arm) or {}).get("seed", 0),
        )
        if res is None:
            return _result("skipped", "arms could not be regenerated from the run's domain", truncation_before=before)
        new, base_r, treat_r = res
        after = {"base": _trunc(base_r), "treat": _trunc(treat_r)}
        steps.append({"budget_factor": factor, "truncation_after": after, "remeasured": _brief(new)})
        if max(after.values()) <= ctx.cfg["truncation_persist"]:
            break
    why = contradicts(claim, new, ctx.cfg["alpha"])
    return _result(
        "fail" if why else "pass",
        f"truncation: with the token budget x{steps[-1]['budget_factor']}: {why}"
        if why
        else f"the claim holds with the token budget x{steps[-1]['budget_factor']}",
        truncation_before=before,
        think_share=think,
        steps=steps,
        remeasured=steps[-1]["remeasured"],
    )


def seed_variance(claim: dict, ctx: FalsifyContext) -> dict:
    if ctx.regenerate is None:
        return _result("skipped", f"sampled regeneration needs the model ({ctx.why_no_model})")
    samp = ctx.cfg["sampling"]
    per_seed, pooled_b, pooled_t = [], [], []
    for seed in ctx.cfg["seeds"]:
        res = _regen_claim(claim, ctx, lambda arm: {**ctx.decoding_of(arm), **samp}, seed_of=lambda arm, s=seed: s)
        if res is None:
            return _result("skipped", "arms could not be regenerated from the run's domain")
        new, base_r, treat_r = res
        per_seed.append({"seed": seed, **_brief(new)})
        pooled_b += [{**s, "id": f"{s['id']}#s{seed}"} for s in base_r]
        pooled_t += [{**s, "id": f"{s['id']}#s{seed}"} for s in treat_r]
    pooled = reclaim(pooled_b, pooled_t, claim["metric"], prefer=_prefer(claim))
    deltas = [s["delta"] for s in per_seed if s["delta"] is not None]
    spread = {"min": min(deltas), "max": max(deltas), "std": float(_std(deltas))} if deltas else None
    d0 = claim.get("delta") or 0
    same_sign = sum(1 for d in deltas if d0 and d * d0 > 0)
    why = contradicts(claim, pooled, ctx.cfg["alpha"])
    if why is None and deltas and same_sign < len(deltas) // 2 + 1:  # a strict majority must agree
        why = f"only {same_sign}/{len(deltas)} seeds reproduce the sign"
    reason = "no-replication" if claim.get("arc") == "arc2" else "seed-variance"
    return _result(
        "fail" if why else "pass",
        f"{reason}: over seeds {ctx.cfg['seeds']} (sampling {samp}): {why}"
        if why
        else f"the claim replicates over seeds {ctx.cfg['seeds']} (sampling)",
        per_seed=per_seed,
        spread=spread,
        pooled=_brief(pooled),
        remeasured=_brief(pooled),
    )


def judge_swap(claim: dict, ctx: FalsifyContext) -> dict:
    from dispo.stats.metrics import cohen_kappa
    from dispo.stats.summary import per_item

    task = task_of(claim["metric"])
    src = (claim.get("source") or {}).get("base")
    if task == "correct" and src == "tests":
        return _result("n/a", "content measured by execution, not by a judge")
    if ctx.rescore is None:
        return _result("skipped", "no second judge available for this run")
    second = ctx.cfg["second_judge"]
    if second == src:
        return _result("n/a", f"the claim is already measured by {second}; set falsify.second_judge to another judge")
    a, b = claim["baseline"], claim["arm"]
    base_r, treat_r = ctx.rescore(ctx.arms[a], second), ctx.rescore(ctx.arms[b], second)
    if base_r is None or treat_r is None:
        return _result("skipped", "the arms carry labels only; a second judge needs the responses")
    try:
        new = reclaim(base_r, treat_r, claim["metric"], prefer={task: second})
    except Exception as e:  # the second judge cannot score this task
        return _result("skipped", f"{second} cannot score {task}: {e}")
    kappa = None
    first_vals = {
        **per_item(ctx.arms[a], claim["metric"], _prefer(claim)),
        **{f"t:{k}": v for k, v in per_item(ctx.arms[b], claim["metric"], _prefer(claim)).items()},
    }
    second_vals = {
        **per_item(base_r, claim["metric"], {task: second}),
        **{f"t:{k}": v for k, v in per_item(treat_r, claim["metric"], {task: second}).items()},
    }
    common = [k for k in first_vals if k in second_vals]
    if common and all(isinstance(first_vals[k], (bool, int, float)) for k in common):
        try:
            kappa = cohen_kappa([_label(first_vals[k]) for k in common], [_label(second_vals[k]) for k in common])
        except Exception:
            kappa = None
    why = contradicts(claim, new, ctx.cfg["alpha"])
    if why and why.startswith("sign flipped"):
        return _result(
            "fail", f"judge-dependent: under {second}: {why}", second_judge=second, kappa=kappa, remeasured=_brief(new)
        )
    if why:
        return _result(
            "flag",
            f"gain visible to one judge only: under {second}: {why}",
            second_judge=second,
            kappa=kappa,
            remeasured=_brief(new),
        )
    return _result(
        "pass",
        f"{second} agrees on the direction (kappa {kappa if kappa is None else round(kappa, 3)})",
        second_judge=second,
        kappa=kappa,
        remeasured=_brief(new),
    )


def style_vs_substance(claim: dict, ctx: FalsifyContext) -> dict:
    from dispo.stats.summary import arm_metrics

    metric = claim["metric"]
    if not is_disposition(metric):
        return _result("n/a", "content claim")
    a, b = claim["baseline"], claim["arm"]
    flags, numbers = [], {}
    content = next((m for m in CONTENT if _has(ctx.arms[a], m) and _has(ctx.arms[b], m)), None)
    gained = (claim.get("delta") or 0) * (-1 if metric in LOWER_IS_BETTER else 1) > 0
    if content and gained:
        c = reclaim(ctx.arms[a], ctx.arms[b], content)
        numbers["content"] = {"metric": content, **_brief(c)}
        lo, hi = c.get("ci") or [None, None]
        if c.get("delta") is not None and hi is not None and hi < 0:
            return _result(
                "fail",
                f"style-over-substance: disposition up while {content} fell ({c['delta']:+.4f}, CI {lo:.3f}..{hi:.3f})",
                **numbers,
            )
        if c.get("delta") is not None and lo is not None and lo <= 0:
            flags.append(f"disposition up while {content} is flat ({c['delta']:+.4f}, CI {lo:.3f}..{hi:.3f})")
    if gained and metric in ("svr_rate", "hedge_rate"):
        axis = "rubric.self_verification" if metric == "svr_rate" else "rubric.hedging_appropriateness"
        if _has(ctx.arms[a], axis) and _has(ctx.arms[b], axis):
            j = reclaim(ctx.arms[a], ctx.arms[b], axis)
            numbers["judge_measured"] = {"metric": axis, **_brief(j)}
            if j.get("p") is None or j["p"] >= ctx.cfg["alpha"] or (j.get("delta") or 0) <= 0:
                flags.append(f"mimicry: lexical {metric} up but judge-measured {axis} is flat")
        else:
            flags.append(f"lexical markers only: no judge-measured {axis} to tell mimicry from disposition")
    m = arm_metrics(ctx.arms[b])
    asym = (m.get("assertion_asymmetry") or {}).get("value")
    numbers["treatment_assertion_asymmetry"] = asym
    if asym is not None and asym > ctx.cfg["asymmetry_bar"]:
        flags.append(
            f"disposition does not track correctness: treatment assertion asymmetry {asym:+.4f} > bar {ctx.cfg['asymmetry_bar']}"
        )
    if flags:
        return _result("flag", "; ".join(flags), **numbers)
    return _result("pass", "disposition gain comes with content held and correctness-dependent assertion", **numbers)


def arc_specific(claim: dict, ctx: FalsifyContext) -> dict:
    if claim.get("kind") == "probe":
        return _probe_fresh(claim, ctx)
    if claim.get("arc") == "arc2":
        return _result(
            "n/a", "tempering claims are replicated by the seed-variance check with the run's intervention re-applied"
        )
    if claim.get("arc") == "arc1":
        a, b = claim["baseline"], claim["arm"]
        think = {"base": _think_share(ctx.arms[a]), "treat": _think_share(ctx.arms[b])}
        return _result(
            "pass" if not any(think.values()) else "n/a",
            "no think blocks: every generated token already counts against the budget"
            if not any(think.values())
            else "think blocks present: the truncation check re-measures with them counted against the budget",
            think_share=think,
        )
    return _result("n/a", "no arc-specific check for this claim")


def _probe_fresh(claim: dict, ctx: FalsifyContext) -> dict:
    """Refit the probe on the claim's train features and score the fresh split from the
    independent generator: a probe that only separates within distribution collapses here."""
    from pathlib import Path

    from dispo.probes import probe as P

    rc = claim.get("recompute") or {}
    arts = claim.get("artifacts") or {}
    train, fresh = rc.get("train") or arts.get("train"), rc.get("test") or arts.get("test")
    if not train or not fresh:
        return _result("skipped", "probe claim names no train/fresh feature files")
    base = ctx.run.dir if ctx.run else Path(".")
    tp, fp = (
        (base / train if not Path(train).is_absolute() else Path(train)),
        (base / fresh if not Path(fresh).is_absolute() else Path(fresh)),
    )
    min_ac = float(rc.get("min_assert_correct", 0.70))
    xk = rc.get("x_key", "X")
    tr, te = P.load(tp, x_key=xk), P.load(fp, x_key=xk)
    if len(set(te.y.tolist())) < 2:
        return _result(
            "fail",
            f"fresh-collapse: the fresh split has a single class ({int(te.y.sum())}/{len(te.y)} positives); "
            "the probe's numbers cannot transfer",
        )
    out = P.transfer(tr, te, C=float(claim.get("C", 1.0)), min_assert_correct=min_ac)
    auc = float(out["auc"])
    asym = (out.get("balanced") or {}).get("asymmetry")
    bars = ctx.cfg["probe_bars"]
    ok = auc >= bars["fresh_auc"] and asym is not None and asym <= bars["fresh_asymmetry"]
    numbers = {
        "fresh": {"auc": auc, "balanced": out.get("balanced"), "n": out.get("n"), "n_pos": out.get("n_pos")},
        "remeasured": {"delta": None, "auc": auc},
    }
    if ok:
        return _result(
            "pass",
            f"on fresh prompts AUC {auc:.4f} >= {bars['fresh_auc']} and asymmetry {asym:+.4f} <= "
            f"{bars['fresh_asymmetry']}",
            **numbers,
        )
    return _result(
        "fail",
        f"fresh-collapse: on fresh prompts from the independent generator AUC {auc:.4f} "
        f"(bar {bars['fresh_auc']}), balanced asymmetry "
        f"{'n/a' if asym is None else f'{asym:+.4f}'} (bar {bars['fresh_asymmetry']}): "
        "the probe separates within distribution only",
        **numbers,
    )


CHECKS = {
    "statistics": statistics,
    "apples_to_apples": apples_to_apples,
    "truncation": truncation,
    "seed_variance": seed_variance,
    "judge_swap": judge_swap,
    "style_vs_substance": style_vs_substance,
    "arc_specific": arc_specific,
}
PROBE_CHECKS = ("arc_specific",)


# --------------------------------------------------------------------------- helpers


def _prefer(claim: dict) -> dict | None:
    src = (claim.get("source") or {}).get("base")
    if src and "=" in src:  # cell metrics: "correct=tests,verbal=openai" names one source per task
        return dict(part.split("=", 1) for part in src.split(",") if "=" in part)
    return {task_of(claim["metric"]): src} if src else None


def _regen_claim(claim, ctx, decoding_of, seed_of):
    a, b = claim["baseline"], claim["arm"]
    base_r = ctx.regen(a, decoding_of(a), seed_of(a))
    treat_r = ctx.regen(b, decoding_of(b), seed_of(b))
    if base_r is None or treat_r is None:
        return None
    return reclaim(base_r, treat_r, claim["metric"], prefer=_prefer(claim)), base_r, treat_r


def _has(samples: list[dict], metric: str) -> bool:
    from dispo.stats.summary import per_item

    try:
        return bool(per_item(samples, metric))
    except Exception:
        return False


def _label(v: Any) -> Any:
    return int(v) if isinstance(v, bool) else round(float(v), 3)


def _std(xs: list[float]) -> float:
    m = sum(xs) / len(xs)
    return (sum((x - m) ** 2 for x in xs) / max(1, len(xs) - 1)) ** 0.5
