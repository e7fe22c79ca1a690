"""Pieces every generation engine shares: the job record, stop tokens, per-item seeds,
tokenization and the stop/length cut. Engines import this module, never each other."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from dispo.core.errors import DispoError


@dataclass
class Job:
    index: int
    item_id: str
    prompt: str
    key: str
    ids: list[int] | None = None


def stop_token_ids(lm) -> set[int]:
    """Every id that ends a response: tokenizer eos, generation_config eos (int or list),
    and the chat end-of-turn tokens the tokenizer knows."""
    tok = lm.tokenizer
    ids: set[int] = set()
    if tok.eos_token_id is not None:
        ids.add(int(tok.eos_token_id))
    gc_eos = getattr(getattr(lm.model, "generation_config", None), "eos_token_id", None)
    if gc_eos is not None:
        ids.update(int(x) for x in (gc_eos if isinstance(gc_eos, (list, tuple)) else [gc_eos]))
    for name in ("<|im_end|>", "<|endoftext|>", "<end_of_turn>", "<|eot_id|>", "<turn|>"):
        tid = tok.convert_tokens_to_ids(name)
        # unknown tokens map to unk (or None): keep only ids that really are this token
        if isinstance(tid, int) and tok.convert_ids_to_tokens(tid) == name:
            ids.add(tid)
    return ids


def item_seed(seed: int, item_id: str) -> int:
    """The sampling seed of one item, from (seed, item id) only; every engine seeds with it."""
    digest = hashlib.sha256(f"{seed}\x00{item_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def tokenize_jobs(lm, jobs: list[Job]) -> None:
    # the rendered chat template already holds any BOS: add no special tokens again
    for job in jobs:
        if job.ids is None:
            job.ids = lm.tokenizer(job.prompt, add_special_tokens=False)["input_ids"]
            if not job.ids:
                raise DispoError(f"item {job.item_id}: the rendered prompt tokenizes to nothing")


def finish_job(lm, job: Job, generated: list[int], stop_ids: set[int], params, emit) -> None:
    """Cut at the first stop token and report (the stop token itself is not counted)."""
    for n, t in enumerate(generated):
        if t in stop_ids:
            out, reason = generated[:n], "stop"
            break
    else:
        out, reason = generated[: params.max_new_tokens], "length"
    text = lm.tokenizer.decode(out, skip_special_tokens=True)
    emit(job, text, reason, len(out))
