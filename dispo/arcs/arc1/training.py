"""LoRA SFT and LoRA DPO with TRL/PEFT (Arc 1's training steps).

SFT examples are tokenised here, not by TRL's `assistant_only_loss`: that option needs
`{% generation %}` markers in the chat template, which SmolLM2 (and most small-model templates)
lack, so it fails or masks everything. Instead each example is built as

    prompt tokens      = the chat template's rendering of the messages before the answer, with
                         the generation prompt - the exact text the model sees at inference
    completion tokens  = the assistant's content + the template's end-of-turn token

and the labels are -100 on the prompt. `check_label_masks` refuses any example whose label
mask is empty (e.g. a prompt that alone fills max_length), with a message that says which.
`think` decides what happens to `<think>...</think>` blocks in the answer: keep (trained on),
strip (removed from the text), mask (kept in the input but no loss on them, the paper's
think-block-masked variant).

DPO continues the SFT adapter on (prompt, chosen, rejected) pairs. The reference is the base
model with the adapter disabled (the paper's setting, `reference: base`); TRL 1.16's own default
for a PeftModel is a frozen copy of the starting adapter (`reference: sft`).

Both trainers run with a fixed seed, logging every step; the loss history is written as JSON
beside the adapter (`<name>_log.json`), plus the masked mean loss over the training set
before and after training (`loss_before`, `loss_after`).
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path
from typing import Any, Sequence

from dispo.arcs.arc1 import checkpoints as train_checkpoints
from dispo.core.errors import ConfigError, DispoError

THINK_MODES = ("keep", "strip", "mask")
_THINK_RE = re.compile(r"<think>.*?(?:</think>|$)\s*", re.DOTALL)
_SENTINEL = "\u2063DISPO_ANSWER_SENTINEL\u2063"


def sft_defaults() -> dict[str, Any]:
    """arc.sft as dispo/conf/arc/arc1.yaml states it (the one place the paper's settings live)."""
    from dispo.arcs.base import arc_defaults

    return arc_defaults("arc1")["sft"]


def dpo_defaults() -> dict[str, Any]:
    """arc.dpo as dispo/conf/arc/arc1.yaml states it, without the arc's on/off switch."""
    from dispo.arcs.base import arc_defaults

    return {k: v for k, v in arc_defaults("arc1")["dpo"].items() if k != "enabled"}


# --------------------------------------------------------------------------- tokenising


def strip_think(text: str) -> str:
    """Remove <think>...</think> blocks (an unclosed one runs to the end)."""
    return _THINK_RE.sub("", text)


def _template_kwargs(lm: Any) -> dict:
    return dict(getattr(lm, "chat_template_kwargs", None) or {})


def render_prompt_completion(lm: Any, messages: Sequence[dict], answer: str) -> tuple[str, str]:
    """(prompt text exactly as at inference, completion text = answer + end-of-turn).

    The end of turn is taken from the template itself (render a sentinel answer, keep what
    follows it up to and including the eos token), so it works for any chat template.
    """
    tok = lm.tokenizer
    msgs = [dict(m) for m in messages]
    if getattr(tok, "chat_template", None):
        kw = _template_kwargs(lm)
        prompt = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True, **kw)
        full = tok.apply_chat_template(
            msgs + [{"role": "assistant", "content": _SENTINEL}], tokenize=False, add_generation_prompt=False, **kw
        )
        if _SENTINEL not in full:
            raise DispoError("the chat template drops the assistant answer; cannot build SFT examples with it")
        suffix = full.split(_SENTINEL, 1)[1]
        eos = tok.eos_token or ""
        if eos and eos in suffix:
            suffix = suffix[: suffix.index(eos) + len(eos)]
        elif not suffix.strip():
            suffix = eos
    else:  # base model without a template: the same plain rendering LoadedModel.render uses
        prompt = "\n\n".join(m["content"] for m in msgs) + "\n\n"
        suffix = tok.eos_token or ""
    return prompt, answer + suffix


def _think_segments(text: str) -> list[tuple[str, bool]]:
    """Split text into (segment, trainable) with think blocks (tags included) untrainable."""
    out: list[tuple[str, bool]] = []
    pos = 0
    for m in re.finditer(r"<think>.*?(?:</think>\s*|$)", text, re.DOTALL):
        if m.start() > pos:
            out.append((text[pos : m.start()], True))
        out.append((m.group(0), False))
        pos = m.end()
    if pos < len(text):
        out.append((text[pos:], True))
    return out


LOSS_ON = ("completion", "full")


