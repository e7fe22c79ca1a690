"""Read lm-evaluation-harness `--log_samples` output as one arm of sample records.

lm-eval (checked against 0.4.13's evaluator.py and loggers/evaluation_tracker.py) writes, per
task, ``samples_<task>_<date>.jsonl`` with one line per (document, filter):

    doc_id, doc, target, arguments {"gen_args_<i>": {"arg_<j>": ...}}, resps, filtered_resps,
    filter, metrics [names], <metric>: value, doc_hash, prompt_hash, target_hash

and beside it ``results_<date>.json`` (same date id) with the aggregated ``results``, the task
``configs`` (output_type, filter_list, metric_list, generation_kwargs), ``config`` (model,
model_args, gen_kwargs, seeds, limit), ``lm_eval_version`` and the chat-template fields.

What becomes what in dispo:

    id            str(doc_id)  (paired across two logs of the same task; doc_hash must agree)
    prompt        arguments.gen_args_0.arg_0 (the exact text lm-eval sent to the model)
    output        resps[0][0] for generate_until; "" + output_missing for loglikelihood tasks
    correct       the chosen 0/1 metric (``metric=``; default pass@1, exact_match, acc, ...)
                  -> score ``correct:import`` with the metric and filter in its detail
    labels        every per-sample metric, in meta["labels"]
    decoding      gen kwargs (max_gen_toks, do_sample, temperature, top_p, top_k) mapped onto
                  dispo's decoding keys; ``until`` stop strings kept beside them
    model         model_args' pretrained=... (or the results file's model name)
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dispo.core.errors import InputFileError
from dispo.core.types import Sample, Score, ScoreKey
from dispo.evaluation.importer import SOURCE, _parse_line

FORMAT = "lm-eval"
# Preferred 0/1 metrics, most specific first: the first one a log carries becomes "correct".
CORRECT_METRICS = ("pass@1", "pass_at_1", "exact_match", "acc", "em", "acc_norm")
_DATE = re.compile(r"_(\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d+)\.jsonl$")
# lm-eval's HF backend defaults (lm_eval/models/huggingface.py): 256 new tokens, greedy.
DEFAULT_MAX_GEN_TOKS = 256


@dataclass
class ImportedArm:
    """One external log read into dispo's terms (shared by the lm-eval and inspect readers)."""

    format: str
    task: str
    records: list[dict[str, Any]]
    model: str | None  # HF id or local path named in the log
    decoding: dict[str, Any]  # dispo decoding keys only
    provenance: dict[str, Any]  # everything else that changes a number (stop strings, seeds, files...)
    items: list[dict[str, Any]] = field(default_factory=list)  # what the imported domain needs to re-score
    why_not_regenerable: str | None = None  # set when outputs cannot be regenerated from the log


def looks_like(path: Path) -> bool:
    """A first line with lm-eval's sample fields (a name alone is not enough)."""
    try:
        with path.open("rb") as fh:
            first = json.loads(fh.readline(1 << 20) or b"null")
    except (OSError, ValueError):
        return False
    return isinstance(first, dict) and {"doc_id", "arguments", "resps"} <= set(first)


def results_file_for(path: Path) -> Path | None:
    """The results_<date>.json written in the same lm-eval call (same date id), if present."""
    m = _DATE.search(path.name)
    if m:
        p = path.with_name(f"results_{m.group(1)}.json")
        if p.is_file():
            return p
    cands = sorted(path.parent.glob("results_*.json"))
    return cands[0] if len(cands) == 1 else None


def task_from_name(path: Path) -> str | None:
    m = _DATE.search(path.name)
    if path.name.startswith("samples_") and m:
        return path.name[len("samples_") : m.start()]
    return None


