"""Build a teacher-generated prompt pool from the composed config (`pool:` block).

The pool logic (requests, parsing, de-duplication, checklists, files) is domain-level
(`dispo.domains.prompt_pool`); this module adds what needs arc 1's teacher backends: the
scenario teacher at `pool.decoding` and the checklist teacher at `pool.checklist_decoding`
(same model, one loaded copy), built with `build_teacher` (`hf` local model or `openai`
endpoint). Used by arc 1's `pool` stage (arc.train_pool=generated) and by `dispo pool`.
"""

from __future__ import annotations

import hashlib
from typing import Any

from dispo.core.errors import ConfigError


def pool_settings(cfg: dict, split: str):
    from dispo.domains.prompt_pool import DedupRule, PoolSettings

    pc = cfg.get("pool") or {}
    return PoolSettings(
        split=split,
        per_fact=pc.get("per_fact", 6),
        max_facts=pc.get("max_facts"),
        min_chars=pc.get("min_chars", 40),
        dedup=DedupRule.from_config(pc.get("dedup")),
    )


def pool_teachers(cfg: dict, progress: bool = False):
    """(scenario teacher, checklist teacher) from `pool.teacher`; they share one loaded model."""
    from dispo.arcs.arc1.teachers import build_teacher, shared_model_loader

    pc = cfg.get("pool") or {}
    tcfg = pc.get("teacher")
    if not isinstance(tcfg, dict) or not tcfg.get("model"):
        raise ConfigError(
            "pool.teacher needs a model (e.g. pool.teacher.model=smollm2-135m, or backend=openai + base_url)"
        )
    tcfg = {k: v for k, v in tcfg.items() if v is not None}
    shared_loader = shared_model_loader()

    seed = int(cfg.get("seed", 0))
    dec = dict(pc.get("decoding") or {})
    scen = build_teacher(tcfg, dec, seed=seed, loader=shared_loader, progress=progress)
    check = build_teacher(tcfg, {**dec, **(pc.get("checklist_decoding") or {})}, seed=seed, loader=shared_loader)
    return scen, check


def check_pool_config(cfg: dict, split: str):
    """(settings, prompts) of pool `split`, or one ConfigError line; nothing is generated."""
    from dispo.domains.prompt_pool import POOL_SPLITS, PoolPrompts

    name = (cfg.get("domain") or {}).get("name")
    if name != "chef":
        raise ConfigError(
            f"teacher-generated prompt pools exist for domain=chef only (got domain={name}); the paper's "
            "release has no generator for its 1,250 coding prompts (docs/fidelity.md)"
        )
    if split not in POOL_SPLITS:
        raise ConfigError(f"split={split} is not a generated pool; valid: {', '.join(POOL_SPLITS)}")
    pc = cfg.get("pool") or {}
    return pool_settings(cfg, split), PoolPrompts.load(pc.get("prompts", "dispo"), pc.get("paper_repo"))


def build_pool(cfg: dict, split: str, run: Any = None, teacher: Any = None, checklist_teacher: Any = None, domain=None):
    """Generate (or, when every answer is cached, rebuild without a teacher call) pool `split`
    of cfg's domain under `pool.dir`; record the prompts' sha256 and the pool in `run`."""
    from dispo.core.paper_source import record_used
    from dispo.domains.prompt_pool import generate_chef_pool, pool_paths

    settings, prompts = check_pool_config(cfg, split)
    pc = cfg.get("pool") or {}
    if domain is None:
        from dispo.evaluation.eval_run import make_domain

        domain = make_domain(cfg)
    if teacher is None:
        teacher, checklist_teacher = pool_teachers(cfg, progress=bool((cfg.get("arc") or {}).get("progress", False)))
    from dispo.domains.chef import load_kb

    pool_dir = getattr(domain, "pool_dir", None) or pc.get("dir")  # where the domain will read it
    if not pool_dir:
        raise ConfigError("pool.dir is not set; pass pool.dir=DIR")
    report = generate_chef_pool(
        load_kb(domain.kb_dir),
        settings,
        teacher,
        prompts,
        pool_dir,
        checklist_teacher=checklist_teacher,
        seed=int(cfg.get("seed", 0)),
    )
    if run is not None:
        record_used(run, list(prompts.instruments))  # protocol=paper: the release's prompts + sha256
        items = pool_paths(pool_dir, split)["items"]
        pools = dict(run.manifest.get("prompt_pools") or {})
        pools[split] = {
            "path": str(items),
            "sha256": hashlib.sha256(items.read_bytes()).hexdigest(),
            "items": report.items,
            "prompts": report.prompts,
        }
        run.record("prompt_pools", pools)
    return report
