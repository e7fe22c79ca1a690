"""The checks `dispo falsify` runs on each claim.

Each check returns {"status": pass|fail|flag|skipped|error|n/a, "reason": str, "evidence": {...},
...numbers}.
  pass     the check ran to completion and its re-measurement agrees with the claim
  fail     the claim's sign flipped or its effect vanished under the perturbation (-> FALSIFIED)
  flag     a warning sign that stops a claim from SURVIVING (-> INCONCLUSIVE)
  skipped  the check applies but could not run here (no model, no responses, no checklist...)
           or produced no re-measured delta: "not checked" (-> INCONCLUSIVE), never a pass
  error    the check raised (e.g. the second judge failed to load); recorded, "not checked"
  n/a      the check does not apply to this claim
"evidence" says how the check got its numbers (tokens regenerated, items re-scored, judge and
prompt version) and the re-measured delta with its (1 - alpha) CI, p, Holm-consistent p and n.
Every threshold comes from dispo/conf/falsify/default.yaml (documented in docs/falsify.md).
"""

from __future__ import annotations

import math
from typing import Any

from dispo.falsify.context import FalsifyContext

# the metric catalog is the one place metric names, their tasks and directions live
from dispo.stats.catalog import (
    CELL_METRICS,
    DISPOSITION_PREFIXES,
    LOWER_IS_BETTER,
    task_of,
)

# the kind of each judge: a second judge must differ in kind from the first
JUDGE_KIND = {
    "lexical": "lexical",
    "tone": "lexical",
    "hf": "model",
    "openai": "model",
    "import": "model",
    "tests": "execution",
}


def is_disposition(metric: str) -> bool:
    return metric.startswith(DISPOSITION_PREFIXES)


def _result(status: str, reason: str, **numbers: Any) -> dict:
    return {"status": status, "reason": reason, **numbers}


def _bootstrap(ctx: FalsifyContext) -> dict:
    """The run's interval settings (falsify.alpha, falsify.n_boot) as keyword arguments."""
    return {"alpha": float(ctx.cfg["alpha"]), "n_boot": int(ctx.cfg.get("n_boot", 1000))}


def reclaim(
    base: list[dict],
    treat: list[dict],
    metric: str,
    prefer: dict | None = None,
    seed: int = 0,
    ctx: FalsifyContext | None = None,
) -> dict:
    from dispo.stats.summary import paired_claim

    return paired_claim(base, treat, metric, prefer=prefer, seed=seed, **(_bootstrap(ctx) if ctx else {}))


def holm_factor(claim: dict) -> float:
    """The factor Holm applied to the original claim's p (p_holm / p): a re-measured p is
    multiplied by the same factor, so claim and re-measurement are judged on one scale."""
    p, ph = claim.get("p"), claim.get("p_holm")
    if p and ph is not None and p > 0:
        return max(1.0, float(ph) / float(p))
    return 1.0


def adjusted_p(claim: dict, p: float | None) -> float | None:
    return None if p is None else min(1.0, p * holm_factor(claim))


def was_significant(claim: dict, alpha: float) -> bool:
    ph = claim.get("p_holm") if claim.get("p_holm") is not None else claim.get("p")
    return claim.get("delta") is not None and ph is not None and ph < alpha


def compare(claim: dict, new: dict, alpha: float) -> tuple[str, str]:
    """How a re-measurement `new` stands against the claim: ("none", why) when it has no delta,
    ("flip", why) for a sign flip or an effect re-measured as exactly 0, ("lost", why) when a significant claim is no longer
    significant (Holm-consistent p), else ("ok", "")."""
    d0, d1 = claim.get("delta"), new.get("delta")
    if d1 is None:
        return (
            "none",
            f"no re-measured delta ({new.get('undefined') or 'no item scored in both arms'}; n {new.get('n_pairs')})",
        )
    if d0 is None:
        return "none", "the claim has no delta to compare with"
    if d0 != 0 and (d1 == 0 or math.copysign(1, d0) != math.copysign(1, d1)):
        # a re-measured 0 is treated as a flip (the claimed direction is not reproduced) but said as it is
        what = "effect vanished" if d1 == 0 else "sign flipped"
        return "flip", f"{what}: claimed {d0:+.4f}, re-measured {d1:+.4f} (n {new.get('n_pairs')})"
    pa = adjusted_p(claim, new.get("p"))
    if was_significant(claim, alpha) and (pa is None or pa >= alpha):
        return "lost", (
            f"significance lost: Holm-consistent p {'n/a' if pa is None else f'{pa:.4g}'} >= {alpha} "
            f"(delta {d1:+.4f}, n {new.get('n_pairs')})"
        )
    return "ok", ""


def contradicts(claim: dict, new: dict, alpha: float) -> str | None:
    """Why `new` contradicts the original claim (sign flip, lost significance), or None.
    A re-measurement without a delta is not agreement: callers check compare() for "none"."""
    kind, why = compare(claim, new, alpha)
    return why if kind in ("flip", "lost") else None


