"""Attention-head attribution by cohort (arc 2).

1. `capture_head_activations`: ONE batched forward pass per batch over prompt+response (text
   that was already generated), with forward pre-hooks on every attention layer's o_proj. For
   the last N response tokens of each sample (padding and prompt tokens masked out) it keeps,
   per (layer, head): the mean L2 norm of the head's o_proj input slice and the mean slice vector.
2. `rank_heads`: given cohorts A and B (correct vs wrong, or a rubric axis >= 4 vs < 4):
     magnitude    score = |mean norm A - mean norm B|, d = Cohen's d of the per-sample norms
     directional  score = |d|, d = Cohen's d of the per-sample projections onto
                  u = (mu_A - mu_B) / ||mu_A - mu_B||
     signed_d     score = d = Cohen's d of the per-sample norms, SIGNED, ranked descending:
                  the heads whose norm is larger in cohort A than in B come first (the paper:
                  eval/scripts/path_b_attribution.py:234-261, A = wrong-and-asserted)
   Every row also carries cos(mu_A, mu_B): a large d with cos ~ 1 means the cohorts' mean
   vectors point the same way and d comes from a small, low-variance difference (the paper's
   "variance artefact", flagged when |d| > artefact_d and cos > artefact_cos).
   The in-sample directional d is optimistic (u is fitted on the same samples); `d_heldout`
   is the same statistic with u fitted on one half and evaluated on the other (2-fold, mean).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from dispo.core.errors import DispoError

METHODS = ("magnitude", "directional", "signed_d")


# --------------------------------------------------------------------------- capture


@dataclass
class HeadActivations:
    """Per-sample, per-head summaries of o_proj inputs over the last N response tokens."""

    layers: list[int]
    n_heads: dict[int, int]
    head_dim: dict[int, int]
    norms: dict[int, np.ndarray]  # layer -> [S, H] mean L2 norm of the head slice
    vecs: dict[int, np.ndarray]  # layer -> [S, H, D] mean head-slice vector
    n_tokens: np.ndarray  # [S] response tokens averaged over (0 -> sample unusable)
    ids: list[str] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    last_n_tokens: int = 0

    @property
    def n_samples(self) -> int:
        return int(self.n_tokens.shape[0])

    def save(self, path: str | Path) -> None:
        from dispo.core import atomic

        arrays: dict[str, Any] = {
            "n_tokens": self.n_tokens,
            "layers": np.asarray(self.layers),
            "ids": np.asarray(self.ids, dtype=str),
        }
        for layer in self.layers:
            arrays[f"norms_L{layer}"] = self.norms[layer]
            arrays[f"vecs_L{layer}"] = self.vecs[layer]
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic.write_bytes(path, buf.getvalue())
        atomic.write_json(
            Path(str(path) + ".json"),
            {
                "n_heads": {str(k): v for k, v in self.n_heads.items()},
                "head_dim": {str(k): v for k, v in self.head_dim.items()},
                "skipped": self.skipped,
                "last_n_tokens": self.last_n_tokens,
            },
        )

    @classmethod
    def load(cls, path: str | Path) -> "HeadActivations":
        import json

        meta = json.loads(Path(str(path) + ".json").read_text())
        with np.load(path) as z:
            layers = [int(x) for x in z["layers"]]
            return cls(
                layers=layers,
                n_heads={int(k): v for k, v in meta["n_heads"].items()},
                head_dim={int(k): v for k, v in meta["head_dim"].items()},
                norms={layer: z[f"norms_L{layer}"] for layer in layers},
                vecs={layer: z[f"vecs_L{layer}"] for layer in layers},
                n_tokens=z["n_tokens"],
                ids=[str(x) for x in z["ids"]],
                skipped=meta["skipped"],
                last_n_tokens=meta["last_n_tokens"],
            )


def _tokenize_pairs(tokenizer, prompts: Sequence[str], responses: Sequence[str]):
    """ids of prompt (rendered, special tokens already in the text) and response, separately,
    so the response positions are known exactly."""
    p_ids = tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
    r_ids = tokenizer(list(responses), add_special_tokens=False)["input_ids"]
    return p_ids, r_ids


def _forward(model, input_ids, attention_mask, position_ids):
    kw = dict(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=False)
    try:
        return model(**kw, logits_to_keep=1)
    except TypeError as e:  # models without logits_to_keep
        if "logits_to_keep" not in str(e):
            raise
        return model(**kw)


def capture_head_activations(
    model,
    tokenizer,
    prompts: Sequence[str],
    responses: Sequence[str],
    *,
    last_n_tokens: int = 32,
    batch_size: int = 8,
    ids: Sequence[str] | None = None,
    max_length: int | None = None,
) -> HeadActivations:
    """One forward pass per batch over prompt+response; see the module docstring.

    Sequences are left-padded (position ids follow the attention mask, as in generation) and
    batched by length. `max_length` truncates from the left (keeps the response end)."""
    import torch

    from dispo.models.heads import attention_layers, skipped_layers

    if len(prompts) != len(responses):
        raise DispoError(f"attribution: {len(prompts)} prompts vs {len(responses)} responses")
    if last_n_tokens < 1:
        raise DispoError(f"arc.last_n_tokens must be >= 1, got {last_n_tokens}")
    hls = attention_layers(model)
    S = len(prompts)
    p_ids, r_ids = _tokenize_pairs(tokenizer, prompts, responses)
    seqs, n_resp = [], []
    for p, r in zip(p_ids, r_ids):
        s = list(p) + list(r)
        if max_length and len(s) > max_length:
            s = s[-max_length:]
        seqs.append(s)
        n_resp.append(min(len(r), last_n_tokens, len(s)))
    n_resp_arr = np.asarray(n_resp, dtype=np.int64)
    norms = {hl.index: np.zeros((S, hl.n_heads), np.float32) for hl in hls}
    vecs = {hl.index: np.zeros((S, hl.n_heads, hl.head_dim), np.float32) for hl in hls}
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    device = next(model.parameters()).device

    # the hook reduces on the spot (the [B, T, width] attention output is never kept)
    hl_by_index = {hl.index: hl for hl in hls}
    captured: dict[int, tuple[Any, Any]] = {}
    window: dict[str, Any] = {}

    def make_hook(layer: int):
        hl = hl_by_index[layer]

        def hook(module, args, kwargs):
            x = args[0] if args else next(iter(kwargs.values()))
            N, w, denom = window["N"], window["w"], window["denom"]
            x = x[:, -N:, :].float().reshape(x.shape[0], N, hl.n_heads, hl.head_dim)
            nrm = (x.norm(dim=-1) * w).sum(1) / denom[:, None]  # [B, H]
            vec = (x * w[..., None]).sum(1) / denom[:, None, None]  # [B, H, D]
            captured[layer] = (nrm, vec)

        return hook

    order = sorted(range(S), key=lambda i: len(seqs[i]))
    handles = [hl.o_proj.register_forward_pre_hook(make_hook(hl.index), with_kwargs=True) for hl in hls]
    try:
        with torch.inference_mode():
            for b0 in range(0, S, batch_size):
                idx = order[b0 : b0 + batch_size]
                T = max(len(seqs[i]) for i in idx)
                ids_t = torch.full((len(idx), T), pad, dtype=torch.long)
                mask = torch.zeros((len(idx), T), dtype=torch.long)
                for row, i in enumerate(idx):
                    s = seqs[i]
                    ids_t[row, T - len(s) :] = torch.tensor(s, dtype=torch.long)
                    mask[row, T - len(s) :] = 1
                pos = (mask.cumsum(-1) - 1).clamp(min=0)
                N = min(last_n_tokens, T)
                nb = torch.tensor([n_resp[i] for i in idx], dtype=torch.long)
                # token j of the kept window (0..N-1) is a response token iff j >= N - n_i
                valid = (torch.arange(N)[None, :] >= (N - nb)[:, None]).float()  # [B, N]
                window.update(N=N, w=valid[:, :, None].to(device), denom=valid.sum(1).clamp(min=1).to(device))
                captured.clear()
                _forward(model, ids_t.to(device), mask.to(device), pos.to(device))
                missing = [hl.index for hl in hls if hl.index not in captured]
                if missing:
                    raise DispoError(f"attribution: o_proj of layers {missing} was not called in the forward pass")
                for hl in hls:
                    nrm, vec = captured[hl.index]
                    norms[hl.index][idx] = nrm.cpu().numpy()
                    vecs[hl.index][idx] = vec.cpu().numpy()
    finally:
        for h in handles:
            h.remove()
        captured.clear()
        window.clear()
    return HeadActivations(
        layers=[hl.index for hl in hls],
        n_heads={hl.index: hl.n_heads for hl in hls},
        head_dim={hl.index: hl.head_dim for hl in hls},
        norms=norms,
        vecs=vecs,
        n_tokens=n_resp_arr,
        ids=[str(x) for x in (ids if ids is not None else range(S))],
        skipped=[asdict(s) for s in skipped_layers(model)],
        last_n_tokens=last_n_tokens,
    )


# --------------------------------------------------------------------------- statistics


def cohens_d(a: np.ndarray, b: np.ndarray, axis: int = 0) -> np.ndarray:
    """(mean a - mean b) / pooled SD (ddof 1), vectorised over the other axes. nan when the
    pooled SD is 0 or a cohort has fewer than 2 samples."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    na, nb = a.shape[axis], b.shape[axis]
    if na < 2 or nb < 2:
        shape = np.delete(np.array(a.shape), axis)
        return np.full(tuple(shape), np.nan)
    va, vb = a.var(axis=axis, ddof=1), b.var(axis=axis, ddof=1)
    sd = np.sqrt(((na - 1) * va + (nb - 1) * vb) / (na + nb - 2))
    diff = a.mean(axis=axis) - b.mean(axis=axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = diff / sd
    return np.where(sd > 1e-12 * np.maximum(1.0, np.abs(diff)), d, np.nan)


def _cos(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    nu, nv = np.linalg.norm(u, axis=-1), np.linalg.norm(v, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((nu > 0) & (nv > 0), (u * v).sum(-1) / (nu * nv), np.nan)


def _directional_d(
    va: np.ndarray, vb: np.ndarray, fit_a: np.ndarray | None = None, fit_b: np.ndarray | None = None
) -> np.ndarray:
    """va [na, H, D], vb [nb, H, D] -> d [H] of projections onto the (fitted) mean difference."""
    fa = va if fit_a is None else fit_a
    fb = vb if fit_b is None else fit_b
    diff = fa.mean(0) - fb.mean(0)  # [H, D]
    nrm = np.linalg.norm(diff, axis=-1, keepdims=True)
    u = np.divide(diff, nrm, out=np.zeros_like(diff), where=nrm > 0)
    pa, pb = (va * u).sum(-1), (vb * u).sum(-1)  # [n, H]
    return cohens_d(pa, pb)


def _heldout_d(va: np.ndarray, vb: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-fold cross-fitted directional d (u from one half, d on the other, averaged)."""
    H = va.shape[1]
    if va.shape[0] < 4 or vb.shape[0] < 4:
        return np.full(H, np.nan)
    rng = np.random.default_rng(seed)
    ia, ib = rng.permutation(va.shape[0]), rng.permutation(vb.shape[0])
    a1, a2 = ia[: len(ia) // 2], ia[len(ia) // 2 :]
    b1, b2 = ib[: len(ib) // 2], ib[len(ib) // 2 :]
    d1 = _directional_d(va[a2], vb[b2], va[a1], vb[b1])
    d2 = _directional_d(va[a1], vb[b1], va[a2], vb[b2])
    return np.nanmean(np.stack([d1, d2]), axis=0) if np.isfinite([d1, d2]).any() else np.full(H, np.nan)


def _num(x: float) -> float | None:
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else x


@dataclass
class HeadRanking:
    method: str
    rows: list[dict]  # sorted by score, best first
    n_a: int
    n_b: int
    cohort_names: tuple[str, str] = ("A", "B")
    skipped: list[dict] = field(default_factory=list)
    artefact_d: float = 1.3
    artefact_cos: float = 0.95

    COLUMNS = (
        "rank",
        "layer",
        "head",
        "score",
        "d",
        "cos",
        "variance_artefact",
        "norm_a",
        "norm_b",
        "d_magnitude",
        "d_directional",
        "d_heldout",
    )

    def top(self, k: int, exclude_artefacts: bool = False) -> list[tuple[int, int]]:
        rows = [r for r in self.rows if r["score"] is not None]
        if exclude_artefacts:
            rows = [r for r in rows if not r["variance_artefact"]]
        return [(r["layer"], r["head"]) for r in rows[:k]]

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(self.COLUMNS), extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for r in self.rows:
            w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in self.COLUMNS})
        return buf.getvalue()

    def to_markdown(self, limit: int | None = 20) -> str:
        def f(x, nd=3):
            return "n/a" if x is None else (f"{x:.{nd}f}" if isinstance(x, float) else str(x))

        a, b = self.cohort_names
        lines = [
            f"Method: **{self.method}**; cohorts {a} (n={self.n_a}) vs {b} (n={self.n_b}); "
            f"variance-artefact flag: |d| > {self.artefact_d} and cos > {self.artefact_cos}.",
            "",
            "| rank | layer | head | score | d | cos(mu_A, mu_B) | d held-out | artefact |",
            "|---:|---:|---:|---:|---:|---:|---:|:---|",
        ]
        for r in self.rows[:limit]:
            lines.append(
                f"| {r['rank']} | {r['layer']} | {r['head']} | {f(r['score'], 4)} | {f(r['d'])} | "
                f"{f(r['cos'], 4)} | {f(r['d_heldout'])} | {'YES' if r['variance_artefact'] else ''} |"
            )
        if limit is not None and len(self.rows) > limit:
            lines.append(f"\n({len(self.rows) - limit} more heads in head_ranking.csv)")
        for s in self.skipped:
            lines.append(f"\nLayer {s['index']} skipped: {s['reason']}")
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict:
        return {
            "method": self.method,
            "n_a": self.n_a,
            "n_b": self.n_b,
            "cohorts": list(self.cohort_names),
            "artefact_d": self.artefact_d,
            "artefact_cos": self.artefact_cos,
            "skipped": self.skipped,
            "rows": self.rows,
        }

    def matrix(self, key: str = "score") -> tuple[list[int], np.ndarray]:
        layers = sorted({r["layer"] for r in self.rows})
        H = max(r["head"] for r in self.rows) + 1
        m = np.full((len(layers), H), np.nan)
        li = {layer: i for i, layer in enumerate(layers)}
        for r in self.rows:
            v = r.get(key)
            m[li[r["layer"]], r["head"]] = np.nan if v is None else float(v)
        return layers, m

    def heatmap(self, path: str | Path, title: str | None = None, top_k: int = 0) -> Path:
        """layer x head heat map of the score; artefact heads marked x, top-k boxed."""
        from dispo.core.plotting import pyplot

        plt = pyplot()
        from matplotlib.patches import Rectangle

        layers, m = self.matrix("score")
        fig, ax = plt.subplots(figsize=(max(5, 0.45 * m.shape[1] + 2), max(3, 0.28 * len(layers) + 1.5)))
        im = ax.imshow(np.ma.masked_invalid(m), aspect="auto", cmap="viridis", interpolation="nearest")
        fig.colorbar(im, ax=ax, label=f"{self.method} score")
        ax.set_yticks(range(len(layers)), [str(x) for x in layers])
        ax.set_xticks(range(m.shape[1]))
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        li = {layer: i for i, layer in enumerate(layers)}
        for r in self.rows:
            if r["variance_artefact"]:
                ax.text(r["head"], li[r["layer"]], "x", ha="center", va="center", color="red", fontsize=8)
        for layer, h in self.top(top_k):
            ax.add_patch(Rectangle((h - 0.5, li[layer] - 0.5), 1, 1, fill=False, edgecolor="white", lw=1.5))
        ax.set_title(
            title or f"head attribution ({self.method})\n{self.cohort_names[0]} vs {self.cohort_names[1]}", fontsize=8
        )
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
        fig.savefig(tmp, dpi=110)
        plt.close(fig)
        tmp.replace(path)
        return path


def rank_heads(
    acts: HeadActivations,
    cohort_a: Sequence[bool],
    cohort_b: Sequence[bool] | None = None,
    *,
    method: str = "magnitude",
    artefact_d: float = 1.3,
    artefact_cos: float = 0.95,
    min_cohort: int = 2,
    cohort_names: tuple[str, str] = ("A", "B"),
    seed: int = 0,
) -> HeadRanking:
    """Rank every (layer, head) by how it separates cohort A from cohort B.

    cohort_b defaults to "not A". Samples in neither cohort, or with no response tokens, are
    left out. Raises DispoError when a cohort has fewer than `min_cohort` usable samples."""
    if method not in METHODS:
        raise DispoError(f"arc.method must be one of {', '.join(METHODS)}; got '{method}'")
    a = np.asarray(cohort_a, dtype=bool)
    b = ~a if cohort_b is None else np.asarray(cohort_b, dtype=bool)
    if a.shape[0] != acts.n_samples or b.shape[0] != acts.n_samples:
        raise DispoError(f"cohort labels for {a.shape[0]} samples but activations for {acts.n_samples}")
    usable = acts.n_tokens > 0
    a, b = a & usable, b & usable & ~a
    na, nb = int(a.sum()), int(b.sum())
    if na < min_cohort or nb < min_cohort:
        raise DispoError(
            f"cohorts too small for attribution: {cohort_names[0]} has {na}, {cohort_names[1]} has {nb} "
            f"usable samples (need >= {min_cohort} each); raise `limit`, pick another disposition or "
            f"cohort source"
        )
    rows = []
    for layer in acts.layers:
        nrm, vec = acts.norms[layer], acts.vecs[layer]
        ma, mb = nrm[a].mean(0), nrm[b].mean(0)
        d_mag = cohens_d(nrm[a], nrm[b])
        mu_a, mu_b = vec[a].mean(0), vec[b].mean(0)
        cos = _cos(mu_a, mu_b)
        d_dir = _directional_d(vec[a], vec[b])
        d_ho = _heldout_d(vec[a], vec[b], seed=seed + layer)
        for h in range(acts.n_heads[layer]):
            if method == "magnitude":
                score, d = abs(float(ma[h] - mb[h])), d_mag[h]
            elif method == "signed_d":
                score, d = (float(d_mag[h]) if np.isfinite(d_mag[h]) else float("nan")), d_mag[h]
            else:
                score, d = (abs(float(d_dir[h])) if np.isfinite(d_dir[h]) else float("nan")), d_dir[h]
            dd, cc = _num(d), _num(cos[h])
            flag = bool(dd is not None and cc is not None and abs(dd) > artefact_d and cc > artefact_cos)
            rows.append(
                {
                    "layer": int(layer),
                    "head": int(h),
                    "score": _num(score),
                    "d": dd,
                    "cos": cc,
                    "variance_artefact": flag,
                    "norm_a": _num(ma[h]),
                    "norm_b": _num(mb[h]),
                    "d_magnitude": _num(d_mag[h]),
                    "d_directional": _num(d_dir[h]),
                    "d_heldout": _num(d_ho[h]),
                }
            )
    rows.sort(key=lambda r: (r["score"] is None, -(r["score"] or 0.0), r["layer"], r["head"]))
    for i, r in enumerate(rows, 1):
        r["rank"] = i
    return HeadRanking(
        method=method,
        rows=rows,
        n_a=na,
        n_b=nb,
        cohort_names=cohort_names,
        skipped=list(acts.skipped),
        artefact_d=artefact_d,
        artefact_cos=artefact_cos,
    )
