"""dispo.probes.features: h_last / pooled / scalar features against a hand-written forward pass."""

from __future__ import annotations

import numpy as np
import pytest

from dispo.core.errors import DispoError, InputFileError
from dispo.probes.features import extract, last_token_index, load_npz, parse_layers, pooled_key, save_npz

MESSAGES = [
    [{"role": "user", "content": "My hollandaise split. How do I fix it?"}],
    [
        {
            "role": "user",
            "content": "Why did my souffle collapse as soon as it left the oven, and what should I change next time?",
        }
    ],
    [
        {"role": "system", "content": "You are a chef."},
        {"role": "user", "content": "Roux or beurre manie for a quick pan sauce?"},
    ],
    [{"role": "user", "content": "What is a liaison?"}],
    [{"role": "user", "content": "My mayonnaise will not thicken."}],
]
RESPONSES = [
    "Whisk a spoon of warm water into a clean bowl, then add the broken sauce slowly.",
    "The oven door was opened too early.",
    "Beurre manie: it thickens at the end without a long cook.",
    "",  # empty response: scalars are NaN, h_last is the last prompt token
    "Start again with one yolk and drip the broken mixture in.",
]


def _manual(lm, messages, response, n_layers=2):
    """One unpadded sequence through the model by hand: h_last, mean of last n layers, response NLL."""
    import torch

    tok = lm.tokenizer
    p = tok(lm.render(messages), add_special_tokens=False)["input_ids"]
    r = tok(response, add_special_tokens=False)["input_ids"] if response else []
    ids = torch.tensor([p + r])
    with torch.inference_mode():
        out = lm.model(input_ids=ids, output_hidden_states=True)
    hs = out.hidden_states
    h = hs[-1][0, -1].numpy()
    pooled = torch.stack([hs[-k][0, -1] for k in range(1, n_layers + 1)]).mean(0).numpy()
    nll = None
    if r:
        logits = out.logits[0, len(p) - 1 : -1]
        nll = torch.nn.functional.cross_entropy(logits, torch.tensor(r), reduction="none").numpy()
    return h, pooled, nll


@pytest.fixture(scope="module")
def llama():
    from dispo.models.loading import load_model

    return load_model("tiny-llama")


def test_features_match_a_hand_written_forward_pass(llama):
    f = extract(llama, MESSAGES, RESPONSES, layers="last2", batch_size=3)
    assert f["h_last"].shape == (5, llama.model.config.hidden_size) and f["h_last"].dtype == np.float32
    for i, (m, r) in enumerate(zip(MESSAGES, RESPONSES)):
        h, pooled, nll = _manual(llama, m, r)
        np.testing.assert_allclose(f["h_last"][i], h, atol=1e-4)
        np.testing.assert_allclose(f["h_last2"][i], pooled, atol=1e-4)
        if nll is None:
            assert all(np.isnan(f[k][i]) for k in ("entropy_mean", "entropy_max", "margin_mean", "nll_mean", "nll_std"))
            assert f["n_response_tokens"][i] == 0
        else:
            assert f["nll_mean"][i] == pytest.approx(float(nll.mean()), abs=1e-4)
            assert f["nll_std"][i] == pytest.approx(float(nll.std()), abs=1e-4)
            assert f["n_response_tokens"][i] == len(nll)
            assert f["entropy_max"][i] >= f["entropy_mean"][i] > 0
            assert f["margin_mean"][i] >= 0
    np.testing.assert_array_equal(f["X"], f["h_last2"])
    assert not np.allclose(f["h_last"], f["h_last2"])


def test_rendered_text_and_messages_give_the_same_features(llama):
    a = extract(llama, MESSAGES[:2], RESPONSES[:2])
    b = extract(llama, [llama.render(m) for m in MESSAGES[:2]], RESPONSES[:2])
    np.testing.assert_array_equal(a["h_last"], b["h_last"])
    assert "h_last2" not in a and a["X"] is a["h_last"]


def test_one_pass_gives_every_requested_pooling(llama):
    """`also` adds poolings from the same forward pass; each equals its own pass."""
    both = extract(llama, MESSAGES, RESPONSES, layers="last", also=("last2", "last"))
    alone = extract(llama, MESSAGES, RESPONSES, layers="last2")
    np.testing.assert_array_equal(both["X"], both["h_last"])
    np.testing.assert_allclose(both["h_last2"], alone["h_last2"], atol=1e-6)
    assert pooled_key(both, 2) is both["h_last2"] and pooled_key(both, 1) is both["h_last"]
    with pytest.raises(DispoError, match="last9"):
        extract(llama, MESSAGES[:1], RESPONSES[:1], also=("last9",))


