"""Resume inside a training stage: arc 1 SIGKILLed in the middle of LoRA SFT and again in the
middle of LoRA DPO continues each from its last trainer checkpoint, and ends with the same
adapters, loss histories, samples and results as an uninterrupted run."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from tests.helpers.relhelp import (
    comparable_results,
    comparable_samples,
    env_for,
    make_cache,
    popen_dispo,
    run_dispo,
    watch,
)
from tests.reliability.test_crash_resume import ARC1, _After

pytestmark = pytest.mark.slow

# 4 SFT and 4 DPO optimizer steps, a checkpoint every 2: a kill just after the first
# checkpoint lands with two steps (seconds on a 2-core machine) still to go.
TRAIN = ARC1 + ["arc.sft.max_steps=4", "arc.sft.save_steps=2", "arc.dpo.max_steps=4", "arc.dpo.save_steps=2"]


def _checkpoints(runs: Path, stage: str) -> list[Path]:
    return sorted(runs.glob(f"*/artifacts/checkpoints/{stage}/checkpoint-*"))


def _stage_status(run: Path) -> dict:
    return {k: v.get("status") for k, v in json.loads((run / "manifest.json").read_text())["stages"].items()}


def _tensors(adapter: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(adapter / "adapter_model.safetensors"))


def _history(run: Path, name: str) -> list[dict]:
    return json.loads((run / "artifacts" / f"{name}_log.json").read_text())["history"]


@pytest.mark.full
def test_arc1_killed_mid_sft_and_mid_dpo_resumes_from_checkpoints_and_equals_uninterrupted(tmp_path):
    """Protects: trainer checkpoints (dispo.arcs.arc1.checkpoints: staged, published atomically,
    newest kept) and `resume_from_checkpoint` in train_sft/train_dpo. Kill 1 lands after an SFT
    checkpoint exists and before SFT ends; the resumed process starts SFT at that checkpoint's
    step (> 0), then kill 2 lands mid-DPO likewise. The final adapters (every tensor), the SFT
    and DPO loss histories, samples and results equal an uninterrupted run's; no file outside
    a temp dir is ever seen half-written; the checkpoints are gone once the run completes."""
    import torch

    rng = random.Random(int(os.environ.get("DISPO_KILL_SEED", "9")))
    env_ref = env_for(make_cache(tmp_path / "cache_ref"))
    ref_runs = tmp_path / "ref"
    p = run_dispo(TRAIN + [f"output_dir={ref_runs}"], tmp_path, env_ref, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    (ref,) = [d for d in ref_runs.iterdir() if d.is_dir()]
    assert json.loads((ref / "artifacts" / "sft_log.json").read_text())["resumed_from_step"] == 0

    env = env_for(make_cache(tmp_path / "cache"))
    runs = tmp_path / "runs"
    args = TRAIN + [f"output_dir={runs}"]
    resumed_at = {}
    for i, stage in enumerate(("sft", "dpo")):
        w = watch(
            popen_dispo(args + (["--resume"] if i else []), tmp_path, env),
            [runs],
            kill_when=_After(lambda stage=stage: bool(_checkpoints(runs, stage)), rng.uniform(0, 0.1)),
            timeout=600,
        )
        assert w["bad"] == [], w["bad"][:5]
        assert w["killed"] and w["rc"] == -9, f"no kill during {stage} (rc {w['rc']}): {w['stderr'][-800:]}"
        (run,) = [d for d in runs.iterdir() if d.is_dir()]
        assert _stage_status(run).get(stage) != "done", f"kill landed after {stage} finished; slow the test down"
        ckpts = _checkpoints(runs, stage)
        assert len(ckpts) == 1, ckpts  # only the newest is kept
        assert (ckpts[0] / "trainer_state.json").exists() and (ckpts[0] / "optimizer.pt").exists()
        resumed_at[stage] = json.loads((ckpts[0] / "trainer_state.json").read_text())["global_step"]
        assert resumed_at[stage] > 0

    w = watch(popen_dispo(args + ["--resume"], tmp_path, env), [runs], timeout=600)
    assert w["rc"] == 0, w["stderr"][-2000:]
    assert w["bad"] == [], w["bad"][:5]
    m = json.loads((run / "manifest.json").read_text())
    assert m["status"] == "completed" and len(m["resumed"]) == 2
    for stage in ("sft", "dpo"):
        log = json.loads((run / "artifacts" / f"{stage}_log.json").read_text())
        assert log["resumed_from_step"] == resumed_at[stage], (stage, log["resumed_from_step"], resumed_at)
        assert _history(run, stage) == _history(ref, stage), f"{stage} loss history differs"
        assert [h["step"] for h in _history(run, stage)] == list(range(1, log["steps"] + 1))
    for adapter in ("adapter_sft", "adapter"):
        a, b = _tensors(run / "artifacts" / adapter), _tensors(ref / "artifacts" / adapter)
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), f"{adapter} weights differ from the uninterrupted run"
    assert comparable_samples(run) == comparable_samples(ref)

    def untimed(res: dict) -> dict:
        for info in res.get("training", {}).values():
            info.pop("finished", None), info.pop("seconds", None)
        return res

    assert untimed(comparable_results(run)) == untimed(comparable_results(ref))
    assert not (run / "artifacts" / "checkpoints" / "sft").exists()
    assert not [p for p in (run / "artifacts").rglob("*") if p.name.endswith(".tmp")]
