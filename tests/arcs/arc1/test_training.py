"""LoRA SFT / DPO: loss mask, think handling, one step per tiny architecture, memorisation."""

from __future__ import annotations

import json
import math

import pytest

from dispo.core.errors import DispoError

ARCHS = ["tiny-qwen3", "tiny-qwen3_5", "tiny-gemma4", "tiny-llama"]
SMALL = dict(r=4, alpha=8, epochs=1, batch_size=2, effective_batch=2, max_length=128, lr=1e-2, progress=False)


@pytest.fixture(scope="module")
def llama():
    from dispo.models.loading import load_model

    return load_model("tiny-llama")


def _conv(q, a):
    return [{"role": "user", "content": q}, {"role": "assistant", "content": a}]


def _labelled(lm, ex):
    return lm.tokenizer.decode([t for t in ex["labels"] if t != -100])


def test_loss_mask_covers_exactly_the_assistant_turn(llama):
    from dispo.arcs.arc1.training import build_sft_example

    msgs = _conv("Name a French mother sauce.", "Bechamel, thickened with a roux.")
    ex = build_sft_example(llama, msgs)
    # the unlabelled prefix is exactly what the model is prompted with at inference
    prompt_ids = llama.tokenizer(llama.render(msgs[:1]), add_special_tokens=False)["input_ids"]
    assert ex["input_ids"][: len(prompt_ids)] == prompt_ids
    assert all(t == -100 for t in ex["labels"][: len(prompt_ids)])
    assert all(t != -100 for t in ex["labels"][len(prompt_ids) :])
    assert _labelled(llama, ex) == "Bechamel, thickened with a roux.<|im_end|>"
    assert "Name a French" not in _labelled(llama, ex)


def test_empty_label_mask_raises(llama, tmp_path):
    from dispo.arcs.arc1.training import build_sft_example, check_label_masks, train_sft

    long_q = "word " * 200
    ex = build_sft_example(llama, _conv(long_q, "ok"), max_length=32)
    with pytest.raises(DispoError, match="empty loss mask"):
        check_label_masks([ex], 32)
    with pytest.raises(DispoError, match="max_length"):
        train_sft(llama, [_conv("hi", "yes"), _conv(long_q, "ok")], tmp_path / "a", {**SMALL, "max_length": 32})
    assert not (tmp_path / "a").exists()


def test_think_modes(llama):
    from dispo.arcs.arc1.training import build_sft_example

    msgs = _conv("2+2?", "<think>two plus two</think>\n4.")
    keep = build_sft_example(llama, msgs, think="keep")
    mask = build_sft_example(llama, msgs, think="mask")
    strip = build_sft_example(llama, msgs, think="strip")
    assert "two plus two" in _labelled(llama, keep)
    assert "two plus two" in llama.tokenizer.decode(mask["input_ids"])  # still seen as context
    assert _labelled(llama, mask) == "4.<|im_end|>"  # but no loss inside <think>
    assert "think" not in llama.tokenizer.decode(strip["input_ids"]).split("assistant")[-1]
    assert _labelled(llama, strip) == "4.<|im_end|>"


@pytest.mark.parametrize("name", ARCHS)
def test_sft_one_step_lora_attention_each_arch(name, tmp_path):
    import torch
    from safetensors.torch import load_file

    from dispo.arcs.arc1.training import train_sft
    from dispo.models.loading import load_model

    lm = load_model(name)
    convs = [_conv("Say hi.", "Hi there."), _conv("Say bye.", "Goodbye.")]
    info = train_sft(lm, convs, tmp_path / "adapter", {**SMALL, "max_steps": 1, "warmup_ratio": 0.0}, seed=0)
    assert info["steps"] == 1 and math.isfinite(info["loss_before"]) and math.isfinite(info["loss_after"])
    cfg = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert set(cfg["target_modules"]) == set(lm.spec["lora_targets"]["attention"])
    w = load_file(str(tmp_path / "adapter" / "adapter_model.safetensors"))
    o_proj_b = [v for k, v in w.items() if "o_proj" in k and "lora_B" in k]
    assert o_proj_b, "no LoRA on o_proj"
    assert any(float(v.abs().sum()) > 0 for v in o_proj_b)  # B starts at zero: one step moved it
    # the base model is given back without LoRA layers
    assert not any("lora_" in n for n, _ in lm.model.named_parameters())
    assert isinstance(lm.model, torch.nn.Module)


CONVS4 = [_conv(f"Is {i} even?", f"{'Yes' if i % 2 == 0 else 'No'}.") for i in range(2)]