@pytest.mark.parametrize("name", ["tiny-llama", "tiny-qwen3", "tiny-qwen3_5", "tiny-gemma4"])
def test_batched_equals_one_at_a_time_on_every_architecture(name):
    from dispo.models.loading import load_model

    lm = load_model(name)
    one = extract(lm, MESSAGES, RESPONSES, layers="last2", batch_size=1)
    left = extract(lm, MESSAGES, RESPONSES, layers="last2", batch_size=5, padding_side="left")
    right = extract(lm, MESSAGES, RESPONSES, layers="last2", batch_size=5, padding_side="right", sort_by_length=False)
    for k in ("h_last", "h_last2", "entropy_mean", "entropy_max", "margin_mean", "nll_mean", "nll_std"):
        np.testing.assert_allclose(left[k], one[k], atol=1e-4, err_msg=f"{name} left {k}")
        np.testing.assert_allclose(right[k], one[k], atol=1e-4, err_msg=f"{name} right {k}")
    # different inputs give different features (the index did not collapse onto padding)
    assert np.abs(one["h_last"][0] - one["h_last"][1]).max() > 1e-3
    h, _, _ = _manual(lm, MESSAGES[1], RESPONSES[1])
    np.testing.assert_allclose(left["h_last"][1], h, atol=1e-4)


def test_last_token_index_left_and_right_padding():
    import torch

    left = np.array([[0, 0, 1, 1], [1, 1, 1, 1], [0, 0, 0, 1]])
    right = np.array([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]])
    np.testing.assert_array_equal(last_token_index(left), [3, 3, 3])
    np.testing.assert_array_equal(last_token_index(right), [1, 3, 0])
    assert last_token_index(torch.tensor(right)).tolist() == [1, 3, 0]


def test_parse_layers():
    assert parse_layers("last") == 1 and parse_layers("last4") == 4
    for bad in ("first", "last0", "4", "lastx"):
        with pytest.raises(DispoError, match="arc.layers"):
            parse_layers(bad)


def test_bad_inputs(llama):
    with pytest.raises(DispoError, match="2 prompts vs 1 responses"):
        extract(llama, MESSAGES[:2], RESPONSES[:1])
    with pytest.raises(DispoError, match="model has 2 layers"):
        extract(llama, MESSAGES[:1], RESPONSES[:1], layers="last9")


def test_npz_round_trip_without_pickles(tmp_path):
    X = np.arange(12, dtype=np.float64).reshape(4, 3)
    p = save_npz(tmp_path / "f.npz", X, [1, 0, 1, 0], [0.75, 0.25, 0.5, 0.0], ["a", "b", "c", "d"], nll_mean=np.ones(4))
    d = load_npz(p)
    assert d["X"].dtype == np.float32 and d["y"].dtype == np.int8
    np.testing.assert_array_equal(d["X"], X.astype(np.float32))
    assert d["ids"].tolist() == ["a", "b", "c", "d"] and d["coverage"][0] == 0.75 and "nll_mean" in d
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"\x00" * 10)
    with pytest.raises(InputFileError, match="bad.npz"):
        load_npz(bad)


@pytest.mark.slow
def test_embedded_model_batched_equals_one_at_a_time():
    from dispo.models.loading import load_model

    lm = load_model("smollm2-135m")
    one = extract(lm, MESSAGES, RESPONSES, layers="last4", batch_size=1)
    many = extract(lm, MESSAGES, RESPONSES, layers="last4", batch_size=8)
    assert one["h_last"].shape == (5, 576)
    for k in ("h_last", "nll_mean", "entropy_mean", "margin_mean"):
        np.testing.assert_allclose(many[k], one[k], atol=1e-4, err_msg=k)
    # inner layers are not normalised (|h| up to ~400 here): same bound, relative to their scale
    np.testing.assert_allclose(many["h_last4"], one["h_last4"], atol=1e-4, rtol=1e-6, err_msg="h_last4")
    # a real model finds its own fluent answer likelier than noise
    noise = extract(lm, MESSAGES[:1], ["zq xv plorb wug krr fnord blat"])
    assert one["nll_mean"][0] < noise["nll_mean"][0]
