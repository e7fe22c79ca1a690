"""Evaluate arms: generate (cached), score content with the domain, score disposition with the
judge, write samples/<arm>.jsonl. Every arm of a run goes through the same function, so every
arm is scored by identical scorers with identical decoding unless a caller says otherwise.
"""

from __future__ import annotations

from typing import Any, Iterable

from dispo.core.types import Generation, Item, Sample, Score, ScoreKey
from dispo.judges.base import JudgeRequest

DEFAULT_TASKS = ("verbal", "svr", "hedge")
# judge tasks a domain needs beyond the configured ones
DOMAIN_TASKS = {"mcas": ("mcas",)}


ENGINES = ("transformers", "vllm")


def decoding_for(cfg: dict, decoding: dict | None = None) -> dict:
    """The decoding a run generates with: `decoding` (default cfg.decoding) with the top-level
    `engine` switch applied. engine=vllm sets decoding.engine=vllm; engine=transformers leaves
    the decoding's own engine (auto unless set)."""
    from dispo.core.errors import ConfigError

    dec = dict(decoding or cfg["decoding"])
    engine = cfg.get("engine") or "transformers"
    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "vllm":
        if dec.get("engine", "auto") not in ("auto", "vllm"):
            raise ConfigError(f"engine=vllm conflicts with decoding.engine={dec['engine']}; drop one of them")
        dec["engine"] = "vllm"
    return dec


def generate_texts(
    lm,
    items: list[Item],
    decoding: dict,
    seed: int = 0,
    intervention: dict | None = None,
    system_prompt: str | None = None,
    progress: bool = True,
    cache: Any = True,
) -> list[Generation]:
    from dispo.generate.engine import generate

    requests = [(it.id, it.messages(system_prompt)) for it in items]
    return generate(lm, requests, decoding, seed=seed, cache=cache, intervention=intervention, progress=progress)


def judge_requests(items: list[Item], outputs: list[str]) -> list[JudgeRequest]:
    return [
        JudgeRequest(
            question=it.prompt,
            response=out,
            claims=list(it.gold.get("checklist") or []),
            keywords=list(it.gold.get("keywords") or []),
            kind=it.gold.get("kind"),
            certainty=it.gold.get("certainty"),
        )
        for it, out in zip(items, outputs)
    ]


def content_keys(score: Score) -> dict[str, dict]:
    """Map a domain's content Score onto the canonical task keys (correct / coverage)."""
    source = score.scorer.split(".")[0]
    out: dict[str, dict] = {}
    if score.scorer.endswith(".coverage"):
        out[ScoreKey.of("coverage", source)] = score.to_json()
        correct = None if score.status != "ok" else bool(score.detail.get("correct", (score.value or 0) >= 0.5))
        out[ScoreKey.of("correct", source)] = Score(
            scorer=f"{source}.correct", version=score.version, value=correct, status=score.status, reason=score.reason
        ).to_json()
    elif score.status == "unscored" and not score.scorer.endswith(".correct"):
        pass  # a domain without a content scorer (mcas): nothing to record
    else:
        out[ScoreKey.of("correct", source)] = score.to_json()
    return out


def score_tasks(judge, items: list[Item], outputs: list[str], tasks: Iterable[str]) -> list[dict[str, dict]]:
    reqs = judge_requests(items, outputs)
    per_item: list[dict[str, dict]] = [{} for _ in items]
    for task in tasks:
        fn = getattr(judge, task, None)
        if fn is None:
            continue  # e.g. svr/hedge exist only on the lexical judge
        for slot, s in zip(per_item, fn(reqs)):
            slot[ScoreKey.of(task, judge.name)] = s.to_json()
    return per_item


def build_samples(
    items: list[Item],
    gens: list[Generation],
    content: list[Score],
    judged: list[dict],
    system_prompt: str | None,
    extra: dict | None = None,
) -> list[dict]:
    samples = []
    for it, g, c, j in zip(items, gens, content, judged):
        scores = {**content_keys(c), **j}
        samples.append(
            Sample(
                id=it.id,
                prompt=g.prompt,
                messages=it.messages(system_prompt),
                output=g.output,
                finish_reason=g.finish_reason,
                n_tokens=g.n_tokens,
                decoding=g.decoding,
                seed=g.seed,
                scores=scores,
                meta={**it.meta, **(extra or {})},
            ).to_json()
        )
    return samples


def resolve_paper_text(value: str | None, cfg: dict, run=None) -> str | None:
    """'paper:<instrument>' (protocol=paper) -> the text read from the paper's release at
    paper.repo, recorded with its file's sha256 in the run manifest; anything else as is."""
    from dispo.core.paper_source import is_paper_ref, read_instrument, record_used

    if not is_paper_ref(value):
        return value
    ins = read_instrument((cfg.get("paper") or {}).get("repo"), value)
    record_used(run, [ins])
    return ins.text


def record_domain_instruments(run, domain, judge=None) -> None:
    """The release texts the domain and the judge read (protocol=paper), with sha256, in manifest.json."""
    from dispo.core.paper_source import record_used

    record_used(run, list(getattr(domain, "instruments", None) or []))
    record_used(run, list(getattr(judge, "instruments", None) or []))


def evaluate_arm(
    run,
    arm: str,
    lm,
    domain,
    items: list[Item],
    cfg: dict,
    judge,
    *,
    decoding: dict | None = None,
    seed: int | None = None,
    intervention: dict | None = None,
    system_prompt: str | None = None,
    tasks: Iterable[str] | None = None,
    progress: bool = True,
) -> list[dict]:
    """Generate, score and persist one arm; a finished arm is read back instead of redone."""
    stage = f"arm:{arm}"
    if run is not None and run.finished(stage, f"samples/{arm}.jsonl"):
        return run.read_samples(arm)
    decoding = decoding_for(cfg, decoding)
    seed = cfg.get("seed", 0) if seed is None else seed
    if system_prompt is None:
        system_prompt = cfg.get("system_prompt")
    system_prompt = resolve_paper_text(system_prompt, cfg, run)
    record_domain_instruments(run, domain, judge)
    tasks = tuple(tasks if tasks is not None else cfg.get("tasks") or DEFAULT_TASKS)
    tasks = tasks + tuple(t for t in DOMAIN_TASKS.get(domain.name, ()) if t not in tasks)
    from dispo.generate.progress import current_label, progress_label

    with progress_label(current_label(f"arm {arm}")):  # a caller's label (falsify's) wins
        gens = generate_texts(
            lm, items, decoding, seed=seed, intervention=intervention, system_prompt=system_prompt, progress=progress
        )
    outputs = [g.output for g in gens]
    content = domain.content_scores(items, outputs, judge)
    judged = score_tasks(judge, items, outputs, tasks)
    samples = build_samples(
        items,
        gens,
        content,
        judged,
        system_prompt,
        extra={"arm": arm, "intervention": intervention} if intervention else {"arm": arm},
    )
    if run is not None:
        run.write_samples(arm, samples)
        run.complete_stage(
            stage,
            {
                "n": len(samples),
                "model": lm.describe(),
                "judge": judge.describe(),
                "decoding": decoding,
                "seed": seed,
                "intervention": intervention,
                "system_prompt": system_prompt,
                "domain": {"name": domain.name, "version": getattr(domain, "version", None)},
                "tasks": list(tasks),
                "generated": sum(1 for g in gens if not g.cached),
                "cached": sum(1 for g in gens if g.cached),
                "generated_tokens": sum(g.n_tokens for g in gens if not g.cached),
                # False when every response came from the cache: the weights were never loaded
                "model_loaded": bool(getattr(lm, "loaded", True)),
            },
        )
    return samples