def parse_model_args(model_args: Any) -> dict[str, Any]:
    """lm-eval's model_args: "k=v,k=v" (CLI) or a dict (Python API)."""
    if isinstance(model_args, dict):
        return dict(model_args)
    out: dict[str, Any] = {}
    for part in str(model_args or "").split(","):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def map_decoding(gen_kwargs: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """lm-eval generation kwargs -> (dispo decoding, until stop strings)."""
    gk = dict(gen_kwargs or {})
    until = gk.get("until") or []
    until = [until] if isinstance(until, str) else [str(u) for u in until]
    do_sample = bool(gk.get("do_sample", False))
    temp = float(gk.get("temperature", 0.0) or 0.0)
    dec: dict[str, Any] = {
        "max_new_tokens": int(gk.get("max_gen_toks", gk.get("max_new_tokens", DEFAULT_MAX_GEN_TOKS))),
        # HF semantics: without do_sample the temperature is ignored (greedy).
        "temperature": temp if do_sample and temp > 0 else 0.0,
    }
    if do_sample:
        if gk.get("top_p") is not None:
            dec["top_p"] = float(gk["top_p"])
        if gk.get("top_k") is not None:
            dec["top_k"] = int(gk["top_k"])
    if gk.get("repetition_penalty") is not None:
        dec["repetition_penalty"] = float(gk["repetition_penalty"])
    return dec, until


def _is01(v: Any) -> bool:
    return (
        (isinstance(v, bool) or isinstance(v, (int, float)))
        and not (isinstance(v, float) and math.isnan(v))
        and float(v) in (0.0, 1.0)
    )


def _first_text(x: Any) -> str | None:
    """First string in lm-eval's nested resps/filtered_resps lists."""
    while isinstance(x, list):
        if not x:
            return None
        x = x[0]
    return x if isinstance(x, str) else None


def read_lmeval(path: str | Path, metric: str | None = None, filter_name: str | None = None) -> ImportedArm:
    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"{p}: no such file; pass an lm-eval samples_<task>_<date>.jsonl file")
    lines: list[tuple[int, dict]] = []
    with p.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            obj = _parse_line(p, lineno, raw)
            if obj is None:
                continue
            for key in ("doc_id", "arguments", "resps", "filtered_resps"):
                if key not in obj:
                    raise InputFileError(f"{p}:{lineno}: field {key!r} missing; is this an lm-eval --log_samples file?")
            lines.append((lineno, obj))
    if not lines:
        raise InputFileError(f"{p}: no samples; expected lm-eval --log_samples output")

    filters = sorted({o.get("filter") or "none" for _, o in lines})
    if filter_name is None:
        if len(filters) > 1:
            raise InputFileError(
                f"{p}: samples for several lm-eval filters ({', '.join(filters)}); pick one with --filter NAME"
            )
        filter_name = filters[0]
    elif filter_name not in filters:
        raise InputFileError(f"{p}: no samples for filter {filter_name!r}; the file has {', '.join(filters)}")
    lines = [(n, o) for n, o in lines if (o.get("filter") or "none") == filter_name]

    names = [m for m in (lines[0][1].get("metrics") or []) if m in lines[0][1]]
    if metric is not None and metric not in names:
        raise InputFileError(f"{p}: no per-sample metric {metric!r}; the log has {', '.join(names) or 'none'}")
    if metric is None:
        metric = next((m for m in CORRECT_METRICS if m in names and all(_is01(o.get(m)) for _, o in lines)), None)
    elif not all(_is01(o.get(metric)) or o.get(metric) is None for _, o in lines):
        raise InputFileError(
            f"{p}: metric {metric!r} is not 0/1 on every sample, so it cannot be a correctness label; "
            f"pick one of {', '.join(m for m in names if all(_is01(o.get(m)) for _, o in lines)) or 'none'}"
        )

    results_path = results_file_for(p)
    results: dict[str, Any] = {}
    if results_path is not None:
        try:
            results = json.loads(results_path.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError) as e:
            raise InputFileError(
                f"{results_path}: unreadable lm-eval results file ({type(e).__name__}); fix or remove it"
            ) from None
    task = task_from_name(p) or next(iter(results.get("configs") or {}), None) or p.stem
    tcfg = (results.get("configs") or {}).get(task) or {}
    first_args = (lines[0][1].get("arguments") or {}).get("gen_args_0") or {}
    output_type = tcfg.get("output_type") or (
        "generate_until" if isinstance(first_args.get("arg_1"), dict) else "loglikelihood"
    )
    generative = output_type == "generate_until"

    run_cfg = results.get("config") or {}
    margs = parse_model_args(run_cfg.get("model_args"))
    model = margs.get("pretrained") or margs.get("model") or results.get("model_name") or None
    gen_kwargs = first_args.get("arg_1") if generative and isinstance(first_args.get("arg_1"), dict) else {}
    decoding, until = map_decoding(gen_kwargs)
    seed = run_cfg.get("random_seed")

    records, items, seen = [], [], {}
    for lineno, o in lines:
        rid = str(o["doc_id"])
        if rid in seen:
            raise InputFileError(
                f"{p}:{lineno}: doc_id {rid} repeats (first on line {seen[rid]}); one line per document and filter"
            )
        seen[rid] = lineno
        args = o.get("arguments") or {}
        a0 = args.get("gen_args_0") if isinstance(args, dict) else None
        prompt = a0.get("arg_0") if isinstance(a0, dict) else None
        if not isinstance(prompt, str):
            raise InputFileError(f"{p}:{lineno}: field 'arguments': no gen_args_0.arg_0 prompt text")
        output = _first_text(o.get("resps")) if generative else None
        filtered = o.get("filtered_resps")
        labels = {m: o.get(m) for m in names}
        scores: dict[str, dict] = {}
        if metric is not None:
            v = o.get(metric)
            if v is None:
                s = Score.unscored(SOURCE, f"{FORMAT}/{metric}", f"metric {metric!r} is null")
            else:
                s = Score(
                    scorer=f"{SOURCE}.{FORMAT}",
                    version=f"{FORMAT}/{metric}",
                    value=bool(float(v)),
                    detail={"field": metric, "filter": filter_name, "format": FORMAT},
                )
            scores[ScoreKey.of("correct", SOURCE)] = s.to_json()
        sample = Sample(
            id=rid,
            prompt=prompt,
            messages=[{"role": "user", "content": prompt}],
            output=output if output is not None else "",
            finish_reason=None,
            n_tokens=None,
            decoding=dict(decoding),
            seed=seed,
            scores=scores,
            meta={
                "source_file": str(p),
                "line": lineno,
                "format": FORMAT,
                "task": task,
                "labels": labels,
                "filtered_response": _first_text(filtered) if generative else filtered,
                "target": o.get("target"),
                "doc_hash": o.get("doc_hash"),
                "prompt_hash": o.get("prompt_hash"),
            },
            extra={"output_missing": True} if output is None else {},
        )
        records.append(sample.to_json())
        items.append(
            {
                "id": rid,
                "prompt": prompt,
                "doc": o.get("doc"),
                "target": o.get("target"),
                "gen_kwargs": a0.get("arg_1") if isinstance(a0.get("arg_1"), dict) else None,
            }
        )

    prov = {
        "format": FORMAT,
        "file": str(p.resolve()),
        "task": task,
        "output_type": output_type,
        "filter": filter_name,
        "metric": metric,
        "metrics": names,
        "stop_strings": until,
        "gen_kwargs": gen_kwargs,
        "model_args": margs,
        "model": model,
        "results_file": str(results_path.resolve()) if results_path else None,
        "reported": ((results.get("results") or {}).get(task) or {}),
        "lm_eval_version": results.get("lm_eval_version"),
        "git_hash": results.get("git_hash"),
        "seeds": {k: run_cfg.get(k) for k in ("random_seed", "numpy_seed", "torch_seed", "fewshot_seed")},
        "limit": run_cfg.get("limit"),
        "n_shot": (results.get("n-shot") or {}).get(task),
        "apply_chat_template": bool(results.get("chat_template")),
        "chat_template_sha": results.get("chat_template_sha"),
        "system_instruction": results.get("system_instruction"),
        "task_config": tcfg,
    }
    why = None
    if not generative:
        why = f"lm-eval task {task!r} is {output_type} (scored by log-likelihoods, not generated text): nothing to regenerate"
    elif not tcfg:
        why = "no results_*.json beside the samples file, so lm-eval's task config (filters, metric) is unknown"
    return ImportedArm(FORMAT, task, records, model, decoding, prov, items, why)
