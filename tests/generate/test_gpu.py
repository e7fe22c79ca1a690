"""On a CUDA device: the transformers engine's greedy output equals the CPU engine's, and the
o_proj tempering hook scales exactly the chosen head's slice (and nothing else) on the GPU.

Marker `gpu`: skipped where torch sees no CUDA device. scripts/gpu_check.sh runs these.
"""

from __future__ import annotations

import pytest

from dispo.generate.engine import generate

pytestmark = [pytest.mark.gpu, pytest.mark.slow]

QUESTIONS = [
    "What is 2+2?",
    "Name one French mother sauce.",
    "Write a haiku about rain.",
    "Give me a Python one-liner that reverses a string.",
    "Why is the sky blue?",
    "What does a roux thicken?",
    "Is 91 a prime number?",
    "Explain recursion in one sentence.",
]
REQUESTS = [(f"q{i}", [{"role": "user", "content": q}]) for i, q in enumerate(QUESTIONS)]


@pytest.fixture(scope="module")
def cuda():
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device visible to torch")
    # fp32 matmuls in full fp32 on the GPU too (TF32 would round differently from the CPU)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return "cuda"


@pytest.fixture(scope="module")
def models(cuda):
    from dispo.models.loading import load_model

    return load_model("smollm2-135m"), load_model("smollm2-135m", device=cuda)


def test_engine_greedy_on_cuda_equals_cpu(models):
    cpu, gpu = models
    assert gpu.device.type == "cuda" and cpu.device.type == "cpu"
    dec = {"max_new_tokens": 48, "batch_size": 8}
    a = generate(cpu, REQUESTS, dec, cache=False, progress=False)
    b = generate(gpu, REQUESTS, dec, cache=False, progress=False)
    same = [x.output == y.output for x, y in zip(a, b)]
    # fp32 on both: identical except where two tokens tie to within GPU/CPU rounding
    assert sum(same) >= len(REQUESTS) - 1, [
        (x.id, x.output[:60], y.output[:60]) for x, y in zip(a, b) if x.output != y.output
    ]
    assert len({x.output for x in b}) == len(REQUESTS)  # real, prompt-dependent answers
    assert gpu.fingerprint != cpu.fingerprint  # a GPU run never reuses CPU-cached responses


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_tempering_hook_on_cuda_scales_only_the_chosen_head(cuda, dtype):
    import torch

    from dispo.interventions.tempering import temper
    from dispo.models.heads import layer_map
    from dispo.models.loading import load_model
    from dispo.models.registry import get_spec

    lm = load_model({**get_spec("smollm2-135m"), "dtype": dtype}, device=cuda)
    assert next(lm.model.parameters()).dtype == getattr(torch, dtype)
    layer, head, lam = 5, 2, 0.5
    hl = layer_map(lm.model)[layer]
    seen = {}

    def capture(name):
        def hook(module, args, kwargs):
            seen[name] = (args[0] if args else next(iter(kwargs.values()))).detach().float().cpu()

        return hook

    ids = lm.tokenizer(lm.render(REQUESTS[1][1]), return_tensors="pt").input_ids.to(cuda)
    with torch.no_grad():
        h = hl.o_proj.register_forward_pre_hook(capture("plain"), with_kwargs=True)
        plain = lm.model(ids).logits.float()
        h.remove()
        with temper(lm.model, [(layer, head)], lam) as handles:
            assert len(handles) == 1
            # registered after the tempering hook, so it sees the tempered input
            h = hl.o_proj.register_forward_pre_hook(capture("tempered"), with_kwargs=True)
            tempered = lm.model(ids).logits.float()
            h.remove()
        again = lm.model(ids).logits.float()
    x, y = seen["plain"], seen["tempered"]
    sl = hl.head_slice(head)
    mask = torch.zeros(x.shape[-1], dtype=torch.bool)
    mask[sl] = True
    # same forward twice upstream of the hook: equal up to kernel nondeterminism (none expected)
    tol = 1e-6 if dtype == "float32" else 1e-2
    assert torch.allclose(y[..., ~mask], x[..., ~mask], rtol=tol, atol=tol), "columns of other heads changed"
    assert torch.allclose(y[..., mask], lam * x[..., mask], rtol=tol, atol=tol), "head slice not scaled by lambda"
    assert (tempered - plain).abs().max() > 1e-3, "tempering did not change the logits"
    assert torch.allclose(again, plain, rtol=tol, atol=tol), "the hook was not removed"
