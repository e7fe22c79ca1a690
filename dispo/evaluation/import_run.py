"""Turn an external JSONL of per-item results into an arm of a (new or existing) run."""

from __future__ import annotations

from pathlib import Path


def import_arm(
    file: str | Path,
    arm: str,
    run_dir: str | Path | None = None,
    field_map: dict | None = None,
    baseline: str | None = None,
    domain: str | None = None,
    root: str | Path | None = None,
):
    from dispo.core.runs import Run
    from dispo.evaluation.importer import read_arm_jsonl
    from dispo.reporting.report import write_report
    from dispo.stats.summary import arm_metrics, claims

    samples = read_arm_jsonl(file, field_map=field_map)  # raises before anything is written
    if run_dir is None:
        cfg = {
            "command": "import",
            "domain": {"name": domain or "import", "split": "import"},
            "judge": {"name": "import"},
            "model": {"name": "import"},
            "seed": 0,
            "imported": {},
        }
        run = Run.create("import", cfg, "import", root=root)
    else:
        run = Run.open(run_dir)
        run.lock()
    try:
        run.write_samples(arm, samples)
        m = run.manifest
        m.setdefault("imports", {})[arm] = {
            "file": str(Path(file).resolve()),
            "field_map": field_map or {},
            "n": len(samples),
        }
        m["status"] = "completed"
        m["has_model"] = False
        run.write_json("manifest.json", m)
        arms = dict(run.iter_arms())
        metrics = {a: arm_metrics(s) for a, s in arms.items()}
        base = baseline or next((a for a in ("base", "baseline") if a in arms), None) or _first_import(run)
        cl = []
        if len(arms) > 1 and base in arms:
            cl = claims(
                {base: arms[base], **{a: s for a, s in arms.items() if a != base}}, base, _common_metrics(metrics)
            )
        run.write_results(metrics, cl, {"baseline": base})
        write_report(run, title="import")
    finally:
        run.unlock()
    return run


def _first_import(run) -> str:
    imports = run.manifest.get("imports", {})
    return next(iter(imports)) if imports else run.arms()[0]


def _common_metrics(metrics: dict) -> list[str]:
    from dispo.stats.catalog import IMPORT_CLAIM_METRICS as order

    common = set.intersection(*(set(m) for m in metrics.values())) if metrics else set()
    return [m for m in order if m in common]


# --------------------------------------------------------------------------- harness logs

FORMATS = ("lm-eval", "inspect", "jsonl")


def detect_format(path: str | Path) -> str:
    """lm-eval samples file, inspect log, or dispo JSONL; one-line error when it can't tell."""
    from dispo.core.errors import InputFileError
    from dispo.evaluation import import_inspect, import_lmeval

    p = Path(path)
    if not p.is_file():
        raise InputFileError(
            f"{p}: no such file; pass an lm-eval samples_*.jsonl, an inspect .eval/.json log or a dispo .jsonl"
        )
    if import_inspect.looks_like(p):
        return "inspect"
    if import_lmeval.looks_like(p):
        return "lm-eval"
    if p.suffix == ".jsonl" or _first_line_is_object(p):
        return "jsonl"
    raise InputFileError(
        f"{p}: cannot tell the format from the name or first line; pass --format lm-eval|inspect|jsonl"
    )


def _first_line_is_object(p: Path) -> bool:
    import json

    try:
        with p.open("rb") as fh:
            return isinstance(json.loads(fh.readline(1 << 20)), dict)
    except (OSError, ValueError):
        return False


def read_log(path: str | Path, fmt: str, metric: str | None = None, filter_name: str | None = None):
    from dispo.core.errors import ConfigError

    if fmt == "lm-eval":
        from dispo.evaluation.import_lmeval import read_lmeval

        return read_lmeval(path, metric=metric, filter_name=filter_name)
    if fmt == "inspect":
        from dispo.evaluation.import_inspect import read_inspect

        if filter_name is not None:
            raise ConfigError(
                "--filter applies to lm-eval logs only; inspect logs have scorers (pick one with --metric)"
            )
        return read_inspect(path, metric=metric)
    raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")


