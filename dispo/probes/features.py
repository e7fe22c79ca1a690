"""Frozen-base features for the Arc 3 probe (arXiv 2604.11867, Arc 3).

One batched forward pass of the frozen model over prompt + response (the rendered chat prompt
followed by the response text) with ``output_hidden_states=True`` gives, per item:

  h_last        last-layer hidden state (``hidden_states[-1]``) at the final non-pad token
  h_last<N>     mean of the last N layers' hidden states at that token (``layers="last4"``)
  entropy_mean  mean / max entropy (nats) of the next-token distribution over response tokens
  entropy_max
  margin_mean   mean top-1 minus top-2 logit over response positions
  nll_mean      mean / std of the negative log-likelihood of the response tokens
  nll_std

The response tokens are positions ``[n_prompt, n_prompt + n_response)``; the distribution that
predicts token ``t`` is the logits at ``t - 1``. Prompt and response are tokenized separately
and concatenated as ids (exactly what a generation run feeds the model), so the response span
is known exactly. A response with no tokens gets NaN scalar features (h_last is then the last
prompt token). The features are saved with ``save_npz`` as ``X, y, coverage, ids`` (+ extras).

Padding: the batch is padded on the tokenizer's ``padding_side`` (dispo loads models with left
padding); ``last_token_index`` finds the final non-pad token for either side, and position ids
are derived from the attention mask, so batched features match one-at-a-time ones.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from dispo.core.errors import DispoError, InputFileError

SCALARS = ("entropy_mean", "entropy_max", "margin_mean", "nll_mean", "nll_std")


def parse_layers(layers: str) -> int:
    """'last' -> 1, 'last4' -> 4. Anything else is a ConfigError-style DispoError."""
    m = re.fullmatch(r"last(\d*)", str(layers).strip())
    if not m or (m.group(1) and int(m.group(1)) < 1):
        raise DispoError(f"arc.layers={layers!r} is not valid; use 'last' or 'lastN' (e.g. last4)", code=2)
    return int(m.group(1)) if m.group(1) else 1


def pooled_key(res: dict[str, np.ndarray], n_layers: int) -> np.ndarray:
    """The representation of ``last<n_layers>`` in an `extract` result."""
    return res[f"h_last{n_layers}"] if n_layers > 1 else res["h_last"]


def last_token_index(attention_mask) -> "Any":
    """Index of the final non-pad token of each row, for left or right padding.

    Left padding: always the last column. Right padding: the last column whose mask is 1.
    Works on torch tensors and numpy arrays (returns the same kind).
    """
    if hasattr(attention_mask, "flip"):  # torch
        m = attention_mask.long()
        return m.shape[1] - 1 - m.flip(1).argmax(dim=1)
    m = np.asarray(attention_mask).astype(np.int64)
    return m.shape[1] - 1 - np.argmax(m[:, ::-1], axis=1)


def _as_prompt_text(lm, prompt: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list):  # chat messages
        return lm.render(prompt)
    raise DispoError(
        f"features: a prompt must be rendered text or a list of chat messages, got {type(prompt).__name__}"
    )


def _pad_batch(seqs: list[list[int]], pad_id: int, side: str):
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        if side == "left":
            ids[i, width - len(s) :] = torch.tensor(s, dtype=torch.long)
            mask[i, width - len(s) :] = 1
        else:
            ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
            mask[i, : len(s)] = 1
    return ids, mask


def _forward(model, ids, mask, n_keep: int | None):
    """Forward with hidden states; position ids follow the mask so padding does not shift them."""

    pos = (mask.cumsum(dim=1) - 1).clamp(min=0)
    kwargs: dict[str, Any] = dict(
        input_ids=ids, attention_mask=mask, position_ids=pos, output_hidden_states=True, use_cache=False
    )
    if n_keep is not None:
        kwargs["logits_to_keep"] = n_keep
    try:
        return model(**kwargs)
    except TypeError:  # a model without logits_to_keep
        kwargs.pop("logits_to_keep", None)
        return model(**kwargs)


def extract(
    lm,
    prompts: Sequence[Any],
    responses: Sequence[str],
    layers: str = "last",
    batch_size: int = 8,
    padding_side: str | None = None,
    sort_by_length: bool = True,
    also: Sequence[str] = (),
) -> dict[str, np.ndarray]:
    """Features of the frozen model `lm` (a LoadedModel) for each (prompt, response) pair.

    prompts: rendered prompt texts (``lm.render(messages)``) or chat message lists.
    Returns float32 arrays keyed ``h_last`` (n, d), ``h_last<N>`` (n, d) for ``layers`` and
    each of ``also`` that is ``"last<N>"`` with N > 1 (all from the same forward pass: arc 3
    asks for two poolings, and a second pass doubled its feature time), ``X`` (the
    representation ``layers`` names), the SCALARS (n,), and int arrays ``n_prompt_tokens`` /
    ``n_response_tokens``.
    """
    import torch

    if len(prompts) != len(responses):
        raise DispoError(
            f"features: {len(prompts)} prompts vs {len(responses)} responses; pass one response per prompt"
        )
    if batch_size < 1:
        raise DispoError(f"features: batch_size={batch_size}; use a positive integer", code=2)
    n_layers = parse_layers(layers)
    pools = sorted({n_layers, *(parse_layers(a) for a in also)} - {1})
    tok, model = lm.tokenizer, lm.model
    side = padding_side or getattr(tok, "padding_side", "left") or "left"
    if side not in ("left", "right"):
        raise DispoError(f"features: padding_side={side!r}; use 'left' or 'right'", code=2)
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)

    p_ids = [tok(_as_prompt_text(lm, p), add_special_tokens=False)["input_ids"] for p in prompts]
    r_ids = [tok(str(r), add_special_tokens=False)["input_ids"] if r else [] for r in responses]
    n = len(p_ids)
    if n and any(len(p) == 0 for p in p_ids):
        raise DispoError("features: an empty prompt has no tokens; every item needs a prompt")
    order = sorted(range(n), key=lambda i: len(p_ids[i]) + len(r_ids[i])) if sort_by_length else list(range(n))

    hidden = None
    pooled: dict[int, np.ndarray] = {}
    scal = {k: np.full(n, np.nan, dtype=np.float32) for k in SCALARS}
    dev = next(model.parameters()).device
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            seqs = [p_ids[i] + r_ids[i] for i in idx]
            ids, mask = _pad_batch(seqs, pad_id, side)
            ids, mask = ids.to(dev), mask.to(dev)
            max_r = max(len(r_ids[i]) for i in idx)
            # left padding puts every response at the end: only its logits are needed
            n_keep = (max_r + 1) if side == "left" else None
            out = _forward(model, ids, mask, n_keep)
            hs = out.hidden_states
            last = last_token_index(mask)
            rows = torch.arange(len(idx), device=dev)
            h = hs[-1][rows, last].float().cpu().numpy()
            if hidden is None:
                hidden = np.zeros((n, h.shape[1]), dtype=np.float32)
                for k in pools:
                    if k > len(hs) - 1:
                        raise DispoError(
                            f"arc.layers=last{k} but the model has {len(hs) - 1} layers; use last{len(hs) - 1} or fewer",
                            code=2,
                        )
                    pooled[k] = np.zeros((n, h.shape[1]), dtype=np.float32)
            hidden[idx] = h
            for k in pools:
                stack = torch.stack([hs[-j][rows, last].float() for j in range(1, k + 1)])
                pooled[k][idx] = stack.mean(dim=0).cpu().numpy()
            logits = out.logits.float()
            width = ids.shape[1]
            offset = width - logits.shape[1]  # logits column j is sequence position offset + j
            for b, i in enumerate(idx):
                nr = len(r_ids[i])
                if nr == 0:
                    continue
                seq_end = int(last[b]) + 1  # one past the final real token
                tgt_pos = torch.arange(seq_end - nr, seq_end, device=dev)
                lg = logits[b, tgt_pos - 1 - offset]  # (nr, vocab): predicts each response token
                logp = torch.log_softmax(lg, dim=-1)
                ent = -(logp.exp() * logp).sum(-1)
                top2 = torch.topk(lg, 2, dim=-1).values
                nll = -logp.gather(1, ids[b, tgt_pos].unsqueeze(1)).squeeze(1)
                scal["entropy_mean"][i] = ent.mean().item()
                scal["entropy_max"][i] = ent.max().item()
                scal["margin_mean"][i] = (top2[:, 0] - top2[:, 1]).mean().item()
                scal["nll_mean"][i] = nll.mean().item()
                scal["nll_std"][i] = nll.std(unbiased=False).item()
    if hidden is None:  # no items
        hidden = np.zeros((0, 0), dtype=np.float32)
    res: dict[str, np.ndarray] = {"h_last": hidden}
    for k in pools:
        res[f"h_last{k}"] = pooled.get(k, np.zeros_like(hidden))
    res["X"] = pooled_key(res, n_layers)
    res.update(scal)
    res["n_prompt_tokens"] = np.array([len(p) for p in p_ids], dtype=np.int64)
    res["n_response_tokens"] = np.array([len(r) for r in r_ids], dtype=np.int64)
    return res


def save_npz(
    path: str | Path,
    X: np.ndarray,
    y: np.ndarray,
    coverage: np.ndarray | None = None,
    ids: Sequence[str] | None = None,
    writer=None,
    **extra: np.ndarray,
) -> Path:
    """Save a probe data set: X (n, d) float32, y (n,) int8, coverage (n,) float32, ids (n,) str.

    `writer` is ``run.write_npz`` (atomic, relative path) when saving into a run dir.
    """
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y).astype(np.int8)
    n = X.shape[0]
    cov = np.full(n, np.nan, dtype=np.float32) if coverage is None else np.asarray(coverage, dtype=np.float32)
    id_arr = np.array([str(i) for i in (ids if ids is not None else range(n))], dtype=str)
    arrays = dict(X=X, y=y, coverage=cov, ids=id_arr, **extra)
    if writer is not None:
        return writer(str(path), **arrays)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(p)
    return p


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Read a features file without pickles; errors name the file."""
    import zipfile
    import zlib

    p = Path(path)
    if not p.exists():
        raise InputFileError(
            f"{p}: no such features file; pass an .npz with X and y (e.g. a run's artifacts/features_eval.npz)"
        )
    try:
        with np.load(p, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:  # truncated/corrupt zip too
        raise InputFileError(
            f"{p}: not a readable .npz ({str(e).splitlines()[0][:120]}); regenerate it with dispo"
        ) from None
