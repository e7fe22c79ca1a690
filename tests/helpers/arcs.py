"""Arc runs the arc tests share: arc 1 sized for the tiny models, arc 2 run through its recipe."""

from __future__ import annotations

from pathlib import Path


def tiny_arc1_config(tmp_path: Path, model: str = "tiny-llama", *extra: str) -> dict:
    """Arc 1 on a tiny model in seconds: a few items, a couple of optimizer steps, tiny-llama
    teachers; `extra` overrides (e.g. protocol=paper) come after these and win."""
    from dispo.core.config import compose_config

    ov = [
        f"model={model}",
        "arc.preset=smoke",
        "decoding.max_new_tokens=6",
        "limit=4",
        "arc.train_limit=6",
        "arc.sft.max_steps=2",
        "arc.dpo.max_steps=1",
        "arc.teachers.decoding.max_new_tokens=6",
        "arc.sft.max_length=96",
        "arc.dpo.max_length=96",
        "arc.sft.progress=false",
        "arc.dpo.progress=false",
        "arc.progress=false",
        f"output_dir={tmp_path}",
    ]
    ov += [f"arc.teachers.stages.{s}.model=tiny-llama" for s in ("eager", "deliberate", "adversarial", "synthesizer")]
    return compose_config(ov + list(extra), base={"arc": "arc1"})


def run_arc2(recipe_module, tmp_path: Path, cfg: dict):
    """Run arc 2's recipe in-process (setup, run, cleanup always); returns (run, output)."""
    from dispo.core.runs import Run

    cfg = dict(cfg, progress=False)
    run = Run.create("train-arc2", cfg, cfg["model"]["name"], root=tmp_path)
    rec = recipe_module.Arc2Tempering(cfg, run)
    rec.setup()
    try:
        out = rec.run()
    finally:
        rec.cleanup()
    return run, out
