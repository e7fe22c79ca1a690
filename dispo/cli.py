"""dispo's command line: a thin Typer app. Each command composes the config and calls one
library function (the same API users can import). Heavy imports happen inside commands, so
`dispo --help` is instant.
"""

from __future__ import annotations

import os
import sys

import typer

from dispo.commands import (
    cache_cmd,
    config_cmd,
    eval_cmd,
    export_cmd,
    falsify_cmd,
    fetch_cmd,
    import_cmd,
    items_cmd,
    judge_cmd,
    models_cmd,
    probe_cmd,
    report_cmd,
    runs_cmd,
    score_cmd,
    train_cmd,
)

app = typer.Typer(
    name="dispo",
    help="Disposition distillation experiments: train arcs, evaluate, and falsify claimed gains.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

app.command("models")(models_cmd.models)
app.command("fetch")(fetch_cmd.fetch)
app.command("eval", context_settings={"allow_extra_args": True})(eval_cmd.eval_)
app.command("train")(train_cmd.train)
app.command("score")(score_cmd.score)
app.command("import")(import_cmd.import_)
app.command("export")(export_cmd.export)
app.command("runs")(runs_cmd.runs)
app.command("show")(runs_cmd.show)
app.command("probe")(probe_cmd.probe)
app.command("falsify")(falsify_cmd.falsify)
app.command("report")(report_cmd.report)
app.command("config")(config_cmd.config)
app.command("items")(items_cmd.items)
app.add_typer(cache_cmd.app, name="cache")
app.add_typer(judge_cmd.app, name="judge")


def main() -> None:
    from dispo.core.errors import DispoError

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if not os.environ.get("DISPO_DEBUG"):
        import warnings

        # transformers/TRL deprecation notices would bury the progress bars; DISPO_DEBUG=1 shows them.
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
    try:
        app(standalone_mode=False)
    except DispoError as e:
        typer.secho(f"error: {e}", err=True, fg="red")
        sys.exit(e.code)
    except KeyboardInterrupt:
        typer.secho("interrupted; rerun with --resume to continue", err=True, fg="yellow")
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        sys.exit(1)
    except Exception as e:  # click usage errors and the like
        import click

        if isinstance(e, click.exceptions.ClickException):
            e.show()
            sys.exit(e.exit_code)
        if os.environ.get("DISPO_DEBUG"):
            raise
        typer.secho(
            f"error: internal {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} "
            f"(set DISPO_DEBUG=1 for the traceback)",
            err=True,
            fg="red",
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