def evidence(claim: dict, new: dict | None, how: str, **extra: Any) -> dict:
    """One ledger entry: how the number was obtained, the re-measured delta, CI, p (raw and
    Holm-consistent) and n."""
    new = new or {}
    return {
        "how": how,
        **extra,
        "delta": new.get("delta"),
        "ci": new.get("ci"),
        "p": new.get("p"),
        "p_holm": adjusted_p(claim, new.get("p")),
        "holm_factor": holm_factor(claim),
        "test": new.get("test"),
        "n": new.get("n_pairs"),
        "undefined": new.get("undefined"),
    }


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


def _tokens(samples: list[dict] | None) -> int:
    return sum(int(s.get("n_tokens") or 0) for s in samples or [])


# --------------------------------------------------------------------------- checks


def statistics(claim: dict, ctx: FalsifyContext) -> dict:
    p, ph = claim.get("p"), claim.get("p_holm")
    alpha = ctx.cfg["alpha"]
    ev = {
        "how": "the run's own paired test over items (results.json)",
        "delta": claim.get("delta"),
        "ci": claim.get("ci"),
        "p": p,
        "p_holm": ph,
        "test": claim.get("test"),
        "n": claim.get("n_pairs"),
    }
    if claim.get("delta") is None or ph is None:
        return _result(
            "flag", f"no paired test: {claim.get('undefined') or 'no paired data'}", p=p, p_holm=ph, evidence=ev
        )
    if ph >= alpha:
        return _result(
            "flag",
            f"inside the noise: Holm-corrected p {ph:.4f} >= {alpha}",
            p=p,
            p_holm=ph,
            ci=claim.get("ci"),
            evidence=ev,
        )
    return _result(
        "pass",
        f"paired {claim.get('test')} p {p:.3g}, Holm p {ph:.3g} < {alpha}; resampling items alone cannot "
        f"reveal decoding or scoring artefacts",
        p=p,
        p_holm=ph,
        ci=claim.get("ci"),
        evidence=ev,
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
    how = "compared the scorer/prompt versions recorded with both arms' scores"
    if not diffs:
        return _result(
            "pass",
            "both arms scored by the same scorer and prompt version",
            generation_differences=gen_diffs or None,
            evidence={"how": how, "scorers": claim.get("scorers")},
        )
    if task == "correct" and (claim.get("source") or {}).get("base") == "tests":
        return _result(
            "pass",
            "content measured by execution in both arms",
            scorer_differences=diffs,
            evidence={"how": how, "scorers": claim.get("scorers")},
        )
    judge = ctx.cfg.get("rescore_judge") or ((ctx.run.config.get("judge") or {}).get("name") if ctx.run else None)
    judge = judge if judge and judge != "import" else "lexical"
    tasks = _tasks_for(claim)
    base_r, info = ctx.rescore(ctx.arms[a], judge, tasks, _judge_options(judge, ctx))
    treat_r, _ = ctx.rescore(ctx.arms[b], judge, tasks, _judge_options(judge, ctx))
    new = reclaim(
        base_r, treat_r, claim["metric"], prefer={**(_prefer(claim) or {}), **{t: judge for t in tasks}}, ctx=ctx
    )
    ev = evidence(
        claim,
        new,
        f"re-scored both arms with one scorer ({judge})",
        judge=info["judge"],
        items_rescored=2 * info["items_rescored"],
        tasks=tasks,
    )
    kind, why = compare(claim, new, ctx.cfg["alpha"])
    if kind == "none":
        return _result(
            "skipped", why, scorer_differences=diffs, rescored_with=judge, remeasured=_brief(new), evidence=ev
        )
    return _result(
        "fail" if kind != "ok" else "pass",
        f"judge-asymmetry: re-scored both arms with one scorer ({judge}): {why}"
        if kind != "ok"
        else f"re-scored both arms with one scorer ({judge}); the claim holds",
        scorer_differences=diffs,
        rescored_with=judge,
        remeasured=_brief(new),
        evidence=ev,
    )


def truncation(claim: dict, ctx: FalsifyContext) -> dict:
    """Stored data first: re-measure the claim on the items where neither arm hit the token
    limit. Then, with a model, regenerate both arms at larger budgets."""
    a, b = claim["baseline"], claim["arm"]
    before = {"base": _trunc(ctx.arms[a]), "treat": _trunc(ctx.arms[b])}
    think = {"base": _think_share(ctx.arms[a]), "treat": _think_share(ctx.arms[b])}
    if all(v == 0 for v in before.values()):
        return _result(
            "pass",
            "no output in either arm hit the token budget",
            truncation_before=before,
            think_share=think,
            evidence={
                "how": "finish_reason of every stored output",
                "n": len(ctx.arms[a]) + len(ctx.arms[b]),
                "tokens_regenerated": 0,
            },
        )
    numbers: dict[str, Any] = {"truncation_before": before, "think_share": think}
    stored_status, stored_why = None, None
    if None not in before.values():
        stored_status, stored_why, numbers["stored"] = _untruncated(claim, ctx)
        if stored_status == "fail":
            return _result(
                "fail",
                f"truncation: {stored_why}",
                **numbers,
                remeasured=numbers["stored"]["remeasured"],
                evidence=numbers["stored"]["evidence"],
            )
    if ctx.regenerate is None:
        if stored_status is None:
            return _result(
                "skipped",
                f"finish_reason not recorded, so truncation is unknown; regenerating needs the model "
                f"({ctx.why_no_model})",
                **numbers,
            )
        return _result(
            stored_status,
            stored_why + f"; not regenerated at a larger budget ({ctx.why_no_model})",
            **numbers,
            remeasured=numbers["stored"]["remeasured"],
            evidence=numbers["stored"]["evidence"],
        )
    steps, tokens = [], 0
    new = None
    current = {a: ctx.arms[a], b: ctx.arms[b]}
    seed_of = lambda arm: (ctx.provenance.get(arm) or {}).get("seed", 0)  # noqa: E731
    # dict.fromkeys: budget_factor_max == budget_factor means one larger budget, not the same one twice
    for factor in dict.fromkeys((ctx.cfg["budget_factor"], ctx.cfg["budget_factor_max"])):

        def decoding(arm, factor=factor):
            d = ctx.decoding_of(arm)
            return {
                **d,
                "max_new_tokens": int(d.get("max_new_tokens") or ctx.cfg["default_max_new_tokens"]) * int(factor),
            }

        longer = {arm: _longer(ctx, arm, decoding(arm), seed_of(arm), current[arm]) for arm in (a, b)}
        if any(v is None for v in longer.values()):
            break
        current = {arm: samples for arm, (samples, _) in longer.items()}
        base_r, treat_r = current[a], current[b]
        new = reclaim(base_r, treat_r, claim["metric"], prefer=_prefer(claim), ctx=ctx)
        fresh = {arm: regenerated for arm, (_, regenerated) in longer.items()}
        tokens += sum(_tokens(r) for r in fresh.values())
        after = {"base": _trunc(base_r), "treat": _trunc(treat_r)}
        steps.append(
            {
                "budget_factor": factor,
                "max_new_tokens": {"base": decoding(a)["max_new_tokens"], "treat": decoding(b)["max_new_tokens"]},
                "regenerated": {"base": len(fresh[a]), "treat": len(fresh[b])},
                "truncation_after": after,
                "remeasured": _brief(new),
            }
        )
        if max(v or 0 for v in after.values()) <= ctx.cfg["truncation_persist"]:
            break
    if not steps:
        if stored_status is not None:
            return _result(
                stored_status,
                stored_why + "; the arms could not be regenerated from the run's domain",
                **numbers,
                remeasured=numbers["stored"]["remeasured"],
                evidence=numbers["stored"]["evidence"],
            )
        return _result("skipped", "arms could not be regenerated from the run's domain", **numbers)
    n_out = len(current[a]) + len(current[b])
    n_regen = sum(s["regenerated"]["base"] + s["regenerated"]["treat"] for s in steps[:1])
    kept = (
        ""
        if n_regen == n_out
        else f" ({n_out - n_regen} greedy outputs that stopped before the limit are kept: a larger budget cannot change them)"
    )
    ev = evidence(
        claim,
        new,
        f"regenerated both arms with the token budget x{steps[-1]['budget_factor']}{kept}",
        tokens_regenerated=tokens,
        budgets=[s["max_new_tokens"] for s in steps],
    )
    numbers.update(steps=steps, remeasured=steps[-1]["remeasured"], evidence=ev)
    kind, why = compare(claim, new, ctx.cfg["alpha"])
    last = steps[-1]
    if kind == "none":
        return _result("skipped", why, **numbers)
    if kind != "ok":
        return _result("fail", f"truncation: with the token budget x{last['budget_factor']}: {why}", **numbers)
    persist = {k: v for k, v in last["truncation_after"].items() if (v or 0) > ctx.cfg["truncation_persist"]}
    if persist:
        return _result(
            "flag",
            f"truncation persists at the largest budget (x{last['budget_factor']}): "
            + ", ".join(f"{k} {v:.0%}" for k, v in persist.items())
            + f" of outputs still hit the limit (> {ctx.cfg['truncation_persist']:.0%})",
            **numbers,
        )
    if stored_status == "flag":
        return _result("flag", stored_why, **numbers)
    return _result("pass", f"the claim holds with the token budget x{last['budget_factor']}", **numbers)


def _untruncated(claim: dict, ctx: FalsifyContext) -> tuple[str, str, dict]:
    """The claim re-measured on the items where neither arm's output hit the token limit."""
    a, b = claim["baseline"], claim["arm"]
    cut = {s["id"] for s in ctx.arms[a] + ctx.arms[b] if s.get("finish_reason") == "length"}
    kept_b = [s for s in ctx.arms[a] if s["id"] not in cut]
    kept_t = [s for s in ctx.arms[b] if s["id"] not in cut]
    n_ids = len({s["id"] for s in ctx.arms[a]} | {s["id"] for s in ctx.arms[b]})
    new = (
        reclaim(kept_b, kept_t, claim["metric"], prefer=_prefer(claim), ctx=ctx)
        if kept_b and kept_t
        else {"delta": None, "n_pairs": 0, "undefined": "every item hit the limit in one arm"}
    )
    n_kept = new.get("n_pairs") or 0
    where = f"on the {n_kept} items where neither arm hit the token limit ({len(cut)} of {n_ids} dropped)"
    info = {
        "n_kept": n_kept,
        "n_dropped": len(cut),
        "remeasured": _brief(new),
        "evidence": evidence(
            claim,
            new,
            "stored outputs: the claim re-measured on items where neither arm's finish_reason is 'length'",
            tokens_regenerated=0,
            n_kept=n_kept,
            n_dropped=len(cut),
        ),
    }
    kind, why = compare(claim, new, ctx.cfg["alpha"])
    if kind == "none":
        return "skipped", f"{where}: {why}", info
    if kind == "flip":
        return "fail", f"{where}: {why}", info
    if kind == "lost":
        d0, d1 = claim["delta"], new["delta"]
        if abs(d1) < ctx.cfg["effect_kept_min"] * abs(d0):
            return "fail", f"{where}: the effect is gone: delta {d1:+.4f} vs claimed {d0:+.4f}, {why}", info
        return "flag", f"{where}: the effect keeps its size ({d1:+.4f}) but is no longer significant: {why}", info
    return "pass", f"{where}: the claim holds (delta {new['delta']:+.4f})", info


def seed_variance(claim: dict, ctx: FalsifyContext) -> dict:
    from dispo.stats.summary import repeated_claim

    if ctx.regenerate is None:
        return _result("skipped", f"sampled regeneration needs the model ({ctx.why_no_model})")
    samp = ctx.cfg["sampling"]
    per_seed, runs_b, runs_t, tokens = [], [], [], 0
    for seed in ctx.cfg["seeds"]:
        res = _regen_claim(claim, ctx, lambda arm: {**ctx.decoding_of(arm), **samp}, seed_of=lambda arm, s=seed: s)
        if res is None:
            return _result("skipped", "arms could not be regenerated from the run's domain")
        new, base_r, treat_r = res
        tokens += _tokens(base_r) + _tokens(treat_r)
        per_seed.append({"seed": seed, **_brief(new)})
        runs_b.append(base_r)
        runs_t.append(treat_r)
    # seeds re-measure the same items: aggregate per item before the paired test
    pooled = repeated_claim(
        runs_b,
        runs_t,
        claim["metric"],
        prefer=_prefer(claim),
        **_bootstrap(ctx),
    )
    deltas = [s["delta"] for s in per_seed if s["delta"] is not None]
    spread = {"min": min(deltas), "max": max(deltas), "std": float(_std(deltas))} if deltas else None
    d0 = claim.get("delta") or 0
    same_sign = sum(1 for d in deltas if d0 and d * d0 > 0)
    ev = evidence(
        claim,
        pooled,
        f"regenerated both arms with sampling {samp} under seeds {ctx.cfg['seeds']}; "
        f"per-item {pooled.get('aggregation')} before the paired test",
        tokens_regenerated=tokens,
        n_repeats=len(per_seed),
    )
    numbers = {
        "per_seed": per_seed,
        "spread": spread,
        "pooled": _brief(pooled),
        "remeasured": _brief(pooled),
        "evidence": ev,
    }
    kind, why = compare(claim, pooled, ctx.cfg["alpha"])
    if kind == "none":
        return _result("skipped", why, **numbers)
    need = int(len(ctx.cfg["seeds"]) * ctx.cfg["seed_agree_share"]) + 1  # more than that share of the seeds
    if kind == "ok" and same_sign < need:
        why = f"only {same_sign}/{len(ctx.cfg['seeds'])} seeds reproduce the sign (need {need})"
    reason = "no-replication" if claim.get("arc") == "arc2" else "seed-variance"
    failed = kind != "ok" or same_sign < need
    return _result(
        "fail" if failed else "pass",
        f"{reason}: over seeds {ctx.cfg['seeds']} (sampling {samp}): {why}"
        if failed
        else f"the claim replicates over seeds {ctx.cfg['seeds']} (sampling; {same_sign}/{len(deltas)} same sign)",
        **numbers,
    )


def second_judge_for(first: str | None, cfg: dict) -> str:
    """The judge-swap judge: falsify.second_judge, or with `auto` one of the other kind than
    the claim's own scorer (lexical -> hf, any model judge or imported label -> lexical)."""
    second = cfg.get("second_judge") or "auto"
    if second != "auto":
        return second
    return "hf" if JUDGE_KIND.get(first or "", "model") == "lexical" else "lexical"


def judge_swap(claim: dict, ctx: FalsifyContext) -> dict:
    from dispo.stats.summary import per_item

    metric, task = claim["metric"], task_of(claim["metric"])
    prefer = _prefer(claim) or {}
    first = prefer.get(task) or (claim.get("source") or {}).get("base")
    if task == "correct" and first == "tests":
        return _result("n/a", "content measured by execution, not by a judge")
    second = second_judge_for(first, ctx.cfg)
    if JUDGE_KIND.get(second, second) == JUDGE_KIND.get(first or "", "model"):
        return _result(
            "skipped",
            f"second judge {second} is of the same kind as the claim's scorer {first}; set "
            f"falsify.second_judge to a judge of the other kind (lexical <-> hf/openai)",
        )
    a, b = claim["baseline"], claim["arm"]
    tasks = _tasks_for(claim)
    opts = _judge_options(second, ctx)
    base_r, info = ctx.rescore(ctx.arms[a], second, tasks, opts)
    treat_r, _ = ctx.rescore(ctx.arms[b], second, tasks, opts)
    new_prefer = {**prefer, **{t: second for t in tasks}}
    new = reclaim(base_r, treat_r, metric, prefer=new_prefer, ctx=ctx)
    # per-item agreement between the first and the second judge, both arms together
    first_vals = {
        **{f"b:{k}": v for k, v in per_item(ctx.arms[a], metric, prefer or None).items()},
        **{f"t:{k}": v for k, v in per_item(ctx.arms[b], metric, prefer or None).items()},
    }
    second_vals = {
        **{f"b:{k}": v for k, v in per_item(base_r, metric, new_prefer).items()},
        **{f"t:{k}": v for k, v in per_item(treat_r, metric, new_prefer).items()},
    }
    common = [k for k in first_vals if k in second_vals]
    kappa, agreement = _agreement(
        [_label(metric, first_vals[k]) for k in common], [_label(metric, second_vals[k]) for k in common]
    )
    n_unscored = 2 * info["items_rescored"] - len(common)
    ev = evidence(
        claim,
        new,
        f"re-scored {'+'.join(tasks)} of both arms with a second judge ({second}) and re-measured the claim",
        judge=info["judge"],
        items_rescored=2 * info["items_rescored"],
        items_unscored_by_second=n_unscored,
        kappa=kappa,
        raw_agreement=agreement,
        n_agreement=len(common),
    )
    numbers = {
        "second_judge": second,
        "first_judge": first,
        "kappa": kappa,
        "raw_agreement": agreement,
        "remeasured": _brief(new),
        "evidence": ev,
    }
    kind, why = compare(claim, new, ctx.cfg["alpha"])
    if kind == "none":
        return _result("skipped", f"under {second}: {why}", **numbers)
    if kind == "flip":
        return _result("fail", f"judge-dependent: under {second}: {why}", **numbers)
    if kind == "lost":
        return _result("flag", f"judge-dependent: gain visible to one judge only: under {second}: {why}", **numbers)
    kmin = ctx.cfg["judge_kappa_min"]
    if kappa is None and (agreement is None or agreement < 1):
        return _result(
            "flag",
            f"judge-dependent labels: {first} and {second} agree on {agreement if agreement is None else f'{agreement:.0%}'}"
            f" of {len(common)} items and kappa is undefined (a judge used one label)",
            **numbers,
        )
    if kappa is not None and kappa < kmin:
        return _result(
            "flag",
            f"judge-dependent labels: {first} and {second} agree on the direction but not on the items "
            f"(kappa {kappa:.3f} < {kmin}, n {len(common)})",
            **numbers,
        )
    return _result(
        "pass",
        f"{second} agrees on the direction and the items (kappa "
        f"{'n/a (identical labels)' if kappa is None else f'{kappa:.3f}'}, n {len(common)})",
        **numbers,
    )


def style_vs_substance(claim: dict, ctx: FalsifyContext) -> dict:
    from dispo.stats.summary import arm_metrics, pick_source

    metric = claim["metric"]
    if not is_disposition(metric):
        return _result("n/a", "content claim")
    gained = (claim.get("delta") or 0) * (-1 if metric in LOWER_IS_BETTER else 1) > 0
    if not gained:
        return _result("n/a", "not a disposition gain")
    a, b = claim["baseline"], claim["arm"]
    flags, numbers = [], {}
    content = next((m for m in ("accuracy", "coverage") if _has(ctx.arms[a], m) and _has(ctx.arms[b], m)), None)
    if content == "accuracy" and pick_source(ctx.arms[a], "correct") == "tests":
        content = "pass@1"  # named as results.json names it
    if content:
        c = reclaim(ctx.arms[a], ctx.arms[b], content, ctx=ctx)
        numbers["content"] = {"metric": content, **_brief(c)}
        numbers["evidence"] = evidence(
            claim, c, f"stored scores: content metric {content} re-measured on the same arms"
        )
        lo, hi = c.get("ci") or [None, None]
        if c.get("delta") is not None and hi is not None and hi < 0:
            return _result(
                "fail",
                f"style-over-substance: disposition up while {content} fell ({c['delta']:+.4f}, CI {lo:.3f}..{hi:.3f})",
                **numbers,
            )
        # the cells family is defined relative to correctness: a gain there with content held is
        # the disposition the paper looks for; marker rates and judge scores need content to rise too
        if c.get("delta") is not None and lo is not None and lo <= 0 and metric not in CELL_METRICS:
            flags.append(
                f"style-over-substance: disposition up while {content} is flat ({c['delta']:+.4f}, CI {lo:.3f}..{hi:.3f})"
            )
    if metric in ("svr_rate", "hedge_rate"):
        axis = "rubric.self_verification" if metric == "svr_rate" else "rubric.hedging_appropriateness"
        if _has(ctx.arms[a], axis) and _has(ctx.arms[b], axis):
            j = reclaim(ctx.arms[a], ctx.arms[b], axis, ctx=ctx)
            numbers["judge_measured"] = {"metric": axis, **_brief(j)}
            if j.get("p") is None or j["p"] >= ctx.cfg["alpha"] or (j.get("delta") or 0) <= 0:
                flags.append(f"mimicry: lexical {metric} up but judge-measured {axis} is flat")
        else:
            flags.append(f"lexical markers only: no judge-measured {axis} to tell mimicry from disposition")
    m = arm_metrics(ctx.arms[b], alpha=ctx.cfg["alpha"])
    asym = (m.get("assertion_asymmetry") or {}).get("value")
    numbers["treatment_assertion_asymmetry"] = asym
    if asym is not None and asym > ctx.cfg["asymmetry_bar"]:
        flags.append(
            f"disposition does not track correctness: treatment assertion asymmetry {asym:+.4f} > bar {ctx.cfg['asymmetry_bar']}"
        )
    if not content:
        why = "no content metric (pass@1/accuracy/coverage) in both arms, so substance cannot be checked"
        if flags:
            return _result("flag", "; ".join(flags) + f"; {why}", **numbers)
        return _result("skipped", why, **numbers)
    if flags:
        return _result("flag", "; ".join(flags), **numbers)
    return _result("pass", "disposition gain comes with content held and correctness-dependent assertion", **numbers)


def arc_specific(claim: dict, ctx: FalsifyContext) -> dict:
    if claim.get("kind") == "probe":
        return _probe_fresh(claim, ctx)
    if claim.get("arc") == "arc2":
        return _arc2_intervention(claim, ctx)
    if claim.get("arc") == "arc1":
        a, b = claim["baseline"], claim["arm"]
        think = {"base": _think_share(ctx.arms[a]), "treat": _think_share(ctx.arms[b])}
        return _result(
            "pass" if not any(think.values()) else "n/a",
            "no think blocks: every generated token already counts against the budget"
            if not any(think.values())
            else "think blocks present: the truncation check re-measures with them counted against the budget",
            think_share=think,
            evidence={
                "how": "scanned every stored output for <think> blocks",
                "n": len(ctx.arms[a]) + len(ctx.arms[b]),
            },
        )
    return _result("n/a", "no arc-specific check for this claim")


def _arc2_intervention(claim: dict, ctx: FalsifyContext) -> dict:
    """A tempering claim is only replicable if the intervention it claims is the one recorded
    with the treatment arm's generation (the seed-variance check re-applies that record)."""
    b = claim["arm"]
    stamped = claim.get("intervention")
    recorded = (ctx.provenance.get(b) or {}).get("intervention")
    if recorded is None:
        recorded = next(((s.get("meta") or {}).get("intervention") for s in ctx.arms.get(b) or []), None)
    ev = {
        "how": "compared the intervention stamped on the claim with the one recorded for the arm's generation",
        "claimed_intervention": stamped,
        "recorded_intervention": recorded,
    }
    if stamped is None:
        if recorded is None:
            return _result("n/a", "the claim's arm has no intervention (lambda = 1 or untempered)", evidence=ev)
        return _result(
            "skipped", "the claim does not name its intervention; re-run arc2 so claims carry it", evidence=ev
        )
    if recorded != stamped:
        return _result(
            "fail",
            f"intervention mismatch: the claim names {stamped} but the arm was generated with {recorded}",
            evidence=ev,
        )
    return _result(
        "pass", "the claimed intervention is the one recorded with the arm; seed_variance re-applies it", evidence=ev
    )


def _probe_fresh(claim: dict, ctx: FalsifyContext) -> dict:
    """Refit the probe on the claim's train features and score the fresh split from the
    independent generator: a probe that only separates within distribution collapses here."""
    from pathlib import Path

    from dispo.probes import probe as P
    from dispo.stats.metrics import auc_bootstrap_ci

    rc = claim.get("recompute") or {}
    arts = claim.get("artifacts") or claim.get("features") or {}
    train, fresh = rc.get("train") or arts.get("train"), rc.get("test") or arts.get("test")
    if not train or not fresh:
        return _result("skipped", "probe claim names no train/fresh feature files")
    base = ctx.run.dir if ctx.run else Path(".")
    tp, fp = (
        (base / train if not Path(train).is_absolute() else Path(train)),
        (base / fresh if not Path(fresh).is_absolute() else Path(fresh)),
    )
    for p in (tp, fp):
        if not p.exists():
            return _result("skipped", f"feature file {p} named by the claim is missing")
    min_ac = float(rc.get("min_assert_correct", ctx.cfg["probe_min_assert_correct"]))
    C = float(claim.get("C", ctx.cfg["probe_C"]))
    xk = rc.get("x_key", "X")
    ev = {
        "how": f"refit the probe (C {C}) on {train} and scored {fresh}",
        "train": str(train),
        "fresh": str(fresh),
        "C": C,
        "min_assert_correct": min_ac,
    }
    # an AUC or asymmetry on a handful of items in one class is noise, in either direction: too
    # few of a class (one class included) leaves the claim not checked, never passed or failed
    need = int(ctx.cfg["probe_min_class"])
    counts = {name: P.class_counts(p) for name, p in (("train", tp), ("fresh", fp))}
    ev["class_counts"] = {k: {"positive": p, "negative": n} for k, (p, n) in counts.items()}
    ev["n"] = sum(counts["fresh"])
    short = [f"{k} {p} positive / {n} negative" for k, (p, n) in counts.items() if min(p, n) < need]
    if short:
        return _result(
            "skipped",
            f"too few items of a class for the probe's AUC to mean anything ({'; '.join(short)}; "
            f"need >= {need} of each, falsify.probe_min_class)",
            evidence=ev,
        )
    tr, te = P.load(tp, x_key=xk), P.load(fp, x_key=xk)
    out = P.transfer(tr, te, C=C, min_assert_correct=min_ac)
    auc = float(out["auc"])
    asym = (out.get("balanced") or {}).get("asymmetry")
    if asym is not None and not math.isfinite(asym):
        asym = None  # no threshold met the balanced gate: undefined, said as n/a
    bars = ctx.cfg["probe_bars"]
    boot = _bootstrap(ctx)
    # the AUC on a few dozen fresh items is an estimate: the verdict reads its interval, not the point
    lo, hi = auc_bootstrap_ci(te.y, out["p"], **boot)
    ev.update(auc=auc, auc_ci=[lo, hi], asymmetry=asym)
    numbers = {
        "fresh": {
            "auc": auc,
            "auc_ci": [lo, hi],
            "balanced": out.get("balanced"),
            "n": out.get("n"),
            "n_pos": out.get("n_pos"),
        },
        "remeasured": {"delta": None, "auc": auc, "ci": [lo, hi]},
        "evidence": ev,
    }
    auc_txt = f"AUC {auc:.4f} [{lo:.3f}, {hi:.3f}]"
    asym_txt = "n/a" if asym is None else f"{asym:+.4f}"
    meets = auc >= bars["fresh_auc"] and asym is not None and asym <= bars["fresh_asymmetry"]
    if not meets:
        if not hi < bars["fresh_auc"]:
            return _result(
                "flag",
                f"below the bars on fresh prompts ({auc_txt}, bar {bars['fresh_auc']}; balanced asymmetry "
                f"{asym_txt}, bar {bars['fresh_asymmetry']}), but the AUC's {1 - boot['alpha']:.0%} interval "
                "reaches the bar: a collapse is not shown (more fresh items would tell)",
                **numbers,
            )
        return _result(
            "fail",
            f"fresh-collapse: on fresh prompts from the independent generator {auc_txt}, all below the bar "
            f"{bars['fresh_auc']}; balanced asymmetry {asym_txt} (bar {bars['fresh_asymmetry']}): "
            "the probe separates within distribution only",
            **numbers,
        )
    passed = f"on fresh prompts {auc_txt} >= {bars['fresh_auc']} and asymmetry {asym_txt} <= {bars['fresh_asymmetry']}"
    if not lo > 0.5:
        return _result(
            "flag",
            f"{passed}, but the interval reaches chance (0.5): the probe is not shown to separate fresh items",
            **numbers,
        )
    # a probe on the hidden state that does no better than one on the answer's length has not
    # shown it reads the model's state: long (or cut) answers are more often wrong
    margin = float(ctx.cfg["probe_length_margin"])
    lengths = {k: _answer_lengths(p, ctx) for k, p in (("train", tp), ("fresh", fp))}
    if any(v is None for v in lengths.values()):
        return _result(
            "flag",
            f"{passed}, but not checked against the answer-length baseline (no response token "
            "counts in the feature files or the run's samples for these items)",
            **numbers,
        )
    (tr_len, tr_src), (fr_len, fr_src) = lengths["train"], lengths["fresh"]
    length = P.transfer(
        P.ProbeData(X=tr_len[:, None], y=tr.y),
        P.ProbeData(X=fr_len[:, None], y=te.y),
        C=C,
        min_assert_correct=min_ac,
    )
    l_auc = float(length["auc"])
    # paired over the same fresh items: does the hidden state beat the token count?
    d_lo, d_hi = auc_bootstrap_ci(te.y, out["p"], baseline=length["p"], **boot)
    ev["length_baseline"] = {
        "auc": l_auc,
        "auc_difference": auc - l_auc,
        "difference_ci": [d_lo, d_hi],
        "margin": margin,
        "sources": [tr_src, fr_src],
    }
    ev["how"] += (
        f"; then the same probe on the answer's token count alone ({tr_src}, {fr_src}), compared by a "
        "paired bootstrap over the fresh items"
    )
    vs_length = f"AUC {auc - l_auc:+.4f} [{d_lo:+.3f}, {d_hi:+.3f}] over a probe on answer length alone ({l_auc:.4f})"
    if not d_lo > margin:
        return _result(
            "flag",
            f"length-baseline: on fresh prompts the hidden state's {vs_length}: the interval's low end is not "
            f"above {margin}, so the probe is not shown to read more than answer length",
            **numbers,
        )
    return _result("pass", f"{passed}; {vs_length}", **numbers)


def _answer_lengths(path, ctx: FalsifyContext) -> tuple[Any, str] | None:
    """Response token counts for the items of a features file, in its order: from the file
    (`n_response_tokens`) or else from the run's samples of the arm the file was built from
    (features_<arm>.npz; any arm holding every id otherwise); None when neither has them."""
    from pathlib import Path

    import numpy as np

    from dispo.probes.features import load_npz

    z = load_npz(path)
    if "n_response_tokens" in z:
        return np.asarray(z["n_response_tokens"], dtype=float), Path(path).name
    if "ids" not in z:
        return None
    ids = [str(i) for i in z["ids"]]
    stem = Path(path).stem.removeprefix("features_")
    for arm in sorted(ctx.arms, key=lambda a: a != stem):
        by_id = {s.get("id"): s.get("n_tokens") for s in ctx.arms[arm]}
        if all(by_id.get(i) is not None for i in ids):
            return np.asarray([by_id[i] for i in ids], dtype=float), f"samples/{arm}.jsonl"
    return None


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


def statically_na(name: str, claim: dict) -> bool:
    """Checks that cannot apply to this claim whatever the data (used for checks left out of
    falsify.checks: leaving out a check that could not apply costs nothing)."""
    if name == "arc_specific":
        return claim.get("kind") != "probe" and claim.get("arc") not in ("arc1", "arc2")
    if name == "style_vs_substance":
        return not is_disposition(claim.get("metric") or "")
    if name == "judge_swap":
        return task_of(claim.get("metric") or "") == "correct" and (claim.get("source") or {}).get("base") == "tests"
    return False


# --------------------------------------------------------------------------- helpers


def _prefer(claim: dict) -> dict | None:
    src = (claim.get("source") or {}).get("base")
    if src and "=" in src:  # cell metrics: "correct=tests,verbal=openai" names one source per task
        return dict(part.split("=", 1) for part in src.split(",") if "=" in part)
    return {task_of(claim["metric"]): src} if src else None


def _tasks_for(claim: dict) -> list[str]:
    """Score tasks a re-scoring must redo for this claim: content claims re-score correct and
    coverage together (correct = coverage >= 0.5); cells-family claims their verbal labels."""
    task = task_of(claim["metric"])
    return ["coverage", "correct"] if task in ("correct", "coverage") else [task]


def _judge_options(judge: str, ctx: FalsifyContext) -> dict:
    if judge == "lexical":
        return {}
    opts = dict(ctx.cfg.get("second_judge_options") or {})
    if ctx.run and (ctx.run.config.get("judge") or {}).get("name") == judge:
        # the run's own model judge keeps its settings unless falsify overrides them
        opts = {**{k: v for k, v in ctx.run.config["judge"].items() if k != "name"}, **opts}
    return opts


def _longer(ctx, arm: str, decoding: dict, seed: int, prev: list[dict]) -> tuple[list[dict], list[dict]] | None:
    """`arm` at a larger token budget: (its samples, the ones regenerated), or None when it
    cannot be regenerated. Greedy decoding only cuts at the budget, so an output that stopped
    before the old limit is the one a larger limit gives: only those that hit it are
    regenerated. A sampled arm, or one without finish reasons, is regenerated whole."""
    from dispo.generate.engine import DecodingParams

    greedy = not DecodingParams.from_config(decoding).sampling
    if not greedy or _trunc(prev) is None:
        new = ctx.regen(arm, decoding, seed)
        return None if new is None else (new, new)
    cut = [s["id"] for s in prev if s.get("finish_reason") == "length"]
    if not cut:
        return prev, []
    # a regenerate function may return more than the items asked for: only those are taken
    by_id = {s["id"]: s for s in ctx.regen(arm, decoding, seed, ids=cut) or [] if s["id"] in set(cut)}
    if len(by_id) != len(cut):
        return None
    return [by_id.get(s["id"], s) for s in prev], [by_id[i] for i in cut]


def _regen_claim(claim, ctx, decoding_of, seed_of):
    a, b = claim["baseline"], claim["arm"]
    base_r = ctx.regen(a, decoding_of(a), seed_of(a))
    treat_r = ctx.regen(b, decoding_of(b), seed_of(b))
    if base_r is None or treat_r is None:
        return None
    return reclaim(base_r, treat_r, claim["metric"], prefer=_prefer(claim), ctx=ctx), base_r, treat_r


def _has(samples: list[dict], metric: str) -> bool:
    from dispo.stats.summary import per_item

    return bool(per_item(samples, metric))


def _label(metric: str, v: Any) -> Any:
    """The judge's label for one item, as kappa compares it: the assert/hedge label for the
    cells family, correct (coverage >= 0.5) for coverage, the category otherwise."""
    if isinstance(v, tuple):
        return int(bool(v[1]))
    if metric == "coverage":
        return int(v >= 0.5)
    return int(v) if isinstance(v, bool) else round(float(v), 3)


def _agreement(x: list, y: list) -> tuple[float | None, float | None]:
    from dispo.stats.metrics import cohen_kappa

    if not x:
        return None, None
    k = cohen_kappa(x, y)
    return (None if math.isnan(k) else k), sum(1 for u, v in zip(x, y) if u == v) / len(x)


def _std(xs: list[float]) -> float:
    m = sum(xs) / len(xs)
    return (sum((x - m) ** 2 for x in xs) / max(1, len(xs) - 1)) ** 0.5