def resolve_model(model: str, prompt_format: str) -> dict:
    """A model spec for `model=ID_OR_PATH`: a dispo model name, a local dir/.gguf, or a cached HF id."""
    import os

    from dispo.core.errors import ConfigError
    from dispo.models.registry import _in_hf_cache, get_spec, model_names

    if model in model_names():
        spec = dict(get_spec(model))
    elif Path(os.path.expanduser(model)).exists():
        p = Path(os.path.expanduser(model)).resolve()
        spec = {"name": p.stem if p.is_file() else p.name, "path": str(p), "source": "local", "dtype": "float32"}
    elif "/" in model and not model.startswith((".", "/", "~")):
        if not _in_hf_cache(model) and os.environ.get("HF_HUB_OFFLINE") == "1":
            raise ConfigError(f"model={model}: not in the local HF cache and the hub is offline; pass model=LOCAL_DIR")
        spec = {"name": model, "hf_id": model, "source": "hub", "dtype": "float32"}
    else:
        raise ConfigError(
            f"model={model}: not a dispo model name, an existing path or an HF id (ORG/NAME); "
            f"use one of {', '.join(model_names())} or model=DIR"
        )
    spec["prompt_format"] = prompt_format
    return spec


def _arm_name(imp, used: set[str]) -> str:
    from dispo.core.runs import _slug

    base = _slug(Path(str(imp.model or imp.format)).name)
    return base if base not in used else None  # type: ignore[return-value]


