"""vLLM generation backend (`decoding.engine=vllm`, or `engine=vllm` at the top level).

Optional: `pip install 'dispo[vllm]'`, on a CUDA GPU. A runner with the same contract as the
transformers runners in engine.py (`run_vllm(lm, jobs, params, seed, emit, bar)`), so the
response cache, records and resume logic in `generate` are shared:

- prompts: the token ids of the already-rendered chat prompt, tokenized exactly as the
  transformers engine does (no special tokens added), so vLLM sees the same input ids;
- stop tokens: engine.stop_token_ids(lm), the same set;
- sampling: seeded per item with engine.item_seed(seed, item id), so an item's sample does
  not depend on its batch-mates. vLLM's sampler draws differently from dispo's, so a sampled
  output is not the transformers engine's sample, only one from the same distribution;
- output: cut at the first stop token and decoded with lm.tokenizer, as engine._finish does
  (n_tokens excludes the stop token), so greedy records agree up to kernel rounding at near-ties;
- LoRA: lm.adapter through vLLM's LoRA support (a LoRARequest on the same base weights).

vLLM loads its own copy of the weights: forward hooks on lm.model (arc 2's head tempering)
and hidden states (arc 3's probes) are not reachable, so those stay on transformers.
`batch_size` is not passed on: vLLM schedules its own batches (greedy output does not depend on it).
"""

from __future__ import annotations

import gc
import json
import os
from pathlib import Path

from dispo.core.errors import DispoError
from dispo.generate.jobs import finish_job as _finish
from dispo.generate.jobs import item_seed, stop_token_ids
from dispo.generate.jobs import tokenize_jobs as _tokenize

INSTALL_HINT = "engine=vllm needs vLLM and a CUDA GPU: pip install 'dispo[vllm]'"
# the max_lora_rank values vLLM's LoRAConfig accepts; an adapter of any rank up to it loads
_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)
# prompts per LLM.generate call: vLLM batches within a call; finished chunks reach the cache
# (and on_result) before the next starts, so an interrupted run keeps them
_CHUNK = 256

_llm: dict = {}  # the one live LLM: {"key": (model, revision, dtype), "rank": int | None, "llm": LLM}
_lora_ids: dict[str, int] = {}  # adapter path -> LoRARequest int id (unique and > 0 per process)


def _import_vllm():
    try:
        import vllm
        from vllm.lora.request import LoRARequest
    except ImportError:
        raise DispoError(INSTALL_HINT) from None
    return vllm, LoRARequest


def model_source(lm) -> tuple[str, str | None]:
    """(path or hub id, revision) of the weights lm was loaded from, for vLLM to load."""
    spec = lm.spec
    if spec.get("path"):
        p = Path(os.path.expanduser(str(spec["path"])))
        if p.is_file():
            raise DispoError(
                f"engine=vllm: {p} is a single GGUF file (vLLM's GGUF support is experimental); "
                "use a model directory, or engine=transformers"
            )
        return str(p), None
    source = spec.get("source", "hub")
    if source == "packaged":
        from dispo.models import embedded

        return str(embedded.ensure(spec.get("package_model", lm.name))), None
    if source == "tiny":
        raise DispoError(
            f"engine=vllm cannot run {lm.name}: tiny models' random weights exist only in memory; "
            "use engine=transformers"
        )
    return str(spec["hf_id"]), spec.get("revision")


def vllm_dtype(spec: dict) -> str:
    # load_model reads a missing dtype as float32; vLLM's "auto" would run fp32 checkpoints in fp16
    return str(spec.get("dtype") or "float32")


def lora_rank(adapter: str) -> int:
    """vLLM's max_lora_rank for an adapter dir: its largest rank (r, rank_pattern) rounded up
    to a value vLLM accepts."""
    path = Path(adapter) / "adapter_config.json"
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
        r = max([int(cfg.get("r") or 8), *(int(v) for v in (cfg.get("rank_pattern") or {}).values())])
    except (OSError, ValueError, TypeError, AttributeError) as e:
        raise DispoError(
            f"cannot read the LoRA rank from {path} ({e}); pass the artifacts/adapter dir of an arc1 run"
        ) from None
    for allowed in _LORA_RANKS:
        if r <= allowed:
            return allowed
    raise DispoError(f"adapter {adapter} has LoRA rank {r}; vLLM supports ranks up to {_LORA_RANKS[-1]}")