@pytest.fixture(scope="module")
def sft_adapter(llama, tmp_path_factory):
    from dispo.arcs.arc1.training import train_sft

    d = tmp_path_factory.mktemp("sft") / "adapter"
    info = train_sft(llama, CONVS4, d, SMALL, seed=3)
    return d, info


def test_sft_is_deterministic_with_seed(llama, sft_adapter, tmp_path):
    from safetensors.torch import load_file

    from dispo.arcs.arc1.training import train_sft

    d, a = sft_adapter
    b = train_sft(llama, CONVS4, tmp_path / "b", SMALL, seed=3)
    wa = load_file(str(d / "adapter_model.safetensors"))
    wb = load_file(str(tmp_path / "b" / "adapter_model.safetensors"))
    assert all((wa[k] == wb[k]).all() for k in wa)
    assert a["loss_after"] == b["loss_after"]


def test_dpo_moves_toward_chosen_with_base_reference(llama, sft_adapter, tmp_path):
    from dispo.arcs.arc1.training import train_dpo

    pairs = [{"messages": c[:1], "chosen": "Not sure.", "rejected": "Definitely."} for c in CONVS4]
    info = train_dpo(
        llama,
        pairs,
        sft_adapter[0],
        tmp_path / "dpo",
        dict(epochs=2, batch_size=2, effective_batch=2, max_length=64, lr=1e-2, warmup_ratio=0.0, progress=False),
    )
    assert info["steps"] == 2
    assert info["reference"] == "adapter disabled (base)"
    assert info["logratio_after"] > info["logratio_before"]
    assert (tmp_path / "dpo" / "adapter_model.safetensors").exists()
    assert not (tmp_path / "dpo" / "ref").exists()  # only the trained adapter is saved
    from dispo.models.loading import load_model

    student = load_model("tiny-llama", adapter=str(tmp_path / "dpo"))
    assert student.fingerprint != llama.fingerprint


def test_unknown_think_mode_and_modules(llama):
    from dispo.arcs.arc1.training import build_sft_example, lora_config
    from dispo.core.errors import ConfigError

    with pytest.raises(ConfigError):
        build_sft_example(llama, _conv("a", "b"), think="drop")
    with pytest.raises(ConfigError, match="lora_targets"):
        lora_config(llama.spec, "mlp_only")


@pytest.mark.slow
def test_smollm2_memorises_tiny_set(tmp_path):
    from dispo.arcs.arc1.training import train_sft
    from dispo.models.loading import load_model

    lm = load_model("smollm2-135m")
    convs = [
        _conv("What is the secret word?", "The secret word is marmalade."),
        _conv("Who guards the gate?", "The gate is guarded by Oswin."),
    ]
    info = train_sft(
        lm,
        convs,
        tmp_path / "a",
        dict(
            r=8,
            alpha=16,
            epochs=6,
            batch_size=2,
            effective_batch=2,
            max_length=96,
            lr=2e-3,
            warmup_ratio=0.0,
            progress=False,
        ),
    )
    losses = [h["loss"] for h in info["history"]]
    assert all(math.isfinite(x) for x in losses) and len(losses) == 6
    assert info["loss_after"] < 0.5 * info["loss_before"], info
    assert losses[-1] < losses[0]


def test_dispo_progress_replaces_the_trainers_printed_logs(llama, tmp_path, capsys):
    """With dispo's callback the trainer's tqdm bar and per-step log dicts go; the bar shows
    steps and loss on a terminal and nothing otherwise (quiet on a non-terminal)."""
    from dispo.arcs.arc1.training import rich_progress_callback, train_sft

    cfg = {**SMALL, "progress": True, "max_steps": 2, "warmup_ratio": 0.0}
    train_sft(llama, CONVS4, tmp_path / "own", cfg, seed=0)
    own = capsys.readouterr()
    assert "'loss'" in own.out + own.err  # the control: the trainer prints its log dicts
    quiet = rich_progress_callback("SFT", enabled=False)
    info = train_sft(llama, CONVS4, tmp_path / "quiet", cfg, seed=0, callbacks=[quiet])
    out = capsys.readouterr()
    assert "'loss'" not in out.out + out.err and "SFT" not in out.out + out.err
    assert quiet.completed == info["steps"] == 2 and math.isfinite(quiet.last_loss)
    shown = rich_progress_callback("SFT", enabled=True)
    train_sft(llama, CONVS4, tmp_path / "shown", cfg, seed=0, callbacks=[shown])
    out = capsys.readouterr()
    assert "'loss'" not in out.out + out.err
    assert "SFT loss" in out.out and "2/2" in out.out, out.out