def build_sft_example(
    lm: Any,
    messages: Sequence[dict],
    *,
    think: str = "keep",
    max_length: int | None = None,
    loss_on: str = "completion",
) -> dict[str, list[int]]:
    """Tokenise one conversation whose last message is the assistant's answer.

    Returns {"input_ids", "labels"} with labels -100 everywhere except the answer tokens
    (loss_on="completion", dispo's default), or on every token (loss_on="full": the paper
    trained on the whole rendered chat, training/train_sft.py:61-69,89).
    """
    if think not in THINK_MODES:
        raise ConfigError(f"arc.sft.think={think!r}; valid: {', '.join(THINK_MODES)}")
    if loss_on not in LOSS_ON:
        raise ConfigError(f"arc.sft.loss_on={loss_on!r}; valid: {', '.join(LOSS_ON)}")
    if not messages or messages[-1].get("role") != "assistant":
        raise DispoError("an SFT example must end with an assistant message")
    answer = messages[-1]["content"]
    if think == "strip":
        answer = strip_think(answer)
    prompt, completion = render_prompt_completion(lm, messages[:-1], answer)
    tok = lm.tokenizer
    prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    ids: list[int] = list(prompt_ids)
    labels: list[int] = [-100] * len(prompt_ids)
    segments = _think_segments(completion) if think == "mask" else [(completion, True)]
    for text, trainable in segments:
        seg = tok(text, add_special_tokens=False)["input_ids"]
        ids.extend(seg)
        labels.extend(seg if trainable else [-100] * len(seg))
    if loss_on == "full":
        labels = list(ids)
    if max_length is not None and len(ids) > max_length:
        ids, labels = ids[:max_length], labels[:max_length]
    return {"input_ids": ids, "labels": labels, "n_prompt": len(prompt_ids)}


def check_label_masks(examples: Sequence[dict], max_length: int | None = None) -> None:
    """Raise if any example has no token with a label (nothing to learn, or a broken mask)."""
    bad = [i for i, e in enumerate(examples) if not any(t != -100 for t in e["labels"])]
    if bad:
        e = examples[bad[0]]
        why = (
            f"its prompt alone is {e.get('n_prompt', '?')} tokens and max_length={max_length}"
            if max_length is not None and e.get("n_prompt", 0) >= max_length
            else "its answer is empty or entirely inside <think> with think=mask"
        )
        raise DispoError(
            f"{len(bad)} of {len(examples)} SFT examples have an empty loss mask (first: #{bad[0]}; {why}); "
            f"raise arc.sft.max_length, shorten the prompts, or drop those examples"
        )


# --------------------------------------------------------------------------- LoRA


def lora_targets(spec: dict, modules: str) -> list[str]:
    targets = spec.get("lora_targets") or {}
    if modules not in targets:
        raise ConfigError(
            f"arc.sft.modules={modules!r}; model {spec.get('name')} defines lora_targets: "
            f"{', '.join(targets) or 'none'}"
        )
    return list(targets[modules])


def lora_config(
    spec: dict, modules: str = "attention", r: int = 64, alpha: int = 128, dropout: float = 0.05, model: Any = None
):
    """PEFT LoraConfig with the model spec's targets; checks each target exists in `model`."""
    from peft import LoraConfig

    targets = lora_targets(spec, modules)
    if model is not None:
        leaf = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
        missing = [t for t in targets if t not in leaf]
        if missing:
            raise ConfigError(
                f"LoRA targets {missing} not found in model {spec.get('name')}; "
                f"fix lora_targets.{modules} in its dispo/conf/model yaml"
            )
    return LoraConfig(
        r=int(r),
        lora_alpha=int(alpha),
        lora_dropout=float(dropout),
        target_modules=targets,
        bias="none",
        task_type="CAUSAL_LM",
    )


# --------------------------------------------------------------------------- helpers


def _accum(c: dict) -> int:
    return max(1, int(math.ceil(int(c["effective_batch"]) / max(1, int(c["batch_size"])))))


def _use_cpu() -> bool:
    import torch

    return not torch.cuda.is_available()


