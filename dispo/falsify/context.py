"""What falsify knows about a run: its claims, arms, provenance, and how to regenerate an arm."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

# regenerate(arm, decoding, seed, ids=None) -> scored samples (of the items `ids` only, when
# given), or None when the arm cannot be regenerated
Regenerate = Callable[..., "list[dict] | None"]


@dataclass
class FalsifyContext:
    run: Any
    cfg: dict  # the falsify settings (dispo/conf/falsify)
    arms: dict[str, list[dict]]
    provenance: dict[str, dict]  # arm -> stage info (model, judge, decoding, system prompt, intervention)
    regenerate: Regenerate | None
    why_no_model: str | None = None
    # (samples, judge name, tasks, judge options) -> (re-scored samples, {"judge": describe(), "items_rescored": n});
    # raises NotChecked when re-scoring cannot run here
    rescore: Callable[[list[dict], str, list[str], dict], tuple[list[dict], dict]] | None = None
    cache: dict = field(default_factory=dict)

    def regen(self, arm: str, decoding: dict, seed: int, ids: list[str] | None = None) -> list[dict] | None:
        """The arm regenerated (only the items `ids`, when given), memoised for this falsify run."""
        key = (arm, tuple(sorted(decoding.items())), seed, tuple(ids) if ids is not None else None)
        if key not in self.cache:
            if self.regenerate is None:
                self.cache[key] = None
            elif ids is None:
                self.cache[key] = self.regenerate(arm, decoding, seed)
            else:
                self.cache[key] = self.regenerate(arm, decoding, seed, ids=list(ids))
        return self.cache[key]

    def decoding_of(self, arm: str) -> dict:
        prov = self.provenance.get(arm) or {}
        dec = prov.get("decoding") or (self.run.config.get("decoding") if self.run else None) or {}
        if not dec:
            s = next(iter(self.arms.get(arm) or []), {})
            dec = s.get("decoding") or {}
        return dict(dec)


def arm_provenance(run) -> dict[str, dict]:
    stages = run.manifest.get("stages") or {}
    return {name.split(":", 1)[1]: info for name, info in stages.items() if name.startswith("arm:")}


def model_regenerator(run, provenance: dict[str, dict], progress: bool = True) -> tuple[Regenerate | None, str | None]:
    """A regenerate function for a dispo-made run, or (None, why) when there is no model."""
    m = run.manifest
    cfg = run.config
    if m.get("has_model") is False or (cfg.get("model") or {}).get("name") == "import":
        return None, "imported run: no model to regenerate with"
    if not provenance:
        return None, "the run records no per-arm generation provenance"

    from dispo.domains.base import items_by_id
    from dispo.evaluation.eval_run import make_domain, make_judge

    state: dict[str, Any] = {}

    def regenerate(arm: str, decoding: dict, seed: int, ids: list[str] | None = None) -> list[dict] | None:
        from dispo.evaluation.evaluate import evaluate_arm
        from dispo.models.loading import load_model

        prov = provenance.get(arm)
        if prov is None:
            return None
        if "domain" not in state:
            state["domain"] = make_domain(cfg)
            state["judge"] = make_judge(cfg)
            state["items"] = items_by_id(state["domain"])
        stored = [s["id"] for s in run.read_samples(arm)]
        wanted = stored if ids is None else [i for i in stored if i in set(ids)]
        items = [state["items"][i] for i in wanted if i in state["items"]]
        if len(items) != len(wanted) or (ids is not None and len(wanted) != len(set(ids))):
            return None  # items not reproducible from the domain (e.g. multi-turn feedback arms)
        adapter = (prov.get("model") or {}).get("adapter")
        key = ("lm", adapter)
        if state.get("lm_key") != key:
            state.pop("lm", None)
            state["lm"] = load_model(dict(cfg["model"]), adapter=adapter, device=cfg.get("device") or None)
            state["lm_key"] = key
        lm = state["lm"]
        intervention = prov.get("intervention")
        from dispo.generate.progress import progress_label

        ctx = _intervention_context(lm, intervention)
        with ctx, progress_label(f"falsify: regenerate {arm} (seed {seed})"):
            return evaluate_arm(
                None,
                arm,
                lm,
                state["domain"],
                items,
                cfg,
                state["judge"],
                decoding=decoding,
                seed=seed,
                intervention=intervention,
                system_prompt=prov.get("system_prompt"),
                tasks=prov.get("tasks"),
                progress=progress,
            )

    return regenerate, None


def _intervention_context(lm, intervention: dict | None):
    import contextlib

    if not intervention:
        return contextlib.nullcontext()
    if "tempering" in intervention:
        from dispo.interventions.tempering import temper

        t = intervention["tempering"]
        return temper(lm.model, [tuple(h) for h in t["heads"]], float(t["lambda"]))  # as tempering_spec writes it
    raise ValueError(f"unknown intervention {sorted(intervention)}")


class NotChecked(Exception):
    """A check applies but cannot run here (no responses, no checklist, a judge without the
    task): the claim gets "not checked" with this reason, never a pass."""
