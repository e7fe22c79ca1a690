"""DecodingParams parsing and the token-selection rules, checked against transformers'
own logits processors as the reference."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from dispo.core.errors import ConfigError
from dispo.generate.engine import DecodingParams, _select_tokens, stop_token_ids

CONF = Path(__file__).resolve().parents[2] / "dispo" / "conf" / "decoding"


def test_from_config_reads_shipped_yaml_and_rejects_unknown_keys():
    import yaml

    for path in sorted(CONF.glob("*.yaml")):
        cfg = yaml.safe_load(path.read_text())
        params = DecodingParams.from_config(cfg)
        assert {k: params.to_dict()[k] for k in cfg} == cfg
    with pytest.raises(ConfigError, match="max_tokens"):
        DecodingParams.from_config({"max_tokens": 5})


@pytest.mark.parametrize(
    "bad",
    [
        {"max_new_tokens": 0},
        {"temperature": -1},
        {"top_p": 0},
        {"top_p": 1.5},
        {"batch_size": 0},
        {"engine": "fast"},
        {"max_new_tokens": "many"},
    ],
)
def test_invalid_values_are_config_errors(bad):
    with pytest.raises(ConfigError):
        DecodingParams.from_config(bad)


def test_to_dict_records_everything_but_cache_key_ignores_batch_size_and_engine():
    p = DecodingParams(max_new_tokens=7, temperature=0.5, batch_size=3, engine="padded")
    assert DecodingParams.from_config(p.to_dict()) == p
    assert p.to_dict()["batch_size"] == 3 and p.to_dict()["engine"] == "padded"
    assert DecodingParams(max_new_tokens=7, temperature=0.5).cache_dict() == p.cache_dict()
    assert DecodingParams(max_new_tokens=8, temperature=0.5).cache_dict() != p.cache_dict()


def _logits(seed=0, rows=3, vocab=50):
    import torch

    g = torch.Generator().manual_seed(seed)
    return torch.randn(rows, vocab, generator=g) * 3


def test_repetition_penalty_matches_transformers_and_ignores_padding():
    import torch
    from transformers import RepetitionPenaltyLogitsProcessor

    logits = _logits()
    history = torch.tensor([[0, 0, 5, 7, 7], [0, 9, 1, 2, 3], [4, 4, 4, 4, 49]])
    pads = [2, 1, 0]  # leading pad tokens (id 0) of rows 0 and 1 must not be penalised
    params = DecodingParams(repetition_penalty=1.7)
    ref_scores = torch.stack(
        [
            RepetitionPenaltyLogitsProcessor(1.7)(history[r : r + 1, p:], logits[r : r + 1].clone())[0]
            for r, p in enumerate(pads)
        ]
    )
    picked = _select_tokens(logits, params, [history[r, p:] for r, p in enumerate(pads)], None)
    assert picked.tolist() == ref_scores.argmax(-1).tolist()


def test_sampling_filters_match_transformers_warpers():
    import torch
    from transformers import TopKLogitsWarper, TopPLogitsWarper

    logits = _logits(seed=1, rows=2, vocab=30)
    params = DecodingParams(temperature=0.7, top_k=5, top_p=0.6)
    ref = TopPLogitsWarper(0.6)(None, TopKLogitsWarper(5)(None, logits / 0.7))
    allowed = [set(torch.nonzero(torch.isfinite(ref[r])).flatten().tolist()) for r in range(2)]
    gens = [torch.Generator().manual_seed(s) for s in (0, 1)]
    drawn = [set(), set()]
    for _ in range(300):
        for r, t in enumerate(_select_tokens(logits, params, None, gens).tolist()):
            drawn[r].add(t)
    assert drawn == allowed


def test_sampling_depends_only_on_the_row_generator():
    import torch

    logits = _logits(seed=2, rows=4, vocab=40)
    params = DecodingParams(temperature=1.0)
    first = _select_tokens(logits, params, None, [torch.Generator().manual_seed(s) for s in range(4)])
    # same generators, rows in a different batch (other rows replaced): same draws
    alone = _select_tokens(logits[2:3], params, None, [torch.Generator().manual_seed(2)])
    assert alone.tolist() == first[2:3].tolist()


def test_greedy_picks_argmax():
    logits = _logits(seed=3)
    assert _select_tokens(logits, DecodingParams(), None, None).tolist() == logits.argmax(-1).tolist()


def test_stop_tokens_include_generation_config_list_and_end_of_turn():
    vocab = {"<|im_end|>": 9, "a": 1, "<unk>": 0}
    inverse = {v: k for k, v in vocab.items()}
    tok = SimpleNamespace(
        eos_token_id=5, convert_tokens_to_ids=lambda t: vocab.get(t, 0), convert_ids_to_tokens=lambda i: inverse[i]
    )
    model = SimpleNamespace(generation_config=SimpleNamespace(eos_token_id=[5, 7]))
    assert stop_token_ids(SimpleNamespace(tokenizer=tok, model=model)) == {5, 7, 9}
    model.generation_config.eos_token_id = 11
    assert stop_token_ids(SimpleNamespace(tokenizer=tok, model=model)) == {5, 9, 11}
