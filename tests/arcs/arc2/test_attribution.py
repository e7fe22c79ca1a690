"""Head attribution: capture (one pass, masking), statistics, ranking, artefact flag."""

from functools import lru_cache

import numpy as np
import pytest
import torch

from dispo.arcs.arc2.attribution import HeadActivations, capture_head_activations, cohens_d, rank_heads
from dispo.core.errors import DispoError
from dispo.models.heads import attention_layers

ARCHS = ["tiny-qwen3", "tiny-qwen3_5", "tiny-gemma4", "tiny-llama"]


@lru_cache(maxsize=None)
def _lm(name):
    from dispo.models.loading import load_model

    return load_model(name)


def _acts(norm_fn, vec_fn, S=40, layers=(0, 1), H=4, D=8):
    norms = {
        layer: np.stack([[norm_fn(s, layer, h) for h in range(H)] for s in range(S)]).astype(np.float32)
        for layer in layers
    }
    vecs = {
        layer: np.stack([[vec_fn(s, layer, h) for h in range(H)] for s in range(S)]).astype(np.float32)
        for layer in layers
    }
    return HeadActivations(
        layers=list(layers),
        n_heads={lay: H for lay in layers},
        head_dim={lay: D for lay in layers},
        norms=norms,
        vecs=vecs,
        n_tokens=np.full(S, 5),
    )


def test_cohens_d_known_values():
    # means 2 and 5, each SD 1 -> d = -3
    assert cohens_d(np.array([1.0, 2, 3]), np.array([4.0, 5, 6])) == pytest.approx(-3.0)
    # unequal sizes: pooled var = (3*var(a) + 1*var(b)) / 4
    a, b = np.array([0.0, 0, 2, 2]), np.array([1.0, 3])
    pooled = np.sqrt((3 * (4 / 3) + 1 * 2) / 4)
    assert cohens_d(a, b) == pytest.approx((1 - 2) / pooled)
    assert np.isnan(cohens_d(np.array([1.0]), np.array([1.0, 2.0])))


def test_planted_directional_signal_ranked_first():
    rng = np.random.default_rng(0)
    S, D = 40, 8
    cohort = np.arange(S) < 20
    noise = rng.normal(size=(S, 2, 4, D))
    offset = np.zeros(D)
    offset[3] = 2.0

    def vec(s, layer, h):
        v = noise[s, layer, h].copy()
        if (layer, h) == (1, 2) and cohort[s]:
            v += offset
        return v

    acts = _acts(lambda s, layer, h: np.linalg.norm(noise[s, layer, h]), vec)
    r = rank_heads(acts, cohort, method="directional")
    assert r.top(1) == [(1, 2)]
    top = r.rows[0]
    assert top["d"] > 1.5 and top["score"] == pytest.approx(abs(top["d"]))
    # the held-out d survives for the planted head and shrinks for noise heads
    assert top["d_heldout"] > 1.0
    noise_heldout = [abs(x["d_heldout"]) for x in r.rows[1:]]
    assert np.median(noise_heldout) < 0.8
    assert len(r.rows) == 8 and [x["rank"] for x in r.rows] == list(range(1, 9))


def test_planted_magnitude_signal_ranked_first():
    rng = np.random.default_rng(1)
    S = 40
    cohort = np.arange(S) % 2 == 0
    base = rng.uniform(1.0, 1.2, size=(S, 2, 4))

    def norm(s, layer, h):
        return base[s, layer, h] * (1.5 if (layer, h) == (0, 3) and not cohort[s] else 1.0)

    acts = _acts(norm, lambda s, layer, h: rng.normal(size=8))
    r = rank_heads(acts, cohort, method="magnitude")
    assert r.top(1) == [(0, 3)]
    row = r.rows[0]
    a = np.array([norm(s, 0, 3) for s in range(S) if cohort[s]])
    b = np.array([norm(s, 0, 3) for s in range(S) if not cohort[s]])
    assert row["score"] == pytest.approx(abs(a.mean() - b.mean()), rel=1e-5)
    assert row["d"] < -2  # A (unscaled) is smaller