def masked_mean_loss(model: Any, examples: Sequence[dict], pad_id: int, batch_size: int = 8) -> float:
    """Mean NLL over labelled tokens of `examples` (token-weighted), no gradients."""
    import torch

    model_was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    tot, n = 0.0, 0
    with torch.no_grad():
        for b in range(0, len(examples), batch_size):
            batch = examples[b : b + batch_size]
            L = max(len(e["input_ids"]) for e in batch)
            ids = torch.full((len(batch), L), pad_id, dtype=torch.long)
            lab = torch.full((len(batch), L), -100, dtype=torch.long)
            att = torch.zeros((len(batch), L), dtype=torch.long)
            for i, e in enumerate(batch):  # right padding: positions stay 0..n-1
                k = len(e["input_ids"])
                ids[i, :k] = torch.tensor(e["input_ids"])
                lab[i, :k] = torch.tensor(e["labels"])
                att[i, :k] = 1
            logits = model(input_ids=ids.to(dev), attention_mask=att.to(dev)).logits.float()
            tgt = lab[:, 1:].to(dev)
            lp = torch.nn.functional.cross_entropy(
                logits[:, :-1].reshape(-1, logits.size(-1)), tgt.reshape(-1), ignore_index=-100, reduction="sum"
            )
            tot += float(lp)
            n += int((tgt != -100).sum())
    if model_was_training:
        model.train()
    return tot / max(n, 1)


def _losses(log_history: list[dict]) -> list[dict]:
    return [
        {
            k: v
            for k, v in h.items()
            if k in ("step", "epoch", "loss", "learning_rate", "grad_norm", "rewards/accuracies", "rewards/margins")
        }
        for h in log_history
        if "loss" in h
    ]


# --------------------------------------------------------------------------- SFT


def _trainer_args(
    c: dict, out_dir: Path, seed: int, max_length: int | None, checkpoint_dir: Path | None = None
) -> dict:
    """TrainingArguments shared by SFT and DPO: schedule, seeds, CPU/fp32, per-step logging.
    With `checkpoint_dir`, a checkpoint every `save_steps` optimizer steps, written to a staging
    dir and published atomically (dispo.train_checkpoints); without, no checkpoints."""
    if checkpoint_dir is not None:
        save = dict(
            output_dir=str(train_checkpoints.staging_dir(checkpoint_dir)),
            save_strategy="steps",
            save_steps=int(c["save_steps"]),
            save_total_limit=None,
        )
    else:
        save = dict(output_dir=str(out_dir.parent / f".{out_dir.name}_trainer"), save_strategy="no")
    return dict(
        num_train_epochs=float(c["epochs"]),
        max_steps=int(c["max_steps"]),
        per_device_train_batch_size=int(c["batch_size"]),
        gradient_accumulation_steps=_accum(c),
        learning_rate=float(c["lr"]),
        lr_scheduler_type=c["scheduler"],
        warmup_steps=float(c["warmup_ratio"]),
        max_length=max_length,
        seed=seed,
        data_seed=seed,
        bf16=False,
        fp16=False,
        use_cpu=_use_cpu(),
        gradient_checkpointing=bool(c["gradient_checkpointing"]),
        logging_steps=1,
        **save,
        report_to=c["report_to"] or "none",
        disable_tqdm=not c["progress"],
        dataloader_num_workers=0,
    )


def _resume_point(checkpoint_dir: Path | None, callbacks: list | None) -> tuple[str | None, int, list]:
    """(checkpoint to resume from or None, its step, callbacks + the atomic publisher)."""
    cbs = list(callbacks or [])
    if checkpoint_dir is None:
        return None, 0, cbs
    train_checkpoints.prepare(checkpoint_dir)
    last = train_checkpoints.last_checkpoint(checkpoint_dir)
    cbs.append(train_checkpoints.atomic_callback(checkpoint_dir))
    return (str(last) if last else None), (train_checkpoints.checkpoint_step(last) if last else 0), cbs


