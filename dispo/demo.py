"""`make demo`: the project's main job on the embedded model, end to end, then falsified.

1. Arc 1 smoke run on SmolLM2-135M-Instruct (teacher pipeline -> data -> LoRA SFT -> LoRA DPO ->
   base vs student on held-out HumanEval items with identical decoding and judge);
2. `dispo falsify` of that run: every claimed delta re-checked under a doubled token budget,
   sampled seeds, one identical scorer and a second judge.

Extra arguments are Hydra overrides for step 1; -v shows the libraries' warnings and progress output.
"""

from __future__ import annotations

import sys


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
    overrides = ["model=smollm2-135m", "arc.preset=smoke", *args]
    try:
        con.rule("[bold]dispo demo 1/2: dispo train arc1 " + " ".join(overrides))
        run = run_train("arc1", overrides, resume=True)
        print_results(run)
        con.rule(f"[bold]dispo demo 2/2: dispo falsify {run.dir}")
        result = falsify_run(run.dir, ["falsify.seeds=[1,2]"])
        print_verdicts(result, con)
    except DispoError as e:
        con.print(f"[red]error: {e}[/]")
        return e.code
    con.print(
        f"\nrun dir: [bold]{run.dir}[/]  (report: {run.dir / 'report.md'}, falsify: {run.dir / 'falsify' / 'report.md'})"
    )
    con.print("next: dispo runs | dispo show " + str(run.dir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
