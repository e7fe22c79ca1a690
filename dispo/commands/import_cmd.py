"""`dispo import FILE... [model=ID_OR_PATH]`: external results become the arms of a run.

dispo import results.jsonl --arm dd [--run RUN]                  dispo's JSONL, one arm at a time
dispo import samples_gsm8k_A.jsonl samples_gsm8k_B.jsonl --arm base --arm dd model=DIR
dispo import logs/base.eval logs/dd.eval --arm base --arm dd      inspect_ai logs
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def import_(
    files: List[str] = typer.Argument(
        ...,
        help="Log files (lm-eval samples_*.jsonl, inspect .eval/.json, dispo .jsonl), "
        "then optional model=ID_OR_PATH and device=cpu|cuda",
    ),
    fmt: Optional[str] = typer.Option(
        None, "--format", help="lm-eval | inspect | jsonl (default: detected from each file)."
    ),
    arm: Optional[List[str]] = typer.Option(None, "--arm", help="Arm name, one per file in order (jsonl: required)."),
    run_dir: Optional[Path] = typer.Option(
        None, "--run", help="jsonl only: add the arm to this run (default: a new import run)."
    ),
    field_map: Optional[List[str]] = typer.Option(
        None, "--map", help="jsonl only: TARGET=SOURCE field mapping, e.g. --map passed=baseline_passed"
    ),
    baseline: Optional[str] = typer.Option(
        None, "--baseline", help="Arm the claims compare against (default: the first)."
    ),
    domain: Optional[str] = typer.Option(
        None, "--domain", help="jsonl only: domain the items come from (code, chef, mcas), for re-scoring."
    ),
    metric: Optional[str] = typer.Option(
        None, "--metric", help="Per-sample 0/1 metric (lm-eval) or scorer (inspect) that labels correctness."
    ),
    filter_name: Optional[str] = typer.Option(
        None, "--filter", help="lm-eval filter whose samples to read, when a file has several."
    ),
) -> None:
    """Import per-item results; results.json gets every metric their labels allow, and the claims."""
    from dispo.commands.runs_cmd import print_results
    from dispo.core.errors import ConfigError
    from dispo.evaluation.import_run import detect_format, import_arm, import_logs

    paths, opts = _split_args(files)
    unknown = sorted(set(opts) - {"model", "device"})
    if unknown:
        raise ConfigError(
            f"unknown setting(s) {', '.join(unknown)}; dispo import takes model=ID_OR_PATH and device=cpu|cuda"
        )
    if not paths:
        raise ConfigError("dispo import needs a file to import")
    fmts = {fmt or detect_format(p) for p in paths}
    if fmts == {"jsonl"}:
        if len(paths) != 1 or not arm or len(arm) != 1:
            raise ConfigError(
                "a dispo JSONL imports one file per call with one --arm NAME (add more arms with --run RUN)"
            )
        if metric or filter_name or opts:
            raise ConfigError("--metric, --filter and model= apply to lm-eval/inspect logs, not to dispo JSONL")
        run = import_arm(
            paths[0], arm[0], run_dir=run_dir, field_map=_parse_map(field_map or []), baseline=baseline, domain=domain
        )
    else:
        if run_dir or field_map or domain:
            raise ConfigError(
                "--run, --map and --domain apply to dispo JSONL; import all harness logs of a run in one call"
            )
        run = import_logs(
            paths,
            fmt=fmt,
            arms=arm,
            baseline=baseline,
            metric=metric,
            filter_name=filter_name,
            model=opts.get("model"),
            device=opts.get("device"),
        )
    print_results(run)
    why = run.manifest.get("why_no_model")
    if why:
        typer.secho(f"falsify's regeneration checks will not run on this run: {why}", fg="yellow")


def _split_args(args: list[str]) -> tuple[list[str], dict[str, str]]:
    """Files are the arguments that exist (or have no '='); key=value ones are settings."""
    paths, opts = [], {}
    for a in args:
        if "=" in a and not Path(a).exists():
            k, v = a.split("=", 1)
            opts[k.strip()] = v.strip()
        else:
            paths.append(a)
    return paths, opts


def _parse_map(pairs: list[str]) -> dict[str, str]:
    from dispo.core.errors import ConfigError

    out = {}
    for p in pairs:
        if "=" not in p:
            raise ConfigError(f"--map {p!r} must be TARGET=SOURCE, e.g. --map passed=baseline_passed")
        k, v = p.split("=", 1)
        out[k.strip()] = v.strip()
    return out