def lora_request(LoRARequest, adapter: str):
    path = str(Path(adapter).resolve())
    int_id = _lora_ids.setdefault(path, len(_lora_ids) + 1)
    return LoRARequest(lora_name=f"{Path(path).name}-{int_id}", lora_int_id=int_id, lora_path=path)


def get_llm(vllm, lm, rank: int | None):
    """The process's LLM for lm's weights, with LoRA slots of at least `rank` when given.

    One LLM at a time: each takes most of the GPU's memory (gpu_memory_utilization), so a
    different model replaces the previous one. A LoRA-enabled LLM also serves the bare base,
    so a base arm followed by adapter arms builds it at most twice."""
    model, revision = model_source(lm)
    key = (model, revision, vllm_dtype(lm.spec))
    if _llm.get("key") == key and (rank is None or (_llm["rank"] or 0) >= rank):
        return _llm["llm"]
    release()  # before building: two LLMs do not fit on one GPU
    kwargs = {"model": model, "tokenizer": model, "dtype": key[2]}
    if revision:
        kwargs.update(revision=revision, tokenizer_revision=revision)
    if rank:
        kwargs.update(enable_lora=True, max_lora_rank=rank)
    llm = vllm.LLM(**kwargs)
    _llm.update(key=key, rank=rank, llm=llm)
    return llm


def release() -> None:
    """Drop the live LLM and give its GPU memory back (its engine shuts down when collected)."""
    if not _llm:
        return
    _llm.clear()  # the only reference: the LLM is collected here
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def sampling_params(vllm, params, stop_ids: set[int], seed: int | None):
    try:
        return vllm.SamplingParams(
            n=1,
            temperature=params.temperature,  # 0 = greedy
            top_p=params.top_p,
            top_k=params.top_k if params.top_k > 0 else -1,  # -1 = off in every vLLM; 0 only in newer ones
            repetition_penalty=params.repetition_penalty,  # HF-style, over prompt + output, like dispo's
            presence_penalty=params.presence_penalty,  # additive, over the output only, like dispo's
            max_tokens=params.max_new_tokens,
            seed=seed,
            stop_token_ids=sorted(stop_ids),
        )
    except ValueError as e:  # vLLM is stricter than dispo (e.g. temperature <= 2)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DispoError(f"vLLM rejects decoding {params.cache_dict()}: {first}") from None


def has_hooks(model) -> bool:
    return any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def run_vllm(lm, jobs, params, seed: int, emit, bar) -> None:
    if has_hooks(lm.model):
        raise DispoError(
            "engine=vllm cannot apply forward hooks on the model (e.g. arc2's head tempering): "
            "vLLM runs its own copy of the weights; use engine=transformers"
        )
    vllm, LoRARequest = _import_vllm()
    llm = get_llm(vllm, lm, lora_rank(lm.adapter) if lm.adapter else None)
    lora = lora_request(LoRARequest, lm.adapter) if lm.adapter else None
    _tokenize(lm, jobs)
    stop_ids = stop_token_ids(lm)
    for start in range(0, len(jobs), _CHUNK):
        chunk = jobs[start : start + _CHUNK]
        prompts = [{"prompt_token_ids": list(j.ids)} for j in chunk]
        sps = [
            sampling_params(vllm, params, stop_ids, item_seed(seed, j.item_id) if params.sampling else None)
            for j in chunk
        ]
        outs = llm.generate(prompts, sps, use_tqdm=False, lora_request=lora)  # in prompt order
        for job, out in zip(chunk, outs):
            done = out.outputs[0]
            tokens = list(done.token_ids)
            if done.finish_reason not in ("stop", "length"):  # e.g. "abort"
                raise DispoError(f"vLLM finished item {job.item_id} with finish_reason={done.finish_reason!r}")
            if done.finish_reason == "stop" and not any(t in stop_ids for t in tokens):
                # a vLLM that leaves the stop token out of token_ids: put it back for _finish
                tokens.append(min(stop_ids))
            _finish(lm, job, tokens, stop_ids, params, emit)
            bar.tokens(len(tokens))
