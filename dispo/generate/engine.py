"""Batched generation with transformers: continuous batching where the cache allows it,
padded `model.generate` batches otherwise, and a content-addressed response cache in front.

Two paths, chosen by what the model's KV cache supports (`DecodingParams.engine="auto"`):

- continuous: a decode loop over the model's forward pass with a left-padded DynamicCache.
  A row that emits a stop token or reaches `max_new_tokens` leaves the batch at once
  (its cache rows are index-selected away) and waiting prompts are prefilled and merged in,
  so no compute is spent on finished rows. Needs every layer to be a plain `DynamicLayer`
  (full softmax attention): llama, qwen3, qwen2, ...
- padded: `model.generate` on batches of similar-length prompts. Used for caches the loop
  cannot slice and merge (Qwen3.5's Gated-DeltaNet state, Gemma's sliding-window layers).
- vllm (only when asked for, `engine=vllm`): dispo/generate/vllm_backend.py, the optional
  vLLM extra on a CUDA GPU. Same prompts, stop tokens, per-item seeds and records.

Both paths tokenize, pad and pick tokens identically, so greedy outputs agree (up to fp32
rounding differences between batch shapes). Sampling is seeded per item, from
(seed, item id): an item's sample does not depend on its batch-mates or on resume order.

Batch composition: in fp32 on a CPU greedy outputs do not depend on batch-mates (measured
0/32 differ, bench/batch_invariance.py); in bf16 or on a GPU they can (5/32). For such a
model (`lm.batch_invariant` False) every cache key also names the whole call
(`cache.call_key`), so answers are reused only by the same call and a run's numbers do not
depend on what the cache held before it.

The `intervention` argument only describes an intervention already applied to the model
(e.g. forward hooks that damp heads); it is part of the cache key, nothing more.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from dispo.core.errors import ConfigError, DispoError
from dispo.core.types import Generation
from dispo.generate.cache import ResponseCache, call_key, response_key
from dispo.generate.jobs import Job as _Job
from dispo.generate.jobs import finish_job as _finish
from dispo.generate.jobs import item_seed, stop_token_ids  # noqa: F401  (re-exported)
from dispo.generate.jobs import tokenize_jobs as _tokenize
from dispo.generate.progress import GenerationProgress

ENGINES = ("auto", "continuous", "padded", "vllm")
# Not output-deciding for a batch-invariant model (fp32 on a CPU): greedy results don't
# depend on batch size or on the path taken. Where they do, `call_key` carries both.
_NOT_IN_CACHE_KEY = ("batch_size", "engine")


@dataclass
class DecodingParams:
    """Decoding parameters of a generation call (dispo/conf/decoding/*.yaml).

    max_new_tokens: generation budget per item; an item that reaches it without a stop
        token has finish_reason "length" (its output is truncated).
    temperature: 0 = greedy (argmax); > 0 = sampling at this temperature.
    top_p: nucleus sampling mass (1.0 = off). Sampling only.
    top_k: keep the k most likely tokens (0 = off). Sampling only.
    batch_size: most sequences decoded together (the continuous engine keeps this many
        rows busy). Does not change greedy results in fp32 on a CPU, so it is not part of
        the per-prompt cache key; in bf16 or on a GPU it is (through the call key).
    repetition_penalty: HF-style penalty on tokens of the prompt and output so far
        (1.0 = off); padding is never penalised.
    presence_penalty: OpenAI/vLLM-style additive penalty: subtracted from the logit of every
        token that already occurs in this item's *output* (the prompt does not count);
        0.0 = off, range [-2, 2]. Applied before temperature, top-k and top-p.
    engine: "auto" (continuous when the model's cache allows it, else padded),
        "continuous", "padded" or "vllm" (optional extra, CUDA GPU). The path that actually
        ran is recorded in each Generation's `decoding["engine"]`.
    """

    max_new_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    batch_size: int = 16
    repetition_penalty: float = 1.0
    engine: str = "auto"
    presence_penalty: float = 0.0

    def __post_init__(self) -> None:
        checks = [
            (self.max_new_tokens >= 1, "max_new_tokens must be >= 1"),
            (self.temperature >= 0, "temperature must be >= 0 (0 = greedy)"),
            (0 < self.top_p <= 1, "top_p must be in (0, 1]"),
            (self.top_k >= 0, "top_k must be >= 0 (0 = off)"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.repetition_penalty > 0, "repetition_penalty must be > 0 (1.0 = off)"),
            (-2.0 <= self.presence_penalty <= 2.0, "presence_penalty must be in [-2, 2] (0 = off)"),
            (self.engine in ENGINES, f"engine must be one of {', '.join(ENGINES)}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(f"decoding: {msg} (got {self.to_dict()})")

    @property
    def sampling(self) -> bool:
        return self.temperature > 0

    @classmethod
    def from_config(cls, cfg: "DecodingParams | Mapping[str, Any] | None") -> "DecodingParams":
        """From a DecodingParams, a dict or an OmegaConf node; unknown keys are an error."""
        if cfg is None:
            return cls()
        if isinstance(cfg, DecodingParams):
            return cfg
        if not isinstance(cfg, Mapping):
            try:
                from omegaconf import OmegaConf

                cfg = OmegaConf.to_container(cfg, resolve=True)
            except Exception:
                raise ConfigError(f"decoding must be a mapping, got {type(cfg).__name__}") from None
        known = {f.name: f.type for f in fields(cls)}
        unknown = sorted(set(cfg) - set(known))
        if unknown:
            raise ConfigError(f"unknown decoding key(s) {', '.join(unknown)}; valid: {', '.join(known)}")
        casts = {
            "max_new_tokens": int,
            "top_k": int,
            "batch_size": int,
            "temperature": float,
            "top_p": float,
            "repetition_penalty": float,
            "engine": str,
            "presence_penalty": float,
        }
        try:
            values = {k: casts[k](v) for k, v in cfg.items()}
        except (TypeError, ValueError) as e:
            raise ConfigError(f"decoding: bad value ({e})") from None
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Exactly what is recorded with each generation (plus the engine that ran)."""
        return asdict(self)

    def cache_dict(self) -> dict[str, Any]:
        """The output-deciding parameters: what goes into the response cache key.
        presence_penalty enters only when it is on, so entries cached before it existed
        (necessarily without it) keep their keys."""
        d = {k: v for k, v in self.to_dict().items() if k not in _NOT_IN_CACHE_KEY}
        if not d.get("presence_penalty"):
            d.pop("presence_penalty", None)
        return d


# ---------------------------------------------------------------------------------------
# Public entry point


def generate(
    lm,
    requests: list[tuple[str, list[dict]]],
    decoding: DecodingParams | dict,
    seed: int = 0,
    cache: ResponseCache | None | bool = True,
    intervention: dict | None = None,
    progress: bool = True,
    on_result: Callable[[Generation], None] | None = None,
) -> list[Generation]:
    """Generate one response per (item id, chat messages) request, in request order.

    lm: a LoadedModel. prompt = lm.render(messages). seed: recorded in every Generation;
    it only affects sampling (greedy cache entries are shared across seeds). cache: True = the default
    ResponseCache, a ResponseCache instance, or False/None = no cache. on_result is called
    once per item as soon as it is available (cached items first, then in finishing order),
    so a caller can persist incrementally.

    Each Generation has finish_reason "stop" (a stop token was produced: the tokenizer's
    eos, every generation_config eos id, <|im_end|>/<end_of_turn> where present) or
    "length" (max_new_tokens reached without one), and n_tokens = generated tokens
    excluding padding and the stop token. decoding = params.to_dict() with "engine" set to
    the path that produced it ("continuous" | "padded" | "vllm").
    """
    params = DecodingParams.from_config(decoding)
    if cache is True:
        cache = ResponseCache()
    elif cache is False:
        cache = None
    seed = int(seed)
    item_seed = seed if params.sampling else None

    results: list[Generation | None] = [None] * len(requests)
    jobs: list[_Job] = []
    prompts = [lm.render(messages) for _, messages in requests]
    call = None if getattr(lm, "batch_invariant", True) else call_key(prompts, params.batch_size, params.engine)
    with GenerationProgress(len(requests), enabled=progress) as bar:
        for i, ((item_id, _), prompt) in enumerate(zip(requests, prompts)):
            key = response_key(
                lm.fingerprint,
                intervention,
                prompt,
                params.cache_dict(),
                seed=item_seed,
                item_id=str(item_id) if params.sampling else None,
                call=call,
            )
            entry = cache.get(key) if cache is not None else None
            if entry is not None:
                gen = Generation(
                    id=str(item_id),
                    prompt=prompt,
                    output=entry["output"],
                    finish_reason=entry["finish_reason"],
                    n_tokens=entry["n_tokens"],
                    decoding={**params.to_dict(), "engine": entry.get("engine", "unknown")},
                    seed=seed,
                    cached=True,
                )
                results[i] = gen
                bar.item_done()
                if on_result:
                    on_result(gen)
            else:
                jobs.append(_Job(index=i, item_id=str(item_id), prompt=prompt, key=key))

        if jobs:
            engine = choose_engine(lm, params)
            if engine == "vllm" and intervention:
                # vLLM runs its own copy of the weights: an intervention applied to lm.model
                # (forward hooks) would silently not be there
                raise DispoError(f"engine=vllm cannot apply intervention {intervention}; use engine=transformers")

            def emit(job: _Job, output: str, finish_reason: str, n_tokens: int) -> None:
                gen = Generation(
                    id=job.item_id,
                    prompt=job.prompt,
                    output=output,
                    finish_reason=finish_reason,
                    n_tokens=n_tokens,
                    decoding={**params.to_dict(), "engine": engine},
                    seed=seed,
                    cached=False,
                )
                if cache is not None:
                    cache.put(
                        job.key,
                        output,
                        finish_reason,
                        n_tokens,
                        engine=engine,
                        item_id=job.item_id,
                        model=getattr(lm, "name", None),
                        fingerprint=lm.fingerprint,
                        decoding=params.cache_dict(),
                        seed=item_seed,
                        call=call,
                    )
                results[job.index] = gen
                bar.item_done()
                if on_result:
                    on_result(gen)

            runner = {"continuous": _run_continuous, "padded": _run_padded, "vllm": _run_vllm}[engine]
            runner(lm, jobs, params, seed, emit, bar)

    missing = [requests[i][0] for i, g in enumerate(results) if g is None]
    if missing:
        raise DispoError(f"generation produced no result for item(s) {missing[:5]}")
    return results  # type: ignore[return-value]


def choose_engine(lm, params: DecodingParams) -> str:
    """The path that will run: the requested one, or for "auto" the continuous loop when
    the model's cache can be sliced and merged row-wise, else padded batches."""
    if params.engine == "continuous" and not supports_continuous(lm.model):
        raise DispoError(
            f"engine=continuous is not supported for {getattr(lm.model.config, 'model_type', '?')} "
            "(its cache has sliding-window or linear-attention layers); use decoding.engine=padded or auto"
        )
    if params.engine != "auto":
        return params.engine
    return "continuous" if supports_continuous(lm.model) else "padded"


def supports_continuous(model) -> bool:
    """True when every layer of the model's default cache is a plain full-attention
    DynamicLayer (batch rows can be selected and left-padded freely)."""
    try:
        from transformers import DynamicCache
        from transformers.cache_utils import DynamicLayer

        config = model.config.get_text_config(decoder=True)
        cache = DynamicCache(config=config)
    except Exception:
        return False
    layer_types = getattr(config, "layer_types", None) or []
    return (
        len(cache.layers) == getattr(config, "num_hidden_layers", -1)
        and all(type(layer) is DynamicLayer for layer in cache.layers)
        and all(t == "full_attention" for t in layer_types)
    )


# ---------------------------------------------------------------------------------------
# Shared pieces: jobs, stop tokens, tokenization, token selection


def _item_generator(seed: int, item_id: str):
    """A torch.Generator seeded with item_seed(seed, item_id)."""
    import torch

    g = torch.Generator(device="cpu")
    g.manual_seed(item_seed(seed, item_id))
    return g


def _run_vllm(lm, jobs: list[_Job], params: DecodingParams, seed: int, emit, bar) -> None:
    # imported here: vLLM is optional and heavy
    from dispo.generate.vllm_backend import run_vllm

    run_vllm(lm, jobs, params, seed, emit, bar)


def _left_pad(seqs: list[list[int]], pad_id: int):
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for r, s in enumerate(seqs):
        ids[r, width - len(s) :] = torch.tensor(s, dtype=torch.long)
        mask[r, width - len(s) :] = 1
    return ids, mask


def _select_tokens(logits, params: DecodingParams, histories, generators, outputs=None):
    """Next token per row from last-position logits [B, V].

    histories: per row, a 1-D LongTensor of the row's prompt + output so far (no padding);
    only read when repetition_penalty != 1. outputs: per row, the tokens generated so far
    (a list or 1-D tensor); only read when presence_penalty != 0. generators: per-row
    torch.Generators (sampling).
    Works on the logits' device (CPU or GPU); the picked ids come back on the CPU.
    """
    import torch

    logits = logits.float()
    if params.repetition_penalty != 1.0:
        logits = logits.clone()
        for r, hist in enumerate(histories):
            seen = torch.unique(hist).to(logits.device)
            vals = logits[r, seen]
            logits[r, seen] = torch.where(vals < 0, vals * params.repetition_penalty, vals / params.repetition_penalty)
    if params.presence_penalty != 0.0:
        logits = logits.clone()
        for r, out in enumerate(outputs or []):
            out = torch.as_tensor(out, dtype=torch.long)
            if out.numel():
                logits[r, torch.unique(out).to(logits.device)] -= params.presence_penalty
    if not params.sampling:
        return logits.argmax(dim=-1).cpu()
    logits = logits / params.temperature
    if params.top_k > 0 and params.top_k < logits.shape[-1]:
        kth = torch.topk(logits, params.top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if params.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        probs = sorted_logits.softmax(dim=-1)
        # drop a token when the mass before it already reaches top_p (the top one stays)
        drop_sorted = (probs.cumsum(dim=-1) - probs) >= params.top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    # inverse-CDF draw with one uniform per row from that row's own generator (much cheaper
    # than torch.multinomial over the whole vocabulary, and as exact)
    cdf = logits.softmax(dim=-1).cumsum(dim=-1)
    u = torch.cat([torch.rand(1, generator=g, dtype=torch.float64) for g in generators]).to(cdf.device)
    target = (u.to(cdf.dtype) * cdf[:, -1]).unsqueeze(-1)
    # right=True: the first token whose cdf exceeds the target, so zero-mass tokens never win
    picked = torch.searchsorted(cdf, target, right=True).squeeze(-1)
    return picked.clamp(max=cdf.shape[-1] - 1).cpu()


# ---------------------------------------------------------------------------------------
# Padded path: model.generate on length-sorted batches


def _run_padded(lm, jobs: list[_Job], params: DecodingParams, seed: int, emit, bar) -> None:
    import torch
    from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList

    _tokenize(lm, jobs)
    stop_ids = stop_token_ids(lm)
    pad_id = _pad_id(lm)
    order = sorted(jobs, key=lambda j: len(j.ids), reverse=True)
    gen_config = GenerationConfig(
        max_new_tokens=params.max_new_tokens, do_sample=False, eos_token_id=sorted(stop_ids), pad_token_id=pad_id
    )

    class _PickTokens(LogitsProcessor):
        # Picks each row's token with dispo's own selection (per-item generators, padding
        # never penalised) and leaves generate's greedy argmax nothing else to choose.
        def __init__(self, pad_lens, generators, width):
            self.pad_lens, self.generators, self.width = pad_lens, generators, width

        def __call__(self, input_ids, scores):
            hist = [input_ids[r, p:] for r, p in enumerate(self.pad_lens)]
            outs = [input_ids[r, self.width :].cpu() for r in range(input_ids.shape[0])]
            picked = _select_tokens(scores, params, hist, self.generators, outs)
            forced = torch.full_like(scores, float("-inf"))
            forced[torch.arange(scores.shape[0], device=scores.device), picked.to(scores.device)] = 0.0
            return forced

    needs_processor = params.sampling or params.repetition_penalty != 1.0 or params.presence_penalty != 0.0
    for start in range(0, len(order), params.batch_size):
        batch = order[start : start + params.batch_size]
        ids, mask = _left_pad([j.ids for j in batch], pad_id)
        processors = LogitsProcessorList()
        if needs_processor:
            pad_lens = [ids.shape[1] - len(j.ids) for j in batch]
            gens = [_item_generator(seed, j.item_id) for j in batch] if params.sampling else None
            processors.append(_PickTokens(pad_lens, gens, ids.shape[1]))
        with torch.no_grad():
            dev = _device(lm.model)
            out = lm.model.generate(
                input_ids=ids.to(dev),
                attention_mask=mask.to(dev),
                generation_config=gen_config,
                logits_processor=processors,
            )
        new = out[:, ids.shape[1] :].cpu().tolist()
        for job, row in zip(batch, new):
            _finish(lm, job, row, stop_ids, params, emit)
            bar.tokens(min(len(row), params.max_new_tokens))


def _device(model):
    """Where the model's inputs must go; dispo's own bookkeeping tensors stay on the CPU."""
    return next(model.parameters()).device


def _pad_id(lm) -> int:
    tok = lm.tokenizer
    if tok.pad_token_id is not None:
        return int(tok.pad_token_id)
    return int(tok.eos_token_id)


# ---------------------------------------------------------------------------------------
# Continuous path: own decode loop, finished rows leave, waiting prompts are merged in


class _Batch:
    """The rows being decoded: a left-padded DynamicCache plus per-row state."""

    def __init__(self):
        self.last_logits = None  # prefill output, consumed before the batch is merged
        self.cache = None
        self.mask = None  # [B, L] 1 = real token in the cache
        self.positions = None  # [B] position id of each row's next input token
        self.next_tokens = None  # [B] token to feed next
        self.rows: list[_Row] = []

    def __len__(self) -> int:
        return len(self.rows)

    def keep(self, keep: list[int]) -> None:
        """Keep only the rows at `keep` (drops finished rows from the cache)."""
        import torch

        if not keep:
            self.__init__()
            return
        idx = torch.tensor(keep, dtype=torch.long)
        for layer in self.cache.layers:
            layer.keys = layer.keys.index_select(0, idx.to(layer.keys.device))
            layer.values = layer.values.index_select(0, idx.to(layer.values.device))
        self.mask = self.mask.index_select(0, idx)
        self.positions = self.positions.index_select(0, idx)
        self.next_tokens = self.next_tokens.index_select(0, idx)
        self.rows = [self.rows[i] for i in keep]
        # columns that are padding for every remaining row cost attention for nothing
        lead = int((self.mask.cumsum(dim=1) == 0).all(dim=0).sum())
        if lead:
            self.mask = self.mask[:, lead:]
            for layer in self.cache.layers:
                layer.keys = layer.keys[:, :, lead:]
                layer.values = layer.values[:, :, lead:]

    def merge(self, other: "_Batch") -> None:
        """Append `other`'s rows, left-padding the shorter cache to the longer one."""
        import torch
        import torch.nn.functional as F

        if not other.rows:
            return
        if not self.rows:
            self.__dict__.update(other.__dict__)
            return
        width = max(self.mask.shape[1], other.mask.shape[1])

        def pad(t, dim_from_end):
            n = width - t.shape[-dim_from_end]
            if n == 0:
                return t
            spec = [0, 0] * (dim_from_end - 1) + [n, 0]
            return F.pad(t, spec)

        for mine, theirs in zip(self.cache.layers, other.cache.layers):
            mine.keys = torch.cat([pad(mine.keys, 2), pad(theirs.keys, 2)])
            mine.values = torch.cat([pad(mine.values, 2), pad(theirs.values, 2)])
        self.mask = torch.cat([pad(self.mask, 1), pad(other.mask, 1)])
        self.positions = torch.cat([self.positions, other.positions])
        self.next_tokens = torch.cat([self.next_tokens, other.next_tokens])
        self.rows += other.rows


@dataclass
class _Row:
    job: _Job
    prompt_ids: Any  # LongTensor, for repetition penalty
    generator: Any
    generated: list[int]


def _run_continuous(lm, jobs: list[_Job], params: DecodingParams, seed: int, emit, bar) -> None:
    import torch

    _tokenize(lm, jobs)
    stop_ids = stop_token_ids(lm)
    pad_id = _pad_id(lm)
    model = lm.model
    # longest prompts first: similar lengths prefill together, and long items start early
    waiting = sorted(jobs, key=lambda j: len(j.ids), reverse=True)
    # admitting prompts one at a time would run many tiny prefills; wait for a few free slots
    refill_at = max(1, params.batch_size // 4)
    batch = _Batch()

    def histories(rows):
        if params.repetition_penalty == 1.0:
            return None
        return [torch.cat([r.prompt_ids, torch.tensor(r.generated, dtype=torch.long)]) for r in rows]

    def take_step(batch: _Batch, logits) -> None:
        picked = _select_tokens(
            logits[:, -1, :],
            params,
            histories(batch.rows),
            [r.generator for r in batch.rows],
            [r.generated for r in batch.rows],
        )
        batch.next_tokens = picked
        keep = []
        for i, (row, t) in enumerate(zip(batch.rows, picked.tolist())):
            row.generated.append(t)
            if t in stop_ids or len(row.generated) >= params.max_new_tokens:
                _finish(lm, row.job, row.generated, stop_ids, params, emit)
            else:
                keep.append(i)
        bar.tokens(len(batch.rows))
        if len(keep) < len(batch.rows):
            batch.keep(keep)

    dev = _device(model)
    with torch.no_grad():
        while waiting or batch.rows:
            free = params.batch_size - len(batch)
            if waiting and (not batch.rows or free >= min(refill_at, len(waiting))):
                admitted, waiting = waiting[:free], waiting[free:]
                fresh = _prefill(model, admitted, params, seed, pad_id)
                logits, fresh.last_logits = fresh.last_logits, None
                take_step(fresh, logits)
                batch.merge(fresh)
                continue
            step_mask = torch.cat([batch.mask, torch.ones((len(batch), 1), dtype=batch.mask.dtype)], dim=1)
            out = model(
                input_ids=batch.next_tokens[:, None].to(dev),
                attention_mask=step_mask.to(dev),
                position_ids=batch.positions[:, None].to(dev),
                past_key_values=batch.cache,
                use_cache=True,
                logits_to_keep=1,
            )
            batch.mask = step_mask
            batch.positions = batch.positions + 1
            take_step(batch, out.logits)


def _prefill(model, jobs: list[_Job], params: DecodingParams, seed: int, pad_id: int) -> _Batch:
    import torch
    from transformers import DynamicCache

    ids, mask = _left_pad([j.ids for j in jobs], pad_id)
    # same position ids as generate(): count of real tokens before each one
    position_ids = (mask.cumsum(dim=1) - 1).clamp(min=0)
    cache = DynamicCache(config=model.config.get_text_config(decoder=True))
    cache.layers = [_growing(layer) for layer in cache.layers]
    dev = _device(model)
    out = model(
        input_ids=ids.to(dev),
        attention_mask=mask.to(dev),
        position_ids=position_ids.to(dev),
        past_key_values=cache,
        use_cache=True,
        logits_to_keep=1,
    )
    fresh = _Batch()
    fresh.cache = out.past_key_values
    fresh.mask = mask
    fresh.positions = mask.sum(dim=1)
    fresh.rows = [
        _Row(
            job=j,
            prompt_ids=torch.tensor(j.ids, dtype=torch.long),
            generator=_item_generator(seed, j.item_id) if params.sampling else None,
            generated=[],
        )
        for j in jobs
    ]
    fresh.last_logits = out.logits
    return fresh


# spare sequence room a growing cache layer allocates beyond what it holds (then half again
# as much as it holds, so a long generation reallocates a logarithmic number of times)
_SLACK = 64


def _growing(layer):
    """`layer` as a growing layer when it is a plain DynamicLayer (sliding-window and other
    special layers keep their own update)."""
    from transformers.cache_utils import DynamicLayer

    return _growing_layer_class()() if type(layer) is DynamicLayer else layer


_GROWING = None


def _growing_layer_class():
    """A DynamicLayer whose keys and values are views into buffers with spare room along the
    sequence: a decode step writes its one column in place, where DynamicLayer copies the
    whole cache with torch.cat (about 4% of a step at batch 16 with 300 cached tokens, more
    as the cache grows: bench/bench_decode_profile.py). The values attended to are the same
    numbers, so outputs do not change (tested against DynamicLayer and model.generate). Assigning `keys` or
    `values` (the batch's keep/merge do) adopts the tensor; the next update makes room."""
    global _GROWING
    if _GROWING is not None:
        return _GROWING
    from transformers.cache_utils import DynamicLayer

    class GrowingLayer(DynamicLayer):
        # each of keys and values has its own length: keep() assigns one, then reads the other
        def _get(self, name):
            buf = self.__dict__.get("_" + name)
            return None if buf is None else buf[:, :, : self.__dict__["_n_" + name]]

        def _set(self, name, value):
            if value is None or value.dim() != 4:  # None, or lazy_initialization's empty tensor
                value = None
            self.__dict__["_" + name] = value
            self.__dict__["_n_" + name] = 0 if value is None else value.shape[-2]

        keys = property(lambda self: self._get("keys"), lambda self, v: self._set("keys", v))
        values = property(lambda self: self._get("values"), lambda self, v: self._set("values", v))

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            n, add = self.__dict__["_n_keys"], key_states.shape[-2]
            kbuf, vbuf = self.__dict__.get("_keys"), self.__dict__.get("_values")
            if kbuf is None or n + add > kbuf.shape[-2]:
                cap = n + add + max(_SLACK, (n + add) // 2)
                shape = (*key_states.shape[:2], cap, key_states.shape[-1])
                new_k, new_v = key_states.new_empty(shape), value_states.new_empty(shape)
                if n:
                    new_k[:, :, :n] = kbuf[:, :, :n]
                    new_v[:, :, :n] = vbuf[:, :, :n]
                kbuf, vbuf = new_k, new_v
                self.__dict__["_keys"], self.__dict__["_values"] = kbuf, vbuf
            kbuf[:, :, n : n + add] = key_states
            vbuf[:, :, n : n + add] = value_states
            self.__dict__["_n_keys"] = self.__dict__["_n_values"] = n + add
            return self.keys, self.values

    _GROWING = GrowingLayer
    return _GROWING