def import_logs(
    files: list[str | Path],
    fmt: str | None = None,
    arms: list[str] | None = None,
    baseline: str | None = None,
    metric: str | None = None,
    filter_name: str | None = None,
    model: str | None = None,
    device: str | None = None,
    root: str | Path | None = None,
):
    """Import harness logs (lm-eval samples, inspect logs) as the arms of one new run.

    Two logs of the same task become two arms paired by document id (lm-eval doc_id with equal
    doc_hash; inspect sample id with equal input). With `model` (a dispo model name, a local
    path or an HF id) the run carries the model and each arm's decoding from its log, so
    falsify's regeneration checks rerun the prompts with dispo's engine.
    """
    from dispo.core.errors import ConfigError, InputFileError
    from dispo.core.runs import Run
    from dispo.generate.engine import DecodingParams
    from dispo.reporting.report import write_report
    from dispo.stats.summary import arm_metrics, claims

    if not files:
        raise ConfigError("dispo import needs at least one log file")
    fmts = [fmt or detect_format(f) for f in files]
    if "jsonl" in fmts:
        raise ConfigError("dispo JSONL files import one at a time with --arm NAME (and --run RUN for the next arm)")
    if len(set(fmts)) > 1:
        raise ConfigError(f"the logs are of different formats ({', '.join(fmts)}); import logs of one harness together")
    fmt = fmts[0]
    imps = [read_log(f, fmt, metric, filter_name) for f in files]  # every check before anything is written

    tasks = {i.task for i in imps}
    if len(tasks) > 1:
        raise InputFileError(
            f"the logs are of different tasks ({', '.join(sorted(map(str, tasks)))}); arms of one run must share a task"
        )
    names = list(arms or [])
    if names and len(names) != len(imps):
        raise ConfigError(f"{len(imps)} logs but {len(names)} --arm names; give one --arm per log, in order")
    if not names:
        used: set[str] = set()
        for imp in imps:
            n = _arm_name(imp, used)
            if n is None:
                raise ConfigError(
                    "two logs name the same model; give each an arm name with --arm NAME (one per log, in order)"
                )
            used.add(n)
            names.append(n)
    if len(set(names)) != len(names):
        raise ConfigError(f"arm names must differ, got {', '.join(names)}")
    metric_of = {i.provenance.get("metric") for i in imps}
    if len(metric_of) > 1:
        raise InputFileError(
            f"the logs label correctness with different metrics ({', '.join(map(str, metric_of))}); pick one with --metric"
        )
    _check_pairing(imps, files)

    # Regeneration: one base model, prompts identical across arms, every arm regenerable.
    why_no_model = next((i.why_not_regenerable for i in imps if i.why_not_regenerable), None)
    prompts = [{it["id"]: (it.get("messages") or it["prompt"]) for it in i.items} for i in imps]
    if why_no_model is None and any(p != prompts[0] for p in prompts[1:]):
        common = set.intersection(*(set(p) for p in prompts))
        if any(prompts[0][k] != p[k] for p in prompts[1:] for k in common):
            why_no_model = (
                "the arms sent different prompts for the same document, and regeneration shares one prompt per document"
            )
    named = {str(i.model) for i in imps if i.model}
    lm_pretrained = {i.provenance.get("model_args", {}).get("pretrained") for i in imps} if fmt == "lm-eval" else named
    if why_no_model is None and len(lm_pretrained) > 1:
        why_no_model = f"the logs name different base models ({', '.join(sorted(map(str, lm_pretrained)))}); dispo regenerates one model (with per-arm adapters)"
    if model is None and why_no_model is None:
        why_no_model = f"no model given: pass model=ID_OR_PATH (the log names {', '.join(sorted(named)) or 'none'}) to let falsify regenerate"
    raw = fmt == "lm-eval" and not any(i.provenance.get("apply_chat_template") for i in imps)
    model_spec = resolve_model(model, "raw" if raw else "chat") if model else None
    has_model = model_spec is not None and (why_no_model is None or why_no_model.startswith("no model given"))
    if has_model:
        why_no_model = None

    first = imps[0]
    defaults = DecodingParams().to_dict()
    domain = {
        "name": "imported",
        "split": "eval",
        "format": fmt,
        "task": first.task,
        "metric": first.provenance.get("metric"),
        "filter": first.provenance.get("filter"),
        "stop_strings": first.provenance.get("stop_strings") or [],
        "task_config": first.provenance.get("task_config") or {},
    }
    cfg = {
        "command": "import",
        "domain": domain,
        "judge": {"name": "lexical" if has_model else "import"},
        "model": model_spec or {"name": "import", "named_in_log": sorted(named)},
        "decoding": {**defaults, **first.decoding},
        "seed": int(first.records[0].get("seed") or 0),
        "device": device or "cpu",
        "tasks": [],
        "imported": {"format": fmt, "files": [str(Path(f).resolve()) for f in files]},
    }
    run = Run.create("import", cfg, Path(str(first.model or "import")).name, root=root)
    try:
        items_path = run.artifacts / "import_items.jsonl"
        from dispo.core import atomic

        atomic.write_jsonl(items_path, first.items)
        domain["items"] = str(items_path.resolve())
        import yaml

        atomic.write_text(run.dir / "config.yaml", yaml.safe_dump(cfg, sort_keys=False))
        judge_desc = {"name": cfg["judge"]["name"], "tasks": []}
        for arm, imp in zip(names, imps):
            run.write_samples(arm, imp.records)
            adapter = imp.provenance.get("model_args", {}).get("peft") if fmt == "lm-eval" else None
            run.complete_stage(
                f"arm:{arm}",
                {
                    "n": len(imp.records),
                    "imported": True,
                    "model": {
                        "name": (model_spec or {}).get("name") or imp.model,
                        "named_in_log": imp.model,
                        "adapter": adapter if adapter and Path(adapter).exists() else None,
                    },
                    "judge": judge_desc,
                    "decoding": {**defaults, **imp.decoding},
                    "seed": int(imp.records[0].get("seed") or 0),
                    "intervention": None,
                    "system_prompt": None,
                    "domain": {"name": "imported", "version": "imported-v1"},
                    "tasks": [],
                    "source": {k: v for k, v in imp.provenance.items() if k != "task_config"},
                },
            )
        m = run.manifest
        m["imports"] = {
            a: {"file": str(Path(f).resolve()), "format": fmt, "n": len(i.records)}
            for a, f, i in zip(names, files, imps)
        }
        m["has_model"] = has_model
        m["why_no_model"] = why_no_model
        m["model"] = (model_spec or {}).get("name") or (first.model or "import")
        run.write_json("manifest.json", m)
        arm_samples = dict(run.iter_arms())
        metrics = {a: arm_metrics(s) for a, s in arm_samples.items()}
        base = baseline or names[0]
        if base not in arm_samples:
            raise ConfigError(f"--baseline {base!r} is not an arm; arms: {', '.join(names)}")
        cl = []
        if len(arm_samples) > 1:
            cl = claims(
                {base: arm_samples[base], **{a: s for a, s in arm_samples.items() if a != base}},
                base,
                _common_metrics(metrics),
            )
        reported = {a: i.provenance.get("reported") for a, i in zip(names, imps)}
        run.write_results(
            metrics,
            cl,
            {
                "baseline": base,
                "imported": {
                    "format": fmt,
                    "task": first.task,
                    "reported_by_harness": reported,
                    "why_no_model": why_no_model,
                },
            },
        )
        write_report(run, title="import")
        run.finish("completed")
    except BaseException:
        run.finish("failed")
        raise
    return run


def _check_pairing(imps, files) -> None:
    """Same document ids must be the same documents in every log (else pairing is meaningless)."""
    from dispo.core.errors import InputFileError

    if len(imps) < 2:
        return
    key = "doc_hash" if imps[0].format == "lm-eval" else "input"
    ref = {r["id"]: r for r in imps[0].records}
    for imp, f in zip(imps[1:], files[1:]):
        shared = [r for r in imp.records if r["id"] in ref]
        if not shared:
            raise InputFileError(f"{f}: no document id in common with {files[0]}; the logs cannot be paired")
        for r in shared:
            a, b = ref[r["id"]], r
            if a["meta"].get(key) != b["meta"].get(key):
                raise InputFileError(
                    f"{f}: document {r['id']} differs from {files[0]} ({key}); the logs are not of the same task data"
                )
