"""Read an inspect_ai eval log (.eval or .json) as one arm of sample records.

The log is read with inspect_ai's own reader (``inspect_ai.log.read_eval_log``; optional
extra ``pip install 'dispo[inspect]'``). Field use, checked against inspect_ai 0.3.285's
EvalLog / EvalSample models:

    id          sample.id  (``<id>#e<epoch>`` when the log ran more than one epoch)
    prompt      sample.input (a string, or the last user message of a message list)
    messages    sample.messages before the first assistant reply (what the model saw)
    output      sample.output.completion
    finish      sample.output.stop_reason: stop -> stop; max_tokens/model_length -> length
    n_tokens    sample.output.usage.output_tokens
    correct     the chosen scorer (``metric=``; default the first whose values are all 0/1
                after inspect's own ``value_to_float``: C/I, yes/no, true/false, numbers)
    labels      every scorer's value (dict values flattened to scorer.key), in meta["labels"]
    decoding    eval.model_generate_config merged with plan.config: max_tokens,
                temperature, top_p, top_k, seed; stop_seqs kept as stop strings
    model       eval.model without the provider prefix for local providers (hf/, vllm/)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dispo.core.errors import DispoError, InputFileError
from dispo.core.types import Sample, Score, ScoreKey
from dispo.evaluation.import_lmeval import ImportedArm, _is01
from dispo.evaluation.importer import SOURCE

FORMAT = "inspect"
_FINISH = {"stop": "stop", "max_tokens": "length", "model_length": "length"}
# providers whose model name after the prefix is an HF id or local path dispo can load
_LOCAL_PROVIDERS = ("hf/", "vllm/", "transformers/")


def looks_like(path: Path) -> bool:
    if path.suffix == ".eval":
        return True
    if path.suffix != ".json":
        return False
    try:
        with path.open("rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return b'"eval"' in head and (b'"version"' in head or b'"status"' in head)


def _reader():
    try:
        from inspect_ai.log import read_eval_log
        from inspect_ai.scorer import value_to_float
    except ImportError:
        raise DispoError(
            "reading inspect_ai logs needs inspect_ai: pip install 'dispo[inspect]' (or pip install inspect_ai)"
        ) from None
    return read_eval_log, value_to_float


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = [getattr(c, "text", None) for c in content or []]
    return "".join(t for t in parts if isinstance(t, str))


def _messages(sample) -> list[dict[str, str]]:
    msgs: list[dict[str, str]] = []
    for m in sample.messages or []:
        if m.role == "assistant":
            break
        msgs.append({"role": m.role, "content": _text(m.content)})
    if not msgs:
        if isinstance(sample.input, str):
            msgs = [{"role": "user", "content": sample.input}]
        else:
            msgs = [{"role": m.role, "content": _text(m.content)} for m in sample.input]
    return msgs


def _generate_config(log) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for cfg in (getattr(log.eval, "model_generate_config", None), getattr(getattr(log, "plan", None), "config", None)):
        if cfg is not None:
            merged.update({k: v for k, v in cfg.model_dump().items() if v is not None})
    return merged


def map_decoding(gc: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    dec: dict[str, Any] = {}
    if gc.get("max_tokens") is not None:
        dec["max_new_tokens"] = int(gc["max_tokens"])
    if gc.get("temperature") is not None:
        dec["temperature"] = float(gc["temperature"])
    if gc.get("top_p") is not None:
        dec["top_p"] = float(gc["top_p"])
    if gc.get("top_k") is not None:
        dec["top_k"] = int(gc["top_k"])
    return dec, [str(s) for s in gc.get("stop_seqs") or []]


def model_id(name: str | None) -> str | None:
    if not name:
        return None
    for pre in _LOCAL_PROVIDERS:
        if name.startswith(pre):
            return name[len(pre) :]
    return name


def read_inspect(path: str | Path, metric: str | None = None) -> ImportedArm:
    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"{p}: no such file; pass an inspect_ai log (.eval or .json)")
    read_eval_log, value_to_float = _reader()
    try:
        log = read_eval_log(str(p))
    except Exception as e:  # inspect raises its own and pydantic errors on a corrupt log
        msg = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise InputFileError(
            f"{p}: inspect_ai could not read this log ({msg}); pass a complete .eval/.json log"
        ) from None
    samples = log.samples or []
    if not samples:
        raise InputFileError(f"{p}: the log has no samples (status {log.status}); re-run the eval with samples logged")
    to_float = value_to_float()

    def flat(sample) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, sc in (sample.scores or {}).items():
            v = sc.value
            if isinstance(v, dict):
                out.update({f"{name}.{k}": x for k, x in v.items()})
            else:
                out[name] = v
        return out

    labels_all = [flat(s) for s in samples]
    names = list(dict.fromkeys(k for lab in labels_all for k in lab))  # the task's scorer order: first = primary

    def as01(v: Any) -> float | None:
        if v is None or isinstance(v, (list, dict)):
            return None
        f = to_float(v)
        return f if _is01(f) else None

    scorable = [n for n in names if all(as01(lab.get(n)) is not None for lab in labels_all if n in lab)]
    if metric is not None and metric not in names:
        raise InputFileError(f"{p}: no scorer {metric!r}; the log has {', '.join(names) or 'none'}")
    if metric is not None and metric not in scorable:
        raise InputFileError(
            f"{p}: scorer {metric!r} is not 0/1 on every sample; pick one of {', '.join(scorable) or 'none'}"
        )
    metric = metric or next(iter(scorable), None)

    epochs = max(s.epoch for s in samples)
    gc = _generate_config(log)
    decoding, stops = map_decoding(gc)
    model = model_id(log.eval.model)
    records, items, seen = [], [], set()
    for s, labels in zip(samples, labels_all):
        rid = str(s.id) if epochs == 1 else f"{s.id}#e{s.epoch}"
        if rid in seen:
            raise InputFileError(f"{p}: sample id {rid} repeats; ids must be unique per epoch")
        seen.add(rid)
        msgs = _messages(s)
        prompt = next(
            (m["content"] for m in reversed(msgs) if m["role"] == "user"), msgs[-1]["content"] if msgs else ""
        )
        out = s.output.completion if s.output is not None else ""
        usage = getattr(s.output, "usage", None)
        scores: dict[str, dict] = {}
        if metric is not None and metric in labels:
            raw = labels[metric]
            sc = Score(
                scorer=f"{SOURCE}.{FORMAT}",
                version=f"{FORMAT}/{metric}",
                value=bool(as01(raw)),
                detail={"field": metric, "raw": raw, "format": FORMAT},
            )
            scores[ScoreKey.of("correct", SOURCE)] = sc.to_json()
        elif metric is not None:
            scores[ScoreKey.of("correct", SOURCE)] = Score.unscored(
                SOURCE, f"{FORMAT}/{metric}", f"scorer {metric!r} did not score this sample"
            ).to_json()
        target = s.target if isinstance(s.target, str) else list(s.target)
        records.append(
            Sample(
                id=rid,
                prompt=prompt,
                messages=msgs,
                output=out or "",
                finish_reason=_FINISH.get(getattr(s.output, "stop_reason", None)),
                n_tokens=getattr(usage, "output_tokens", None) if usage is not None else None,
                decoding=dict(decoding),
                seed=gc.get("seed"),
                scores=scores,
                meta={
                    "source_file": str(p),
                    "format": FORMAT,
                    "task": log.eval.task,
                    "epoch": s.epoch,
                    "input": s.input if isinstance(s.input, str) else [_text(m.content) for m in s.input],
                    "labels": labels,
                    "target": target,
                    "error": str(s.error.message) if s.error else None,
                },
            ).to_json()
        )
        items.append({"id": rid, "prompt": prompt, "messages": msgs, "target": target})
    prov = {
        "format": FORMAT,
        "file": str(p.resolve()),
        "task": log.eval.task,
        "task_id": log.eval.task_id,
        "run_id": log.eval.run_id,
        "status": log.status,
        "model": model,
        "model_name_in_log": log.eval.model,
        "model_args": log.eval.model_args,
        "generate_config": gc,
        "stop_strings": stops,
        "metric": metric,
        "scorers": names,
        "epochs": epochs,
        "reported": {
            sc.name: {k: m.value for k, m in sc.metrics.items()} for sc in (log.results.scores if log.results else [])
        },
        "inspect_version": getattr(log.eval.packages, "get", lambda *_: None)("inspect_ai")
        if log.eval.packages
        else None,
    }
    # dispo cannot run inspect's solvers and scorers, so new outputs could not be scored as the log was.
    why = "inspect_ai scorers and solvers are not re-run by dispo, so regenerated outputs could not be scored as in the log"
    return ImportedArm(FORMAT, log.eval.task, records, model, decoding, prov, items, why)
