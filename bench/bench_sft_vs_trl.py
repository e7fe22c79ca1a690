"""LoRA SFT throughput: dispo's training path (dispo.arcs.arc1.training.train_sft) vs a plain TRL script.

Same model (embedded smollm2-135m), same ~32 short chat examples, 1 epoch, LoRA r 8 / alpha 16
on the attention projections, batch 4, no accumulation, lr 2e-4, cosine, seed 0, fp32 CPU.
Differences that are the point of dispo's path: it tokenises each example itself with the
answer-only label mask (TRL's plain script trains on the whole sequence), and measures the
masked loss before/after (timed separately, not in the training time).

Training time is taken from trainer callbacks (on_train_begin -> on_train_end) in both, so
model loading and dataset preparation are excluded; tokens/s = sequence tokens (all input
ids, what forward/backward process) per second of training.

    .venv/bin/python bench/bench_sft_vs_trl.py [--n 32] [--epochs 1] [--repeats 3] [--profile]

Each side trains --repeats times, alternating (TRL, dispo, TRL, dispo, ...), and the ratio is
of the median tokens/s: one ~15-second run each moved the ratio by +-5% on 2 cores.

Writes bench/results/sft_vs_trl.json (or $DISPO_BENCH_RESULTS/...).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_vs_lm_eval import _local_dir, machine, out_path  # noqa: E402

SETTINGS = dict(
    r=8,
    alpha=16,
    dropout=0.0,
    lr=2e-4,
    epochs=1,
    batch_size=4,
    effective_batch=4,
    scheduler="cosine",
    warmup_ratio=0.0,
    max_length=512,
    modules="attention",
    progress=False,
)


def conversations(n: int) -> list[list[dict]]:
    """Short chef Q&A: the prompt, answered with its gold checklist (deterministic)."""
    from dispo.domains import get_domain

    out = []
    try:
        items = get_domain("chef").items("eval", n)
        for it in items:
            ans = "; ".join((it.gold or {}).get("checklist") or []) or "Taste and adjust the seasoning."
            out.append([{"role": "user", "content": it.prompt}, {"role": "assistant", "content": ans}])
    except Exception:  # noqa: BLE001 - fall back to synthetic examples
        pass
    i = 0
    while len(out) < n:  # synthetic fill-up
        out.append(
            [
                {"role": "user", "content": f"How long should I rest a {i + 1} kg roast?"},
                {"role": "assistant", "content": f"About {10 + i} minutes, loosely covered, so the juices settle."},
            ]
        )
        i += 1
    return out[:n]


def _timer(profile: bool = False):
    """Times training (on_train_begin -> on_train_end) and each optimizer step; with `profile`,
    torch.profiler records the CPU ops of the training only (`.ops`: self CPU seconds by op)."""
    from transformers import TrainerCallback

    class T(TrainerCallback):
        t0 = t1 = None

        def __init__(self):
            self.steps: list[float] = []
            self.ops: dict[str, float] = {}
            self._prof = self._s0 = None

        def on_train_begin(self, args, state, control, **kw):
            if profile:
                from torch.profiler import ProfilerActivity
                from torch.profiler import profile as torch_profile

                self._prof = torch_profile(activities=[ProfilerActivity.CPU])
                self._prof.__enter__()
            self.t0 = time.perf_counter()

        def on_step_begin(self, args, state, control, **kw):
            self._s0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            self.steps.append(time.perf_counter() - self._s0)

        def on_train_end(self, args, state, control, **kw):
            self.t1 = time.perf_counter()
            if self._prof is not None:
                self._prof.__exit__(None, None, None)
                for e in self._prof.key_averages():
                    self.ops[e.key] = self.ops.get(e.key, 0.0) + e.self_cpu_time_total / 1e6

    return T()


def _step_split(cb, train_s: float) -> dict:
    """Where training time went: inside optimizer steps (forward, backward, optimizer) vs
    between them (data loading, collation, logging, callbacks)."""
    inside = sum(cb.steps)
    out = {"step_seconds_total": round(inside, 2), "between_steps_seconds": round(train_s - inside, 2)}
    if cb.ops:
        total = sum(cb.ops.values())
        top = sorted(cb.ops.items(), key=lambda kv: -kv[1])[:12]
        out["top_ops_self_cpu_share"] = {k: round(v / total, 3) for k, v in top}
    return out


def run_dispo(name: str, convs: list, tmp: Path, profile: bool = False) -> dict:
    from dispo.arcs.arc1.training import build_sft_example, train_sft
    from dispo.models.loading import load_model

    lm = load_model(name)
    ex = [build_sft_example(lm, m, think="keep", max_length=SETTINGS["max_length"]) for m in convs]
    seq_tokens = sum(len(e["input_ids"]) for e in ex)
    cb = _timer(profile)
    t0 = time.perf_counter()
    info = train_sft(lm, convs, tmp / "dispo_adapter", dict(SETTINGS), seed=0, callbacks=[cb])
    wall = time.perf_counter() - t0
    train_s = cb.t1 - cb.t0
    return {
        "train_seconds": round(train_s, 2),
        "seq_tokens": seq_tokens * SETTINGS["epochs"],
        "tokens_per_s": round(seq_tokens * SETTINGS["epochs"] / train_s, 1),
        "trainable_tokens": info.get("trainable_tokens"),
        "steps": info.get("steps"),
        "loss_first": (info.get("history") or [{}])[0].get("loss"),
        "loss_last": (info.get("history") or [{}])[-1].get("loss"),
        "masked_loss_before": round(info["loss_before"], 4),
        "masked_loss_after": round(info["loss_after"], 4),
        "wall_seconds_incl_loss_evals": round(wall, 2),
        **_step_split(cb, train_s),
    }


def run_trl(model_dir: Path, convs: list, tmp: Path, targets: list[str], profile: bool = False) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed
    from trl import SFTConfig, SFTTrainer

    set_seed(0)
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    args = SFTConfig(
        output_dir=str(tmp / "trl_out"),
        num_train_epochs=SETTINGS["epochs"],
        per_device_train_batch_size=SETTINGS["batch_size"],
        gradient_accumulation_steps=1,
        learning_rate=SETTINGS["lr"],
        lr_scheduler_type="cosine",
        warmup_steps=0,
        max_length=SETTINGS["max_length"],
        packing=False,
        seed=0,
        data_seed=0,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
        # TRL's own defaults are bf16=True and gradient_checkpointing=True: left on, the "plain"
        # side trained in bf16 autocast (2-3x faster matmuls on a CPU with AVX512-BF16) and the
        # ratio compared two numeric settings. Both sides: fp32, no checkpointing (dispo's).
        bf16=False,
        gradient_checkpointing=False,
    )
    peft = LoraConfig(
        r=SETTINGS["r"],
        lora_alpha=SETTINGS["alpha"],
        lora_dropout=SETTINGS["dropout"],
        target_modules=targets,
        bias="none",
        task_type="CAUSAL_LM",
    )
    cb = _timer(profile)
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list([{"messages": m} for m in convs]),
        processing_class=tok,
        peft_config=peft,
        callbacks=[cb],
    )
    seq_tokens = sum(len(x) for x in trainer.train_dataset["input_ids"])
    cols = trainer.train_dataset.column_names
    trainable = (
        sum(sum(1 for t in x if t != -100) for x in trainer.train_dataset["labels"]) if "labels" in cols else seq_tokens
    )
    trainer.train()
    train_s = cb.t1 - cb.t0
    hist = [h for h in trainer.state.log_history if "loss" in h]
    return {
        "train_seconds": round(train_s, 2),
        "seq_tokens": seq_tokens * SETTINGS["epochs"],
        "tokens_per_s": round(seq_tokens * SETTINGS["epochs"] / train_s, 1),
        "trainable_tokens": trainable,
        "steps": trainer.state.global_step,
        "loss_first": hist[0]["loss"] if hist else None,
        "loss_last": hist[-1]["loss"] if hist else None,
        **_step_split(cb, train_s),
    }


def _median_run(runs: list[dict]) -> dict:
    """The run with the median tokens/s (the lower middle one for an even count)."""
    return sorted(runs, key=lambda r: r["tokens_per_s"])[(len(runs) - 1) // 2]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--repeats", type=int, default=3, help="trainings per side, alternating; medians compared")
    ap.add_argument(
        "--profile",
        action="store_true",
        help='then one more training per side under torch.profiler: "profile" in the JSON',
    )
    a = ap.parse_args(argv)
    SETTINGS["epochs"] = a.epochs
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from dispo.models.registry import get_spec

    convs = conversations(a.n)
    model_dir = _local_dir(a.model)
    targets = list(get_spec(a.model)["lora_targets"]["attention"])
    trls, dsps = [], []
    for _ in range(max(1, a.repeats)):
        with tempfile.TemporaryDirectory() as t:
            tmp = Path(t)
            trls.append(run_trl(model_dir, convs, tmp, targets))  # TRL first: a warm-up cost lands on it
            dsps.append(run_dispo(a.model, convs, tmp))
    trl, dsp = _median_run(trls), _median_run(dsps)
    result = {
        "name": "sft_vs_trl",
        "title": "LoRA SFT tokens/s: dispo.arcs.arc1.training vs plain TRL SFTTrainer",
        "machine": machine(),
        "settings": {
            "model": a.model,
            "examples": len(convs),
            "lora_targets": targets,
            "repeats": a.repeats,
            **SETTINGS,
        },
        "dispo": dsp,
        "trl": trl,
        "ratio_dispo_over_trl": round(dsp["tokens_per_s"] / trl["tokens_per_s"], 2),
        "repeats": {
            "trl_tokens_per_s": [r["tokens_per_s"] for r in trls],
            "dispo_tokens_per_s": [r["tokens_per_s"] for r in dsps],
        },
        "rows": [
            {
                "side": "dispo.arcs.arc1.training.train_sft",
                **{
                    k: dsp[k]
                    for k in ("train_seconds", "seq_tokens", "tokens_per_s", "trainable_tokens", "steps", "loss_last")
                },
            },
            {
                "side": "TRL SFTTrainer (plain)",
                **{
                    k: trl[k]
                    for k in ("train_seconds", "seq_tokens", "tokens_per_s", "trainable_tokens", "steps", "loss_last")
                },
            },
        ],
        "notes": "dispo masks the prompt (loss on the answer only); plain TRL on 'messages' trains on every token, "
        "so the losses are not comparable, the compute per token is.",
    }
    if a.profile:
        with tempfile.TemporaryDirectory() as t:
            profiled = {
                "trl": run_trl(model_dir, convs, Path(t), targets, profile=True),
                "dispo": run_dispo(a.model, convs, Path(t), profile=True),
            }
        result["profile"] = {
            side: {k: v for k, v in r.items() if k in ("train_seconds", "step_seconds_total", "between_steps_seconds")}
            | {"top_ops_self_cpu_share": r.get("top_ops_self_cpu_share")}
            for side, r in profiled.items()
        }
    p = a.out or out_path("sft_vs_trl")
    p.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("dispo", "trl", "ratio_dispo_over_trl")}, indent=2))
    print(f"wrote {p}")
    return result


if __name__ == "__main__":
    main()