def train_sft(
    lm: Any,
    conversations: Sequence[Sequence[dict]],
    out_dir: str | Path,
    cfg: dict | None = None,
    *,
    seed: int = 0,
    log_path: str | Path | None = None,
    callbacks: list | None = None,
    checkpoint_dir: str | Path | None = None,
) -> dict[str, Any]:
    """LoRA SFT of `lm.model` on conversations (each ending with the assistant answer).

    Saves the adapter to `out_dir` (atomically); returns a summary (loss before/after, history,
    seconds). `lm.model` is left as it was (the LoRA layers are unloaded after saving).
    With `checkpoint_dir`, trainer checkpoints go there and training resumes from the newest
    one (`resumed_from_step` in the summary); they are deleted once the adapter is saved.
    """
    import torch
    from datasets import Dataset
    from peft import get_peft_model
    from transformers import set_seed
    from trl import SFTConfig, SFTTrainer

    c = {**sft_defaults(), **(cfg or {})}
    if not conversations:
        raise DispoError("no SFT examples to train on; see data_report.json for why items were dropped")
    tok = lm.tokenizer
    max_length = int(c["max_length"]) if c.get("max_length") else None
    examples = [
        build_sft_example(lm, m, think=c["think"], max_length=max_length, loss_on=c["loss_on"]) for m in conversations
    ]
    check_label_masks(examples, max_length)
    rows = [{"input_ids": e["input_ids"], "labels": e["labels"]} for e in examples]
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)

    set_seed(seed)
    peft_cfg = lora_config(lm.spec, c["modules"], c["r"], c["alpha"], c["dropout"], model=lm.model)
    model = get_peft_model(lm.model, peft_cfg)
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    resume, resumed_step, callbacks = _resume_point(ckpt, callbacks)
    t0 = time.time()
    try:
        loss_before = masked_mean_loss(model, examples, tok.pad_token_id)
        args = SFTConfig(
            **_trainer_args(c, out_dir, seed, max_length, ckpt),
            weight_decay=float(c["weight_decay"]),
            packing=False,
            remove_unused_columns=False,
        )
        trainer = SFTTrainer(
            model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tok, callbacks=callbacks
        )
        _own_progress(trainer, callbacks)
        trainer.train(resume_from_checkpoint=resume)
        loss_after = masked_mean_loss(model, examples, tok.pad_token_id)
        train_checkpoints.save_adapter_atomically(model, out_dir)
        history = _losses(trainer.state.log_history)
        steps = trainer.state.global_step
    finally:
        model.unload()  # restore lm.model's modules (no merge)
        lm.model.eval()
    info = {
        "kind": "sft",
        "adapter": str(out_dir),
        "n_examples": len(examples),
        "steps": steps,
        "resumed_from_step": resumed_step,
        "loss_before": loss_before,
        "loss_after": loss_after,
        "history": history,
        "seconds": round(time.time() - t0, 2),
        "trainable_tokens": sum(sum(1 for t in e["labels"] if t != -100) for e in examples),
        "config": {**c, "gradient_accumulation_steps": _accum(c)},
        "seed": seed,
        "device": "cpu" if _use_cpu() else torch.cuda.get_device_name(0),
    }
    if not all(math.isfinite(x) for x in (loss_before, loss_after)):
        raise DispoError(f"SFT loss is not finite (before {loss_before}, after {loss_after}); lower arc.sft.lr")
    if log_path is not None:
        from dispo.core import atomic

        atomic.write_json(log_path, info)
    if ckpt is not None:
        train_checkpoints.discard(ckpt)
    return info


# --------------------------------------------------------------------------- DPO


def _dpo_rows(lm: Any, pairs: Sequence[dict]) -> list[dict]:
    kw = _template_kwargs(lm)
    rows = []
    for p in pairs:
        row = {
            "prompt": [dict(m) for m in p["messages"]],
            "chosen": [{"role": "assistant", "content": p["chosen"]}],
            "rejected": [{"role": "assistant", "content": p["rejected"]}],
        }
        if kw:
            row["chat_template_kwargs"] = kw
        rows.append(row)
    return rows


def dpo_pair_logratio(model: Any, lm: Any, pairs: Sequence[dict]) -> float:
    """Mean of log p(chosen) - log p(rejected) (summed answer-token log-probs) under `model`."""
    ch = [build_sft_example(lm, list(p["messages"]) + [{"role": "assistant", "content": p["chosen"]}]) for p in pairs]
    rj = [build_sft_example(lm, list(p["messages"]) + [{"role": "assistant", "content": p["rejected"]}]) for p in pairs]
    pad = lm.tokenizer.pad_token_id
    diffs = []
    for a, b in zip(ch, rj):
        na = sum(t != -100 for t in a["labels"]) - 1
        nb = sum(t != -100 for t in b["labels"]) - 1
        la = masked_mean_loss(model, [a], pad) * (na + 1)
        lb = masked_mean_loss(model, [b], pad) * (nb + 1)
        diffs.append(lb - la)
    return sum(diffs) / max(len(diffs), 1)


