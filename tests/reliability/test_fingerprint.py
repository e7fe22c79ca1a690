"""Model identity by content: two checkpoints that differ only in a late layer's weights must
get different fingerprints, so one is never served the other's cached responses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.relhelp import cli

pytestmark = pytest.mark.slow


@pytest.fixture
def two_checkpoints(tmp_path, dispo_cache):
    """A: the random-init tiny llama; B: the same with only the LAST layer's down_proj changed.
    Same file names and sizes; the weight files' first MiB (all the old fingerprint read) equal."""
    import torch
    from transformers import AutoTokenizer

    from dispo.models import embedded
    from dispo.models.tiny import build_tiny

    tok = AutoTokenizer.from_pretrained(str(embedded.ensure("smollm2-135m")))
    model = build_tiny(
        "llama",
        vocab_size=len(tok),
        seed=0,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=tok.bos_token_id,
    )
    a, b = tmp_path / "ckpt_a", tmp_path / "ckpt_b"
    for d in (a, b):
        if d is b:
            with torch.no_grad():
                model.model.layers[-1].mlp.down_proj.weight.mul_(-3.0)
        model.save_pretrained(str(d))
        tok.save_pretrained(str(d))
    return a, b


def _weights(d: Path) -> Path:
    (w,) = d.glob("*.safetensors")
    return w


def test_checkpoints_differing_in_a_late_layer_get_different_fingerprints(two_checkpoints, dispo_cache, monkeypatch):
    """Protects: full-content fingerprints (dispo.models.fingerprint). The old prefix+size
    hash gave A and B the same fingerprint. Also: the digest is memoised (no re-hash of an
    unchanged file) and a rewritten file is re-hashed."""
    from dispo.models import fingerprint as fpmod
    from dispo.models.loading import _dir_fingerprint

    a, b = two_checkpoints
    wa, wb = _weights(a), _weights(b)
    # the premise: same size, same first MiB, different bytes later
    assert wa.stat().st_size == wb.stat().st_size
    assert wa.read_bytes()[: 1 << 20] == wb.read_bytes()[: 1 << 20]
    assert wa.read_bytes() != wb.read_bytes()

    fa, fb = _dir_fingerprint(a), _dir_fingerprint(b)
    assert fa != fb
    index = dispo_cache / fpmod.INDEX_NAME
    files = json.loads(index.read_text())["files"]
    assert str(wa.resolve()) in files and str(wb.resolve()) in files

    calls = []
    real = fpmod._sha256_file
    monkeypatch.setattr(fpmod, "_sha256_file", lambda p: calls.append(p) or real(p))
    assert _dir_fingerprint(a) == fa and calls == [], "an unchanged checkpoint was re-hashed"
    # a copy of B's weights over A's (same size): A's fingerprint must follow the content
    wa.write_bytes(wb.read_bytes())
    assert _dir_fingerprint(a) == fb
    assert wa.resolve() in calls


def test_eval_of_checkpoint_b_after_a_is_not_served_a_s_cached_responses(two_checkpoints, dispo_cache, tmp_path):
    """Protects: the response cache key includes the full-content fingerprint. `dispo eval
    model.path=B` after `model.path=A` (same config otherwise) generates every response
    itself: nothing comes from A's cache entries."""
    a, b = two_checkpoints
    runs = tmp_path / "runs"
    stages = {}
    for name, d in (("a", a), ("b", b)):
        code, out, err = cli(
            "eval",
            "model=tiny-llama",
            f"model.path={d}",
            "domain=code",
            "limit=3",
            "decoding.max_new_tokens=6",
            "decoding.batch_size=1",
            "tasks=[svr]",
            f"output_dir={runs / name}",
            "-q",
        )
        assert code == 0, err
        (run,) = [p for p in (runs / name).iterdir() if p.is_dir()]
        stages[name] = json.loads((run / "manifest.json").read_text())["stages"]["arm:base"]
    assert stages["a"]["model"]["fingerprint"] != stages["b"]["model"]["fingerprint"]
    assert stages["a"]["generated"] == 3
    assert stages["b"]["cached"] == 0 and stages["b"]["generated"] == 3, stages["b"]


def test_dtype_and_device_are_part_of_the_model_identity():
    """Protects: a bf16 or GPU run is not served responses cached by an fp32 CPU run of the
    same weights (they differ numerically), while fp32 on CPU keeps the plain weight fingerprint."""
    from dispo.models.loading import _numeric_variant, model_fingerprint_extra

    fp = "0123456789abcdef"
    assert _numeric_variant(fp, None, None) == fp == _numeric_variant(fp, "float32", "cpu")
    variants = {
        _numeric_variant(fp, d, dev) for d in ("float32", "bfloat16", "float16") for dev in ("cpu", "cuda", "cuda:1")
    }
    assert len(variants) == 6  # cuda and cuda:1 are the same kind of device
    assert _numeric_variant(fp, "bfloat16", "cpu") == model_fingerprint_extra(fp, {"dtype": "bfloat16"})
