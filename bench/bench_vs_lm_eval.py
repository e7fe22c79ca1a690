"""HumanEval generation: dispo's engine vs lm-evaluation-harness's HF backend, same prompts.

Both sides get the same rendered chat prompts (dispo's `lm.render` of HumanEval items), greedy,
the same max new tokens and batch size, on the same local model dir (the embedded
smollm2-135m by default). Reports wall time, generated tokens/s (tokens counted the same way
for both: the output text re-tokenised, plus the stop token when the output stopped), and how
many outputs agree exactly / on their first 64 characters.

    .venv/bin/python bench/bench_vs_lm_eval.py            # both workloads below (make bench)
    .venv/bin/python bench/bench_vs_lm_eval.py -n 16 --max-new-tokens 128 --batch-size 8
    .venv/bin/python bench/bench_vs_lm_eval.py --full     # 164 prompts, 512 new tokens

With no workload arguments it runs the two issue 18 states targets on: 16 prompts x 128 new
tokens at batch 8 (-> vs_lm_eval.json) and 64 prompts x 256 new tokens at batch 16, more
prompts than batch slots, where refilling finished rows counts (-> vs_lm_eval_refill.json).

Needs `pip install lm-eval==0.4.13` (dispo's `bench` extra); without it the lm-eval side is
recorded as skipped. Writes bench/results/vs_lm_eval.json (or $DISPO_BENCH_RESULTS/...).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def machine() -> dict:
    import torch

    cpu = platform.processor() or ""
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                cpu = ln.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
    }


def out_path(name: str) -> Path:
    d = Path(os.environ.get("DISPO_BENCH_RESULTS") or HERE / "results")
    d.mkdir(parents=True, exist_ok=True)
    return d / f"{name}.json"


def count_tokens(tok, text: str, stopped: bool) -> int:
    return len(tok(text, add_special_tokens=False)["input_ids"]) + (1 if stopped else 0)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="all 164 problems, 512 new tokens")
    ap.add_argument("-n", type=int, default=None, help="number of prompts (default 16; --full: 164)")
    ap.add_argument("--max-new-tokens", type=int, default=None, help="default 128 (--full: 512)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--model", default="smollm2-135m", help="a dispo model name with a local dir")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args(argv)
    n = a.n or (164 if a.full else 16)
    max_new = a.max_new_tokens or (512 if a.full else 128)

    import torch

    from dispo.domains import get_domain
    from dispo.generate.engine import generate
    from dispo.models.loading import load_model

    torch.manual_seed(0)
    lm = load_model(a.model)
    model_dir = _local_dir(a.model)
    items = get_domain("code").items("eval", n)
    requests = [(it.id, it.messages()) for it in items]
    prompts = [lm.render(m) for _, m in requests]
    tok = lm.tokenizer
    stop_strs = sorted({s for s in (tok.eos_token, "<|im_end|>") if s})
    decoding = {"max_new_tokens": max_new, "temperature": 0.0, "batch_size": a.batch_size}

    result: dict = {
        "name": "vs_lm_eval",
        "title": f"HumanEval generation: dispo engine vs lm-eval HFLM ({n} prompts x {max_new} tokens, batch {a.batch_size})",
        "machine": machine(),
        "settings": {
            "model": a.model,
            "model_dir": str(model_dir),
            "prompts": n,
            "max_new_tokens": max_new,
            "batch_size": a.batch_size,
            "greedy": True,
            "dtype": str(next(lm.model.parameters()).dtype),
            "stop": stop_strs,
            "prompt_tokens_mean": round(
                sum(len(tok(p, add_special_tokens=False)["input_ids"]) for p in prompts) / n, 1
            ),
        },
    }

    # warm-up (one prompt, few tokens) so neither side pays first-call costs in the timing
    generate(lm, requests[:1], {**decoding, "max_new_tokens": 4}, cache=False, progress=False)
    t0 = time.perf_counter()
    gens = generate(lm, requests, decoding, cache=False, progress=False)
    t_dispo = time.perf_counter() - t0
    d_out = [g.output for g in gens]
    d_tok = sum(count_tokens(tok, g.output, g.finish_reason == "stop") for g in gens)
    result["dispo"] = {
        "seconds": round(t_dispo, 2),
        "tokens": d_tok,
        "tokens_per_s": round(d_tok / t_dispo, 2),
        "engine_n_tokens": sum(g.n_tokens for g in gens),
        "engine": gens[0].decoding.get("engine") if gens else None,
        "truncated": sum(g.finish_reason == "length" for g in gens),
    }
    del lm
    rows = [
        {
            "side": "dispo (" + str(result["dispo"]["engine"]) + ")",
            **{k: result["dispo"][k] for k in ("seconds", "tokens", "tokens_per_s")},
        }
    ]

    try:
        from lm_eval.api.instance import Instance
        from lm_eval.models.huggingface import HFLM
    except ImportError as e:
        result["lm_eval"] = {"skipped": f"lm-eval not installed ({e.name}); pip install lm-eval==0.4.13"}
    else:
        import lm_eval

        hf = HFLM(pretrained=str(model_dir), batch_size=a.batch_size, device="cpu", dtype="float32", max_length=4096)
        gen_kwargs = {"until": stop_strs, "max_gen_toks": max_new, "do_sample": False, "temperature": 0.0}

        def reqs(ps):
            return [
                Instance(request_type="generate_until", doc={}, arguments=(p, dict(gen_kwargs)), idx=i)
                for i, p in enumerate(ps)
            ]

        hf.generate_until(reqs(prompts[:1]), disable_tqdm=True)
        t0 = time.perf_counter()
        l_out = hf.generate_until(reqs(prompts), disable_tqdm=True)
        t_lm = time.perf_counter() - t0
        # lm-eval returns text cut at the stop string; it stopped iff it is shorter than the budget
        l_tok = 0
        for o in l_out:
            k = len(tok(o, add_special_tokens=False)["input_ids"])
            l_tok += k + (1 if k < max_new else 0)
        exact = sum(x == y for x, y in zip(d_out, l_out))
        prefix = sum(x[:64] == y[:64] for x, y in zip(d_out, l_out))
        result["lm_eval"] = {
            "version": lm_eval.__version__ if hasattr(lm_eval, "__version__") else "0.4.13",
            "seconds": round(t_lm, 2),
            "tokens": l_tok,
            "tokens_per_s": round(l_tok / t_lm, 2),
        }
        result["agreement"] = {
            "exact": exact,
            "first_64_chars": prefix,
            "n": n,
            "first_difference": next(
                (
                    {"item": items[i].id, "dispo": x[:160], "lm_eval": y[:160]}
                    for i, (x, y) in enumerate(zip(d_out, l_out))
                    if x != y
                ),
                None,
            ),
        }
        result["speedup_dispo_over_lm_eval"] = round(
            result["dispo"]["tokens_per_s"] / result["lm_eval"]["tokens_per_s"], 2
        )
        rows.append(
            {"side": "lm-eval HFLM", **{k: result["lm_eval"][k] for k in ("seconds", "tokens", "tokens_per_s")}}
        )
        rows[0]["outputs identical"] = f"{exact}/{n}"
        rows[1]["outputs identical"] = f"{exact}/{n}"
    result["rows"] = rows
    p = a.out or out_path("vs_lm_eval")
    p.write_text(json.dumps(result, indent=2) + "\n")
    print(
        json.dumps(
            {k: result[k] for k in result if k in ("dispo", "lm_eval", "agreement", "speedup_dispo_over_lm_eval")},
            indent=2,
        )
    )
    print(f"wrote {p}")
    return result


def _local_dir(name: str) -> Path:
    """The model's local directory (the embedded model's safetensors cache)."""
    from dispo.models.registry import get_spec

    spec = get_spec(name)
    if spec.get("path") and Path(os.path.expanduser(str(spec["path"]))).is_dir():
        return Path(os.path.expanduser(str(spec["path"])))
    if spec.get("source") == "packaged":
        from dispo.models import embedded

        return Path(embedded.ensure(name))
    cand = Path.home() / ".cache" / "dispo" / "models" / name
    if cand.is_dir():
        return cand
    sys.exit(f"error: model {name} has no local directory; use --model smollm2-135m")


# (name, argv): the workloads run when no workload is given
WORKLOADS = (
    ("vs_lm_eval", ["-n", "16", "--max-new-tokens", "128", "--batch-size", "8"]),
    ("vs_lm_eval_refill", ["-n", "64", "--max-new-tokens", "256", "--batch-size", "16"]),
)


def main_all(argv: list[str]) -> None:
    workload = {"-n", "--full", "--max-new-tokens", "--batch-size", "--out"}
    if any(a.split("=", 1)[0] in workload for a in argv):
        main(argv)
        return
    for name, args in WORKLOADS:
        main([*args, *argv, "--out", str(out_path(name))])


if __name__ == "__main__":
    main_all(sys.argv[1:])
