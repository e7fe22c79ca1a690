"""Run every bench/bench_*.py, then summarise bench/results/*.json into bench/results.md.

Convention for a bench script: run with no arguments it does its small default, and writes
`$DISPO_BENCH_RESULTS/<name>.json` (default bench/results/), a JSON object with optional
"title", "machine", "settings", "rows" (list of flat dicts -> a table) and "notes". Anything
else in the JSON is listed as flattened numbers.

    .venv/bin/python bench/run_all.py                 # run all, then summarise
    .venv/bin/python bench/run_all.py --only sft_vs_trl vs_lm_eval
    .venv/bin/python bench/run_all.py --summarise     # only rebuild results.md
    .venv/bin/python bench/run_all.py --full          # pass --full to the benches that take it

vLLM: recorded as "skipped: no CUDA device" where torch sees no GPU (vLLM needs one).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


# benches not named bench_*.py, run by run_all all the same
EXTRA_SCRIPTS = ("cached_rerun.py",)


def bench_scripts() -> list[Path]:
    return sorted([*HERE.glob("bench_*.py"), *(HERE / s for s in EXTRA_SCRIPTS)], key=bench_name)


def bench_name(script: Path) -> str:
    return script.stem[len("bench_") :] if script.stem.startswith("bench_") else script.stem


def run_one(script: Path, results: Path, timeout: int, full: bool) -> dict:
    env = dict(os.environ, DISPO_BENCH_RESULTS=str(results), TOKENIZERS_PARALLELISM="false")
    cmd = [sys.executable, str(script)]
    if full and "--full" in script.read_text(encoding="utf-8", errors="replace"):
        cmd.append("--full")
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=HERE.parent, env=env, capture_output=True, text=True, timeout=timeout)
        text = (p.stdout if p.returncode == 0 else p.stderr) or p.stdout or p.stderr or ""
        rc, tail = p.returncode, text.strip().splitlines()[-1:]
    except subprocess.TimeoutExpired:
        rc, tail = 124, [f"timed out after {timeout} s"]
    return {
        "script": script.name,
        "rc": rc,
        "seconds": round(time.perf_counter() - t0, 1),
        "last_line": tail[0][:300] if tail else "",
    }


def vllm_status() -> dict:
    try:
        import torch

        cuda = torch.cuda.is_available()
    except ImportError:
        cuda = False
    if not cuda:
        return {"name": "vllm", "title": "vLLM engine", "skipped": "skipped: no CUDA device"}
    try:
        import vllm  # noqa: F401
    except ImportError:
        return {
            "name": "vllm",
            "title": "vLLM engine",
            "skipped": "skipped: vllm not installed (pip install 'dispo[vllm]')",
        }
    return {"name": "vllm", "title": "vLLM engine", "skipped": "not benchmarked by run_all (no vLLM bench script)"}


def machine() -> dict:
    import platform

    info = {"platform": platform.platform(), "python": sys.version.split()[0], "cores": os.cpu_count()}
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                info["cpu"] = ln.split(":", 1)[1].strip()
                break
        for ln in Path("/proc/meminfo").read_text().splitlines():
            if ln.startswith("MemTotal"):
                info["memory_gib"] = round(int(ln.split()[1]) / 2**20, 1)
    except OSError:
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    except ImportError:
        pass
    return info


def _flat(d, prefix=""):
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            yield from _flat(v, key + ".")
        elif isinstance(v, (int, float, str, bool)) or v is None:
            yield key, v


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v).replace("|", "\\|").replace("\n", " ")


def table(rows: list[dict]) -> list[str]:
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r if c not in cols]
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    out += ["| " + " | ".join(_cell(r.get(c)) for c in cols) + " |" for r in rows]
    return out


def _load(results: Path, name: str) -> dict:
    try:
        r = json.loads((results / f"{name}.json").read_text())
        return r if isinstance(r, dict) else {}
    except (OSError, json.JSONDecodeError):
        return {}


def _sft_profile(prof: dict) -> str:
    """'; profiled: <side> <s> in steps + <s> between, top ops ...' for each profiled side."""
    parts = []
    for side in ("dispo", "trl"):
        p = prof.get(side) or {}
        if p.get("step_seconds_total") is None:
            continue
        top = ", ".join(f"{k} {v:.0%}" for k, v in list((p.get("top_ops_self_cpu_share") or {}).items())[:4])
        parts.append(
            f"{side} {p['step_seconds_total']} s in optimizer steps + {p.get('between_steps_seconds')} s between"
            + (f" (top ops by self CPU: {top})" if top else "")
        )
    return ("; profiled: " + "; ".join(parts)) if parts else ""


def headline(results: Path) -> list[dict]:
    """The ratios the targets are stated in, computed from the result files (missing -> absent)."""
    rows = []
    for name in ("vs_lm_eval", "vs_lm_eval_refill"):
        lm = _load(results, name)
        if lm.get("speedup_dispo_over_lm_eval") is None:
            continue
        ag, st = lm.get("agreement") or {}, lm.get("settings") or {}
        ratio = lm["speedup_dispo_over_lm_eval"]
        rows.append(
            {
                "measure": f"HumanEval generation tokens/s, dispo / lm-eval HFLM (same prompts, greedy; "
                f"{st.get('prompts')} prompts x {st.get('max_new_tokens')} tokens, batch {st.get('batch_size')})",
                "target": ">= 1.5" + (" (not met)" if ratio < 1.5 else ""),
                "measured": ratio,
                "detail": f"{(lm.get('dispo') or {}).get('tokens_per_s')} vs {(lm.get('lm_eval') or {}).get('tokens_per_s')} tok/s; "
                f"outputs identical {ag.get('exact')}/{ag.get('n')}",
            }
        )
    sft = _load(results, "sft_vs_trl")
    if sft.get("ratio_dispo_over_trl") is not None:
        rows.append(
            {
                "measure": "LoRA SFT tokens/s, dispo / plain TRL SFTTrainer",
                "target": ">= 1.0" + (" (not met)" if sft["ratio_dispo_over_trl"] < 1.0 else ""),
                "measured": sft["ratio_dispo_over_trl"],
                "detail": f"{(sft.get('dispo') or {}).get('tokens_per_s')} vs {(sft.get('trl') or {}).get('tokens_per_s')} tok/s"
                + _sft_profile(sft.get("profile") or {}),
            }
        )
    gen = _load(results, "generation")
    by = {r.get("name"): r for r in gen.get("runs") or [] if isinstance(r, dict)}
    best = max(
        (r for r in by.values() if str(r.get("name", "")).startswith("dispo continuous")),
        key=lambda r: r.get("tok_per_s") or 0,
        default=None,
    )
    if best:
        rows.append(
            {
                "measure": f"generation tokens/s, {best['name']} / naive model.generate batch 1"
                f" ({(gen.get('settings') or {}).get('n_prompts')} prompts x "
                f"{(gen.get('settings') or {}).get('max_new_tokens')} max new tokens)",
                "target": ">= 8 (not met)" if (best.get("speedup_vs_naive") or 0) < 8 else ">= 8",
                "measured": best.get("speedup_vs_naive"),
                "detail": f"{best.get('tok_per_s')} tok/s; {best.get('match_naive')} outputs equal naive's",
            }
        )
        rows.append(
            {
                "measure": "share of measured fp32 matmul peak reached by generation",
                "target": "-",
                "measured": best.get("matmul_share"),
                "detail": f"peak {(gen.get('machine') or {}).get('matmul_fp32_gflops')} GFLOP/s; 2 x params x tok/s",
            }
        )
    att = _load(results, "attribution")
    if att.get("ratio_attribution_vs_plain_last") is not None:
        rows.append(
            {
                "measure": "head attribution time / one forward pass (logits_to_keep=1), 100 chef items",
                "target": "~1 (not one pass per head)",
                "measured": att["ratio_attribution_vs_plain_last"],
                "detail": f"{att.get('n_heads')} heads; one pass per head would take ~{att.get('one_pass_per_head_estimate_seconds', 0):.0f} s",
            }
        )
    feat = _load(results, "features").get("results") or {}
    if feat:
        b, r = max(
            ((k, v) for k, v in feat.items() if isinstance(v, dict)), key=lambda kv: kv[1].get("items_per_s") or 0
        )
        rows.append(
            {
                "measure": f"feature extraction items/s, batch {b} / batch 1",
                "target": "-",
                "measured": r.get("speedup_vs_bs1"),
                "detail": f"{r.get('items_per_s')} items/s; max |diff| vs batch 1 {r.get('max_abs_diff_vs_bs1')}",
            }
        )
    cr = _load(results, "cached_rerun")
    if cr.get("ratio_first_over_cached") is not None:
        loaded = next(
            (r.get("model_loaded") for r in cr.get("rows") or [] if "all cached (median)" in str(r.get("run"))), None
        )
        rows.append(
            {
                "measure": f"{(cr.get('settings') or {}).get('command')}: first run / fully cached re-run, wall time",
                "target": ">= 5, no weights loaded",
                "measured": cr["ratio_first_over_cached"],
                "detail": f"{cr.get('first_seconds')} s vs {cr.get('cached_seconds_median')} s; "
                f"re-run model_loaded={loaded}; samples identical: {cr.get('samples_identical')}",
            }
        )
    dp = _load(results, "decode_profile")
    if dp.get("growing_over_dynamic_step") is not None:
        st = dp.get("settings") or {}
        parts = {r.get("part", ""): r for r in dp.get("rows") or [] if isinstance(r, dict)}
        shares = ", ".join(
            f"{k.split(' (')[0].split(':')[0]} {r['share']:.0%}"
            for k, r in parts.items()
            if r.get("share") is not None and r.get("share") < 1
        )
        rows.append(
            {
                "measure": f"one decode step (batch {st.get('batch')}, {st.get('cached_tokens')} cached tokens), "
                "DynamicLayer cache / dispo's growing cache",
                "target": "- (profile)",
                "measured": dp["growing_over_dynamic_step"],
                "detail": f"share of the step: {shares}; bf16 linears {dp.get('linear_bf16_speedup')}x fp32",
            }
        )
    vl = _load(results, "vllm")
    if vl.get("skipped"):
        rows.append({"measure": "vLLM engine", "target": "-", "measured": "not run", "detail": vl["skipped"]})
    return rows


def summarise(results: Path, runs: list[dict] | None = None) -> Path:
    lines = [
        "# dispo benchmarks",
        "",
        f"Generated {_dt.datetime.now().astimezone().isoformat(timespec='seconds')} by `bench/run_all.py`.",
        "",
        "## Machine",
        "",
    ]
    lines += [f"- {k}: {v}" for k, v in machine().items()]
    lines.append("")
    heads = headline(results)
    if heads:
        lines += ["## Headline ratios", ""] + table(heads) + [""]
    if runs:
        lines += ["## Scripts run", ""] + table(runs) + [""]
    files = sorted(results.glob("*.json"))
    for f in files:
        try:
            r = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError) as e:
            lines += [f"## {f.stem}", "", f"_unreadable: {type(e).__name__}_", ""]
            continue
        if not isinstance(r, dict):
            continue
        lines += [
            f"## {r.get('title') or f.stem}",
            "",
            f"File: `{f.relative_to(results.parent) if results.parent in f.parents else f}`",
            "",
        ]
        if r.get("skipped"):
            lines += [f"**{r['skipped']}**", ""]
        if r.get("machine"):
            lines += ["Machine: " + ", ".join(f"{k}={v}" for k, v in r["machine"].items()), ""]
        if r.get("settings"):
            lines += ["Settings: " + ", ".join(f"{k}={v}" for k, v in r["settings"].items()), ""]
        for key in ("rows", "runs", "checks"):
            if isinstance(r.get(key), list) and r[key]:
                lines += table(
                    [
                        {k: v for k, v in x.items() if not isinstance(v, (list, dict))}
                        for x in r[key]
                        if isinstance(x, dict)
                    ]
                ) + [""]
        cmp = r.get("comparison")
        if isinstance(cmp, dict) and cmp.get("rows"):
            lines += (
                [
                    f"Rerun of `{cmp.get('rerun_of')}`: {cmp.get('claims_matching')}/{cmp.get('claims')} claims match "
                    f"(same verdict, |difference| <= {cmp.get('tolerance')}); same verdict "
                    f"{cmp.get('verdicts_matching', '?')}/{cmp.get('claims')}; rerun number inside the committed 95% CI "
                    f"{cmp.get('within_ci', '?')}; health differs: {', '.join(cmp.get('health_differs') or []) or 'nowhere'}",
                    "",
                ]
                + table(cmp["rows"])
                + [""]
            )
        rest = {
            k: v
            for k, v in r.items()
            if k
            not in ("name", "title", "machine", "settings", "rows", "runs", "checks", "comparison", "notes", "skipped")
        }
        flat = list(_flat(rest))
        if flat:
            lines += (
                ["<details><summary>all numbers</summary>", ""]
                + table([{"key": k, "value": v} for k, v in flat])
                + ["", "</details>", ""]
            )
        if r.get("notes"):
            lines += [f"Notes: {r['notes']}", ""]
    out = results.parent / "results.md"
    out.write_text("\n".join(lines) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="bench names (bench_<name>.py) to run")
    ap.add_argument("--summarise", action="store_true", help="do not run; rebuild results.md")
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--timeout", type=int, default=3600, help="per-script seconds")
    ap.add_argument("--results", type=Path, default=RESULTS)
    a = ap.parse_args(argv)
    a.results.mkdir(parents=True, exist_ok=True)
    runs = []
    if not a.summarise:
        scripts = bench_scripts()
        if a.only:
            unknown = set(a.only) - {bench_name(s) for s in scripts}
            if unknown:
                print(
                    f"error: no bench named {', '.join(sorted(unknown))}; have "
                    f"{', '.join(bench_name(s) for s in scripts)}",
                    file=sys.stderr,
                )
                return 2
            scripts = [s for s in scripts if bench_name(s) in a.only]
        for s in scripts:
            print(f"running {s.name} ...", flush=True)
            r = run_one(s, a.results, a.timeout, a.full)
            print(f"  rc={r['rc']} in {r['seconds']} s: {r['last_line']}", flush=True)
            runs.append(r)
        (a.results / "vllm.json").write_text(json.dumps(vllm_status(), indent=2) + "\n")
    out = summarise(a.results, runs)
    print(f"wrote {out}")
    return 1 if any(r["rc"] != 0 for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
