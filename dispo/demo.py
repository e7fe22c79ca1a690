"""`make demo`: the project's main job on the embedded model, end to end, then falsified.

1. Arc 1 on SmolLM2-135M-Instruct with `arc.preset=demo` (four-stage teacher pipeline on
   Qwen2.5-Coder-0.5B -> distilled data -> LoRA SFT -> LoRA DPO -> base vs student on 16 held-out
   HumanEval items with identical decoding and judge);
2. `dispo falsify` of that run: every claimed delta re-checked under a doubled token budget,
   a sampled seed, one identical scorer and a second judge;
3. the outcome in plain words: what the student was trained on, what was claimed, what
   falsify found, and where the reports are.

Extra arguments are Hydra overrides for step 1; -v shows the libraries' warnings and progress output.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OVERRIDES = ["model=smollm2-135m", "arc.preset=demo"]
# one sampled seed and one budget doubling keep the demo within minutes; `dispo falsify` alone
# uses the full defaults (three seeds, x2 then x4)
FALSIFY_OVERRIDES = ["falsify.seeds=[1]", "falsify.budget_factor_max=2"]


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def outcome_lines(run_dir: Path, falsified: dict) -> list[str]:
    """The demo's last screen in plain words, from the run's files and falsify's result:
    the training data (distilled vs reference), each nonzero claim with its verdict and what
    was re-measured, and where the reports and figures are."""
    from dispo.falsify.render import _signed, evidence, main_reason

    run_dir = Path(run_dir)
    data = _read(run_dir / "data_report.json")
    lines = []
    if data:
        n_sft, n_pairs = data.get("n_sft", 0), data.get("n_pairs", 0)
        lines.append(
            f"Trained on {n_sft} SFT examples ({data.get('distilled_sft', 0)} distilled: teacher answers that "
            f"passed their tests; {(data.get('counts') or {}).get('reference', 0)} reference) "
            f"and {n_pairs} DPO pairs ({data.get('distilled_pairs', 0)} distilled)."
        )
    claims = [c for c in falsified.get("claims") or [] if isinstance(c, dict)]
    nonzero = [c for c in claims if isinstance((c.get("claimed") or {}).get("delta"), (int, float))]
    nonzero = [c for c in nonzero if c["claimed"]["delta"] != 0]
    n_items = next((c["claimed"].get("n_pairs") for c in claims if (c.get("claimed") or {}).get("n_pairs")), None)
    held = f" on {n_items} held-out items" if n_items else ""
    if not claims:
        lines.append("The run made no claims.")
    elif not nonzero:
        lines.append(f"The student did not differ from the base model{held} on any metric (every delta is 0).")
    else:
        lines.append(f"Claimed (student minus base{held}) and what falsify found:")
        for c in nonzero:
            pts = [f"{label} {_signed(d)}" for label, d in evidence(c)]
            seen = f"; re-measured: {', '.join(pts)}" if pts else "; nothing could be re-measured"
            lines.append(f"  {c.get('id')}: {_signed(c['claimed']['delta'])} -> {c.get('verdict')}{seen}")
            reason = main_reason(c)
            if reason:
                lines.append(f"    why: {reason}")
    s = falsified.get("summary") or {}
    if s:
        lines.append(
            f"Verdicts: {s.get('SURVIVES', 0)} survive, {s.get('FALSIFIED', 0)} falsified, "
            f"{s.get('INCONCLUSIVE', 0)} inconclusive (a claim survives only with evidence)."
        )
    figures = sorted(str(p) for p in (run_dir / "falsify").glob("*.png")) + sorted(
        str(p) for p in (run_dir / "artifacts").glob("*.png")
    )
    lines.append(f"Run report: {run_dir / 'report.md'}")
    lines.append(f"falsify report: {run_dir / 'falsify' / 'report.md'}")
    if figures:
        lines.append("Figures: " + ", ".join(figures))
    return lines


def main(argv: list[str] | None = None) -> int:
    from dispo.core.quiet import configure

    args = list(argv if argv is not None else sys.argv[1:])
    # quiet unless -v/--verbose: set before the libraries load, they read their switches at import
    configure(verbose=any(a in ("-v", "--verbose") for a in args))
    args = [a for a in args if a not in ("-v", "--verbose")]

    from rich.console import Console

    from dispo.arcs.train_run import run_train
    from dispo.commands.runs_cmd import print_results
    from dispo.core.errors import DispoError
    from dispo.falsify.render import print_verdicts
    from dispo.falsify.run import falsify_run

    con = Console()
    overrides = [*OVERRIDES, *args]
    try:
        con.rule("[bold]dispo demo 1/3: dispo train arc1 " + " ".join(overrides))
        run = run_train("arc1", overrides, resume=True)
        print_results(run)
        con.rule("[bold]dispo demo 2/3: dispo falsify " + " ".join([str(run.dir), *FALSIFY_OVERRIDES]))
        result = falsify_run(run.dir, FALSIFY_OVERRIDES)
        print_verdicts(result, con)
    except DispoError as e:
        con.print(f"[red]error: {e}[/]")
        return e.code
    from rich.markup import escape

    con.rule("[bold]dispo demo 3/3: what this showed")
    for line in outcome_lines(run.dir, result):
        con.print(escape(line), soft_wrap=False)
    con.print("next: dispo runs | dispo show " + str(run.dir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