def test_variance_artefact_flag():
    """High cos + high d (tiny, low-variance shift on a big common vector) is flagged; a large,
    differently-oriented difference is not."""
    rng = np.random.default_rng(2)
    S, D = 40, 8
    cohort = np.arange(S) < 20
    common = np.zeros(D)
    common[0] = 10.0
    shift = np.zeros(D)
    shift[1] = 0.2

    def vec(s, layer, h):
        if (layer, h) == (0, 0):  # artefact: cos(mu_A, mu_B) ~ 0.9998, d >> 1.3
            return common + (shift if cohort[s] else 0) + rng.normal(scale=0.05, size=D)
        if (layer, h) == (0, 1):  # genuine: orthogonal means
            e = np.zeros(D)
            e[2 if cohort[s] else 3] = 3.0
            return e + rng.normal(scale=0.5, size=D)
        return rng.normal(size=D)

    acts = _acts(lambda s, layer, h: 1.0 + rng.normal(scale=0.01), vec)
    r = rank_heads(acts, cohort, method="directional")
    rows = {(x["layer"], x["head"]): x for x in r.rows}
    art, real = rows[(0, 0)], rows[(0, 1)]
    assert art["cos"] > 0.99 and abs(art["d"]) > 1.3 and art["variance_artefact"] is True
    assert real["cos"] < 0.5 and abs(real["d"]) > 1.3 and real["variance_artefact"] is False
    assert not any(x["variance_artefact"] for k, x in rows.items() if k not in {(0, 0)})
    # thresholds are configurable
    r2 = rank_heads(acts, cohort, method="directional", artefact_d=1e9)
    assert not any(x["variance_artefact"] for x in r2.rows)
    assert (0, 0) not in r.top(2, exclude_artefacts=True)


def test_small_cohort_is_a_clear_error():
    acts = _acts(lambda s, layer, h: 1.0, lambda s, layer, h: np.ones(8), S=6)
    with pytest.raises(DispoError, match="cohorts too small.*has 1"):
        rank_heads(acts, [True, False, False, False, False, False])
    with pytest.raises(DispoError, match="magnitude, directional"):
        rank_heads(acts, [True, True, True, False, False, False], method="cosine")


def test_capture_matches_manual_single_sequence():
    """Batched + left-padded capture equals a hand computation on each sequence alone."""
    lm = _lm("tiny-llama")
    prompts = [
        lm.render([{"role": "user", "content": q}])
        for q in ("Why does my sauce split?", "Roux?", "How long to rest a steak after searing it in a pan?")
    ]
    responses = [
        "Because the butter was too hot, add it slowly.",
        "Cook it longer.",
        "About five minutes, tented loosely with foil so the crust stays crisp.",
    ]
    N = 4
    acts = capture_head_activations(lm.model, lm.tokenizer, prompts, responses, last_n_tokens=N, batch_size=3)
    hl = attention_layers(lm.model)[1]
    for i, (p, r) in enumerate(zip(prompts, responses)):
        pi = lm.tokenizer(p, add_special_tokens=False)["input_ids"]
        ri = lm.tokenizer(r, add_special_tokens=False)["input_ids"]
        got = {}
        h = hl.o_proj.register_forward_pre_hook(lambda m, a: got.__setitem__("x", a[0]))  # noqa: B023
        with torch.no_grad():
            lm.model(input_ids=torch.tensor([pi + ri]))
        h.remove()
        x = got["x"][0, -N:].reshape(N, hl.n_heads, hl.head_dim)  # last N tokens are response tokens
        assert np.allclose(acts.norms[1][i], x.norm(dim=-1).mean(0).numpy(), atol=1e-4)
        assert np.allclose(acts.vecs[1][i], x.mean(0).numpy(), atol=1e-4)
    assert list(acts.n_tokens) == [N, N, N]


