"""Export a run's per-item results for the tools people already use.

csv / parquet   one row per (arm, item): arm, id, prompt, output, finish_reason,
                n_tokens, seed, decoding (JSON), and one column per score key
                ("correct:import", "verbal:lexical", ...; dict values as JSON text).
                pandas.read_csv / read_parquet give it back; parquet needs pyarrow.
lm-eval         per arm, a directory <out>/<arm>/ with samples_<task>_<date>.jsonl and
                results_<date>.json shaped like lm-eval 0.4's --log_samples output, so
                its readers (and `dispo import --format lm-eval`) load them. The per-item
                metric is the arm's correctness label (its lm-eval name when the run was
                imported from lm-eval, "pass@1" for test-executed code, else "acc").
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from pathlib import Path
from typing import Any

from dispo.core import atomic
from dispo.core.errors import ConfigError, DispoError
from dispo.core.types import ScoreKey

FORMATS = ("lm-eval", "csv", "parquet")


def rows(run, arms: list[str] | None = None) -> list[dict[str, Any]]:
    out = []
    for arm, samples in run.iter_arms():
        if arms and arm not in arms:
            continue
        for s in samples:
            row = {
                "arm": arm,
                "id": str(s["id"]),
                "prompt": s.get("prompt"),
                "output": s.get("output"),
                "finish_reason": s.get("finish_reason"),
                "n_tokens": s.get("n_tokens"),
                "seed": s.get("seed"),
                "decoding": json.dumps(s.get("decoding") or {}, sort_keys=True),
            }
            for key, sc in sorted((s.get("scores") or {}).items()):
                v = sc.get("value") if sc.get("status", "ok") == "ok" else None
                row[key] = json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v
            out.append(row)
    return out


def export_run(
    run_dir: str | Path, fmt: str, out: str | Path | None = None, arms: list[str] | None = None
) -> list[Path]:
    """Write the export; returns the files written."""
    from dispo.core.runs import Run

    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    run = Run.open(run_dir)
    if arms:
        missing = sorted(set(arms) - set(run.arms()))
        if missing:
            raise ConfigError(f"no arm {', '.join(missing)} in {run.dir}; arms: {', '.join(run.arms())}")
    if not run.arms():
        raise DispoError(f"{run.dir} has no samples to export")
    if fmt == "lm-eval":
        return _export_lmeval(run, Path(out) if out else run.dir / "export" / "lm-eval", arms)
    import pandas as pd

    df = pd.DataFrame(rows(run, arms))
    target = Path(out) if out else run.dir / "export" / f"samples.{fmt}"
    target.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        atomic.write_text(target, df.to_csv(index=False))
    else:
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise DispoError(
                "parquet export needs pyarrow: pip install 'dispo[parquet]' (or use --format csv)"
            ) from None
        import io

        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        atomic.write_bytes(target, buf.getvalue())
    return [target]


def _hash(s: str) -> str:
    return hashlib.sha256(s.encode("utf-8")).hexdigest()  # lm_eval.utils.hash_string


def _correct_key(samples: list[dict]) -> str | None:
    from dispo.stats.summary import pick_source

    src = pick_source(samples, "correct")
    return None if src is None else ScoreKey.of("correct", src)


def _metric_name(samples: list[dict], key: str) -> str:
    if key == ScoreKey.of("correct", "tests"):
        return "pass@1"
    for s in samples:
        d = ((s.get("scores") or {}).get(key) or {}).get("detail") or {}
        if d.get("format") == "lm-eval" and d.get("field"):
            return d["field"]
    return "acc"


def _export_lmeval(run, out: Path, arms: list[str] | None) -> list[Path]:
    import numpy as np

    date_id = _dt.datetime.now().isoformat().replace(":", "-")  # lm-eval's own date id
    task = str((run.config.get("domain") or {}).get("task") or (run.config.get("domain") or {}).get("name") or "dispo")
    written = []
    for arm, samples in run.iter_arms():
        if arms and arm not in arms:
            continue
        key = _correct_key(samples)
        metric = _metric_name(samples, key) if key else None
        stage = run.stage_info(f"arm:{arm}")
        imported = (stage.get("source") or {}) if stage.get("imported") else {}
        filt = imported.get("filter") or "none"
        numeric_ids = all(str(s["id"]).isdigit() for s in samples)
        lines, values = [], []
        for i, s in enumerate(samples):
            sc = ((s.get("scores") or {}).get(key) or {}) if key else {}
            v = (
                None
                if not sc or sc.get("status", "ok") != "ok" or sc.get("value") is None
                else float(bool(sc["value"]))
            )
            if v is not None:
                values.append(v)
            meta = s.get("meta") or {}
            target = str(meta.get("target") if meta.get("target") is not None else "")
            doc = {"id": s["id"], "prompt": s.get("prompt")}
            dec = s.get("decoding") or {}
            gen = {
                "until": imported.get("stop_strings") or [],
                "max_gen_toks": dec.get("max_new_tokens"),
                "do_sample": (dec.get("temperature") or 0) > 0,
                "temperature": dec.get("temperature"),
            }
            line = {
                "doc_id": int(s["id"]) if numeric_ids else i,
                "doc": doc,
                "target": target,
                "arguments": {"gen_args_0": {"arg_0": s.get("prompt") or "", "arg_1": gen}},
                "resps": [[s.get("output") or ""]],
                "filtered_resps": [
                    meta.get("filtered_response")
                    if meta.get("filtered_response") is not None
                    else (s.get("output") or "")
                ],
                "filter": filt,
                "metrics": [metric] if metric else [],
                "doc_hash": meta.get("doc_hash") or _hash(json.dumps(doc, indent=2, ensure_ascii=False)),
                "prompt_hash": _hash(s.get("prompt") or ""),
                "target_hash": _hash(target),
            }
            if metric:
                line[metric] = v
            lines.append(line)
        d = out / arm
        d.mkdir(parents=True, exist_ok=True)
        sp = d / f"samples_{task}_{date_id}.jsonl"
        atomic.write_jsonl(sp, lines)
        res: dict[str, Any] = {"alias": task}
        if metric and values:
            arr = np.asarray(values)
            res[f"{metric},{filt}"] = float(arr.mean())
            # lm-eval's mean_stderr: sample std (ddof=1) / sqrt(n)
            res[f"{metric}_stderr,{filt}"] = float(arr.std(ddof=1) / np.sqrt(len(arr))) if len(arr) > 1 else "N/A"
        model = stage.get("model") or {}
        results = {
            "results": {task: res},
            "versions": {task: "dispo-export"},
            "n-samples": {task: {"original": len(samples), "effective": len(samples)}},
            "configs": {
                task: {
                    "task": task,
                    "output_type": "generate_until",
                    "metric_list": [{"metric": metric}] if metric else [],
                }
            },
            "config": {
                "model": "dispo-export",
                "model_args": f"pretrained={model.get('named_in_log') or model.get('name') or run.manifest.get('model')}",
                "gen_kwargs": None,
                "limit": None,
                "random_seed": stage.get("seed"),
            },
            "dispo": {"run": run.id, "arm": arm, "n_unscored": len(samples) - len(values)},
            "date": date_id,
        }
        rp = d / f"results_{date_id}.json"
        atomic.write_json(rp, results)
        written += [sp, rp]
    return written
