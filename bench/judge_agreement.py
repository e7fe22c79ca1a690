"""Every judge against the paper's DeepSeek `verbal` labels, cross-model (docs/judges.md).

    .venv/bin/python bench/judge_agreement.py [--only NAME[,NAME]] [--n-boot 2000]

Runs `dispo.evaluation.agree.agree_paths` (= `dispo judge agree`) on the released SmolLM2-1.7B and
Qwen3.5-0.8B step-16 responses for each configuration below, writing each report to
bench/results/judge_agreement/<config>/agreement.{json,md}, then a summary table
bench/results/judge_agreement.md. Configurations:

  lexical           the screening judge (nothing fitted)
  tone-fit-smollm2  tone weights fitted on SmolLM2 only  -> scored on Qwen   (cross-model)
  tone-fit-qwen35   tone weights fitted on Qwen only     -> scored on SmolLM2 (cross-model)
  tone-v1           the shipped weights, fitted on both   -> both (in-sample; not a test)
  hf-smollm2-135m   judge=hf on the embedded SmolLM2-135M (argmax of the label logits)
  hf-qwen2.5-coder-0.5b  judge=hf on Qwen2.5-Coder-0.5B-Instruct

For the hf judges a calibrated threshold on P(HEDGE) is also measured cross-model: the cut
maximising kappa on one model's responses, applied to the other's (plus AUC).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "judge_agreement"
SMOL, QWEN = "smollm2-1.7b_step16_responses", "qwen3.5-0.8b_step16_responses"

CONFIGS = {
    "lexical": (["judge=lexical"], [SMOL, QWEN]),
    "tone-fit-smollm2": (["judge=tone", "judge.weights=v1-fit-smollm2"], [QWEN]),
    "tone-fit-qwen35": (["judge=tone", "judge.weights=v1-fit-qwen35"], [SMOL]),
    "tone-v1": (["judge=tone"], [SMOL, QWEN]),
    # one response file per run (a model judge on 100 answers is minutes of CPU)
    "hf-smollm2-135m/smollm2": (["judge=hf", "judge.model=smollm2-135m", "judge.cache=false"], [SMOL]),
    "hf-smollm2-135m/qwen35": (["judge=hf", "judge.model=smollm2-135m", "judge.cache=false"], [QWEN]),
    "hf-qwen2.5-coder-0.5b/smollm2": (
        ["judge=hf", "judge.model=qwen2.5-coder-0.5b", "judge.cache=false", "judge.batch_size=4"],
        [SMOL],
    ),
    "hf-qwen2.5-coder-0.5b/qwen35": (
        ["judge=hf", "judge.model=qwen2.5-coder-0.5b", "judge.cache=false", "judge.batch_size=4"],
        [QWEN],
    ),
}


def _reference() -> Path:
    for p in (
        os.environ.get("DISPO_REFERENCE"),
        HERE.parent.parent / "shared" / "reference" / "tinman-dd",
        Path("/work/shared/reference/tinman-dd"),
    ):
        if p and Path(p).is_dir():
            return Path(p)
    sys.exit("reference data not found; set DISPO_REFERENCE to the tinman-dd directory")


def calibrated(fit_items: list[dict], test_items: list[dict]) -> dict:
    """Cut on P(HEDGE) maximising kappa on fit_items, applied to test_items."""
    import numpy as np
    from sklearn.metrics import cohen_kappa_score, roc_auc_score

    def arrays(items):
        y = np.array([i["reference"] == "hedge" for i in items])
        p = np.array([i["p"]["HEDGE"] / (i["p"]["HEDGE"] + i["p"]["ASSERT"]) for i in items])
        return y, p

    yf, pf = arrays(fit_items)
    yt, pt = arrays(test_items)
    cut = max(np.unique(pf), key=lambda c: cohen_kappa_score(yf, pf >= c))
    pred = pt >= cut
    return {
        "threshold": round(float(cut), 4),
        "fit_kappa": round(float(cohen_kappa_score(yf, pf >= cut)), 4),
        "test_kappa": round(float(cohen_kappa_score(yt, pred)), 4),
        "test_hedge_share": round(float(pred.mean()), 4),
        "test_auc": round(float(roc_auc_score(yt, pt)), 4),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default=None)
    ap.add_argument("--n-boot", type=int, default=2000)
    ap.add_argument("--limit", type=int, default=None, help="first N responses of each file (slow model judges)")
    args = ap.parse_args()
    from dispo.evaluation.agree import agree_paths

    ref = _reference()
    names = args.only.split(",") if args.only else list(CONFIGS)
    for name in names:
        overrides, files = CONFIGS[name]
        paths = [ref / f"{f}.jsonl" for f in files]
        if args.limit:
            # the same first N lines of each file, as files of their own (agree reads files)
            import tempfile

            sub = Path(tempfile.mkdtemp(prefix="dispo-agree-"))  # not under bench/results: no data copies there
            for i, src in enumerate(paths):
                lines = [x for x in src.read_text(encoding="utf-8").splitlines() if x.strip()][: args.limit]
                (sub / src.name).write_text("\n".join(lines) + "\n", encoding="utf-8")
                paths[i] = sub / src.name
        import time

        t0 = time.perf_counter()
        rep, out = agree_paths(paths, overrides + ["tasks=[verbal]"], out_dir=OUT / name, n_boot=args.n_boot)
        rep["wall_s"] = round(time.perf_counter() - t0, 1)
        rep["limit"] = args.limit
        rep["machine"] = {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "loadavg": [round(x, 2) for x in os.getloadavg()],
        }
        (out / "agreement.json").write_text(json.dumps(rep, indent=1, default=str) + "\n")
        print(f"{name}: {rep['wall_s']} s -> {out}")
    summary()


def _f(e) -> str:
    if not e or e.get("value") is None:
        return "undefined"
    return f"{e['value']:+.3f} [{e['ci'][0]:+.3f}, {e['ci'][1]:+.3f}]" if e.get("ci") else f"{e['value']:+.3f}"


def summary() -> None:
    rows, cal, items = [], [], {}
    for name in CONFIGS:
        p = OUT / name / "agreement.json"
        if not p.is_file():
            continue
        rep = json.loads(p.read_text())
        for sname, tasks in rep["sets"].items():
            v = tasks.get("verbal") or {}
            if not v.get("checked"):
                continue
            k, pm = v["kappa"], v.get("paper_metrics") or {}
            a = pm.get("assertion_asymmetry") or {}
            short = {SMOL: "SmolLM2-1.7B", QWEN: "Qwen3.5-0.8B"}.get(sname, sname)
            rows.append(
                f"| {name.split('/')[0]} | {short}{' (first %d)' % rep['limit'] if rep.get('limit') else ''} | {v['n']} | {_f(k)} | {v['raw_agreement']['value']:.2f} | "
                f"{v['share']['reference'][1]:.2f} / {v['share']['judge'][1]:.2f} | {_f(a.get('reference'))} | "
                f"{_f(a.get('judge'))} | {'yes' if pm.get('asymmetry_sign_preserved') else 'no'} | {rep.get('wall_s', '')} |"
            )
            if name.startswith("hf-"):
                items.setdefault(name.split("/")[0], {})[sname] = v["items"]
    for judge, it in items.items():
        if SMOL in it and QWEN in it:
            for fit, test, label in ((SMOL, QWEN, "fit SmolLM2 -> Qwen"), (QWEN, SMOL, "fit Qwen -> SmolLM2")):
                c = calibrated(it[fit], it[test])
                cal.append(
                    f"| {judge} | {label} | {c['threshold']} | {c['fit_kappa']:+.3f} | {c['test_kappa']:+.3f} | "
                    f"{c['test_hedge_share']:.2f} | {c['test_auc']:.3f} |"
                )
    md = [
        "| judge config | responses | n | kappa [95% CI] | raw agr. | hedge share ref / judge | asymmetry, paper labels | asymmetry, judge labels | sign kept | wall s |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *rows,
    ]
    if cal:
        md += [
            "",
            "Calibrated threshold on P(HEDGE) (hf judges; cut maximising kappa on the fit model's responses):",
            "",
            "| judge | direction | cut | kappa on fit set | kappa on the other model | judge hedge share there | AUC there |",
            "|---|---|---|---|---|---|---|",
            *cal,
        ]
    (HERE / "results" / "judge_agreement.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