def test_short_response_masks_prompt_tokens():
    lm = _lm("tiny-llama")
    p = lm.render([{"role": "user", "content": "Salt?"}])
    long_p = lm.render([{"role": "user", "content": "Salt? " + "Tell me everything please. " * 3}])
    acts = capture_head_activations(lm.model, lm.tokenizer, [p, long_p], ["Yes.", "Yes."], last_n_tokens=16)
    n_resp = len(lm.tokenizer("Yes.", add_special_tokens=False)["input_ids"])
    assert list(acts.n_tokens) == [n_resp, n_resp]
    acts_1 = capture_head_activations(lm.model, lm.tokenizer, [p], ["Yes."], last_n_tokens=n_resp)
    assert np.allclose(acts.norms[0][0], acts_1.norms[0][0], atol=1e-5)


def test_planted_head_in_tiny_model_ranked_first():
    """A tiny model whose head (1, 2) gets an offset only when the response contains a marker
    token: attribution over real forward passes puts that head first."""
    lm = _lm("tiny-llama")
    tok = lm.tokenizer
    marker = tok(" basil", add_special_tokens=False)["input_ids"][-1]
    hl = {h.index: h for h in attention_layers(lm.model)}[1]
    sl = hl.head_slice(2)
    state = {}
    h1 = lm.model.model.embed_tokens.register_forward_pre_hook(lambda m, a: state.__setitem__("ids", a[0]))

    def plant(m, a):
        x = a[0].clone()
        has = (state["ids"] == marker).any(-1).to(x.dtype)[:, None, None]
        x[..., sl] = x[..., sl] + 0.5 * has
        return (x,)

    h2 = hl.o_proj.register_forward_pre_hook(plant)
    try:
        qs = [f"Question {i}: what herb goes with tomato number {i}?" for i in range(16)]
        prompts = [lm.render([{"role": "user", "content": q}]) for q in qs]
        cohort = np.arange(16) % 2 == 0
        responses = [
            ("Use fresh basil leaves." if c else "Use fresh mint leaves.") + f" Try {i}." for i, c in enumerate(cohort)
        ]
        acts = capture_head_activations(lm.model, tok, prompts, responses, last_n_tokens=8, batch_size=5)
    finally:
        h1.remove()
        h2.remove()
    for method in ("directional", "magnitude"):
        assert rank_heads(acts, cohort, method=method).top(1) == [(1, 2)], method


@pytest.mark.parametrize("name", ARCHS)
def test_all_archs_capture_and_rank(name, tmp_path):
    lm = _lm(name)
    prompts = [lm.render([{"role": "user", "content": f"Dish {i}?"}]) for i in range(6)]
    responses = [f"Answer number {i} " + "with words " * (i % 3) for i in range(6)]
    acts = capture_head_activations(lm.model, lm.tokenizer, prompts, responses, last_n_tokens=6, batch_size=4)
    hls = attention_layers(lm.model)
    assert acts.layers == [h.index for h in hls]
    for h in hls:
        assert acts.vecs[h.index].shape == (6, h.n_heads, h.head_dim)
        assert np.isfinite(acts.norms[h.index]).all() and (acts.norms[h.index] > 0).all()
    r = rank_heads(acts, [True, False] * 3, method="directional")
    assert len(r.rows) == sum(h.n_heads for h in hls)
    if name == "tiny-qwen3_5":
        assert [s["index"] for s in acts.skipped] == [0, 1, 2]
        assert "Layer 0 skipped" in r.to_markdown()
    # round-trip through the run-dir artefact
    acts.save(tmp_path / "acts.npz")
    back = HeadActivations.load(tmp_path / "acts.npz")
    assert np.array_equal(back.vecs[hls[-1].index], acts.vecs[hls[-1].index]) and back.skipped == acts.skipped
    csv = r.to_csv().splitlines()
    assert csv[0].startswith("rank,layer,head,score,d,cos,variance_artefact") and len(csv) == len(r.rows) + 1
    png = r.heatmap(tmp_path / "heat.png", top_k=2)
    assert png.read_bytes()[:4] == b"\x89PNG"
