"""Part of scripts/gpu_check.sh: `dispo eval` of each cached embedded model on CPU (fp32) and on
CUDA (fp32, bf16), same items and greedy decoding, each with its own fresh response cache, then
the outputs compared item by item. Last line printed: the one-line result; exit 0 if every
criterion holds, 1 otherwise.

Criteria (docs/gpu.md): fp32 on CUDA gives the CPU's exact text for >= 90% of items (a greedy
tie broken differently by GPU rounding changes the rest of that answer); bf16 agrees with the CPU
on the first 5 words for >= 75% of items (bf16 rounds far more; it must still be the same model).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

LIMIT, MAX_NEW = 16, 64
MODELS = ["smollm2-135m", "qwen2.5-coder-0.5b", "gemma3-270m-base"]
VARIANTS = [("cpu", "float32"), ("cuda", "float32"), ("cuda", "bfloat16")]


def _eval(model: str, device: str, dtype: str, out: Path) -> dict[str, str] | str:
    tag = f"{model}_{device}_{dtype}"
    user_models = Path(os.environ.get("DISPO_CACHE") or Path.home() / ".cache" / "dispo") / "models"
    cache = out / f"cache_{tag}"
    cache.mkdir(parents=True, exist_ok=True)
    if not (cache / "models").exists():
        (cache / "models").symlink_to(user_models.resolve(), target_is_directory=True)
    env = {**os.environ, "DISPO_CACHE": str(cache)}
    runs = out / f"runs_{tag}"
    cmd = [
        sys.executable,
        "-m",
        "dispo.cli",
        "eval",
        f"model={model}",
        f"device={device}",
        f"model.dtype={dtype}",
        "domain=code",
        f"limit={LIMIT}",
        f"decoding.max_new_tokens={MAX_NEW}",
        "decoding.batch_size=8",
        "tasks=[svr]",
        f"output_dir={runs}",
        "-q",
    ]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    (out / f"eval_{tag}.log").write_text(p.stdout + p.stderr)
    if p.returncode != 0:
        return f"eval {tag} failed (rc {p.returncode}): {(p.stderr.strip().splitlines() or ['?'])[-1][:160]}"
    (run,) = [d for d in runs.iterdir() if d.is_dir()]
    rows = [json.loads(x) for x in (run / "samples" / "base.jsonl").read_text().splitlines() if x.strip()]
    return {r["id"]: r["output"] for r in rows}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    from dispo.models import embedded

    parts, ok, report = [], True, {}
    for model in MODELS:
        if not (embedded.model_dir(model) / "config.json").exists():
            parts.append(f"{model} not cached (not checked)")
            report[model] = "not cached"
            continue
        outs = {f"{d}/{t}": _eval(model, d, t, args.out) for d, t in VARIANTS}
        bad = [v for v in outs.values() if isinstance(v, str)]
        if bad:
            ok = False
            parts.append(f"{model}: {bad[0]}")
            report[model] = bad
            continue
        cpu = outs["cpu/float32"]
        exact = sum(outs["cuda/float32"][i] == cpu[i] for i in cpu)
        first5 = sum(outs["cuda/bfloat16"][i].split()[:5] == cpu[i].split()[:5] for i in cpu)
        n = len(cpu)
        m_ok = exact >= 0.9 * n and first5 >= 0.75 * n and outs["cuda/float32"].keys() == cpu.keys()
        ok &= m_ok
        report[model] = {"n": n, "fp32_exact": exact, "bf16_first5": first5, "ok": m_ok}
        parts.append(
            f"{model} eval: fp32 {exact}/{n} identical to CPU, bf16 {first5}/{n} same first 5 words"
            + ("" if m_ok else " (below the 90%/75% bar)")
        )
    (args.out / "compare.json").write_text(json.dumps(report, indent=2))
    print("; ".join(parts))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