def train_dpo(
    lm: Any,
    pairs: Sequence[dict],
    adapter_in: str | Path,
    out_dir: str | Path,
    cfg: dict | None = None,
    *,
    seed: int = 0,
    log_path: str | Path | None = None,
    callbacks: list | None = None,
    checkpoint_dir: str | Path | None = None,
) -> dict[str, Any]:
    """LoRA DPO continuing the adapter at `adapter_in` on pairs {messages, chosen, rejected}.

    reference: base (adapter disabled, the paper) | sft (a frozen copy of the SFT adapter).
    `checkpoint_dir`: as for train_sft (resume inside the stage).
    """
    from datasets import Dataset
    from peft import PeftModel
    from transformers import set_seed
    from trl import DPOConfig, DPOTrainer

    c = {**dpo_defaults(), **(cfg or {})}
    if c["reference"] not in ("base", "sft"):
        raise ConfigError(f"arc.dpo.reference={c['reference']!r}; valid: base, sft")
    if not pairs:
        raise DispoError("no preference pairs for DPO; see data_report.json (or set arc.dpo.enabled=false)")
    out_dir = Path(out_dir)
    tok = lm.tokenizer
    set_seed(seed)
    model = PeftModel.from_pretrained(lm.model, str(adapter_in), is_trainable=True)
    max_length = int(c["max_length"]) if c.get("max_length") else None
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    resume, resumed_step, callbacks = _resume_point(ckpt, callbacks)
    t0 = time.time()
    try:
        margin_before = dpo_pair_logratio(model, lm, pairs)
        args = DPOConfig(
            **_trainer_args(c, out_dir, seed, max_length, ckpt), beta=float(c["beta"]), precompute_ref_log_probs=False
        )
        trainer = DPOTrainer(
            model=model,
            ref_model=None,
            args=args,
            train_dataset=Dataset.from_list(_dpo_rows(lm, pairs)),
            processing_class=tok,
            callbacks=callbacks,
        )
        if c["reference"] == "base" and "ref" in model.peft_config:
            # without a "ref" adapter TRL computes the reference with adapters disabled
            model.delete_adapter("ref")
            model.set_adapter("default")
        reference_used = "adapter disabled (base)" if "ref" not in model.peft_config else "frozen SFT adapter copy"
        _own_progress(trainer, callbacks)
        trainer.train(resume_from_checkpoint=resume)
        margin_after = dpo_pair_logratio(model, lm, pairs)
        train_checkpoints.save_adapter_atomically(model, out_dir, selected_adapters=["default"])
        history = _losses(trainer.state.log_history)
        steps = trainer.state.global_step
    finally:
        model.unload()
        lm.model.eval()
    info = {
        "kind": "dpo",
        "adapter": str(out_dir),
        "adapter_in": str(adapter_in),
        "n_pairs": len(pairs),
        "steps": steps,
        "resumed_from_step": resumed_step,
        "reference": reference_used,
        "logratio_before": margin_before,
        "logratio_after": margin_after,
        "history": history,
        "seconds": round(time.time() - t0, 2),
        "config": {**c, "gradient_accumulation_steps": _accum(c)},
        "seed": seed,
    }
    if log_path is not None:
        from dispo.core import atomic

        atomic.write_json(log_path, info)
    if ckpt is not None:
        train_checkpoints.discard(ckpt)
    return info


def rich_progress_callback(label: str = "train", enabled: bool = True) -> Any:
    """dispo's progress display for a trainer, in place of the trainer's tqdm bar and printed log
    dicts (train_sft/train_dpo drop those when given this callback): one rich bar with steps,
    the running loss, elapsed time and ETA; with enabled=False nothing is drawn (quiet on a
    non-terminal). `completed` and `last_loss` record what it saw."""
    from transformers import TrainerCallback

    class _Rich(TrainerCallback):
        dispo_progress = True

        def __init__(self):
            self.p = None
            self.t = None
            self.completed = 0
            self.last_loss = None

        def on_train_begin(self, args, state, control, **kw):
            if not enabled:
                return
            from dispo.generate.progress import bar_progress

            self.p = bar_progress("steps")
            self.p.start()
            self.t = self.p.add_task(label, total=state.max_steps, completed=state.global_step)

        def on_step_end(self, args, state, control, **kw):
            self.completed = state.global_step
            if self.p is not None:
                self.p.update(self.t, completed=state.global_step)

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                self.last_loss = float(logs["loss"])
                if self.p is not None:
                    self.p.update(self.t, completed=state.global_step, description=f"{label} loss {self.last_loss:.3f}")

        def on_train_end(self, args, state, control, **kw):
            if self.p is not None:
                self.p.stop()
                self.p = None

    return _Rich()


def _own_progress(trainer: Any, callbacks: list | None) -> None:
    """With dispo's progress callback in place, the trainer's tqdm bar and log printer go."""
    if any(getattr(cb, "dispo_progress", False) for cb in callbacks or []):
        from transformers.trainer_callback import PrinterCallback, ProgressCallback

        trainer.remove_callback(ProgressCallback)
        trainer.remove_callback(PrinterCallback)


__all__ = [
    "THINK_MODES",
    "strip_think",
    "render_prompt_completion",
    "build_sft_example",
    "check_label_masks",
    "lora_config",
    "lora_targets",
    "train_sft",
    "train_dpo",
    "masked_mean_loss",
    "dpo_pair_logratio",
    "rich_progress_callback",
    "sft_defaults",
    "dpo_defaults",
]
