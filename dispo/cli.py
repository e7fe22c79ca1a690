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
    pool_cmd,
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


@app.callback()
def _global(
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Show library warnings and third-party progress output (hidden by default)."
    ),
) -> None:
    """Disposition distillation experiments: train arcs, evaluate, and falsify claimed gains."""
    # read by main() from argv before the libraries load (they read their switches at import);
    # declared here so that `dispo -v CMD` parses and --help lists it


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
app.command("pool")(pool_cmd.pool)
app.add_typer(cache_cmd.app, name="cache")
app.add_typer(judge_cmd.app, name="judge")


def is_click_exception(e: BaseException) -> bool:
    """A click usage error (UsageError, NoSuchOption, BadParameter, ...). Matched by class name
    as well as by isinstance: Typer may raise them from a click it vendors (typer._click), whose
    classes are not the installed click's."""
    import click

    if isinstance(e, click.exceptions.ClickException):
        return True
    return any(c.__name__ == "ClickException" for c in type(e).__mro__) and callable(getattr(e, "show", None))


def usage_error_line(e: BaseException) -> str:
    """Click's message on one line, with where to get help: "No such command 'bogus'. (try
    'dispo -h')"."""
    msg = e.format_message() if callable(getattr(e, "format_message", None)) else str(e)
    msg = " ".join(str(msg).split())
    ctx = getattr(e, "ctx", None)
    path = getattr(ctx, "command_path", None)
    return f"{msg} (try '{path} -h')" if path else msg


def main() -> None:
    from dispo.core.errors import DispoError
    from dispo.core.quiet import configure

    # library warnings and progress noise off unless -v/--verbose (or DISPO_VERBOSE / DISPO_DEBUG)
    configure(verbose=bool(sys.argv[1:2]) and sys.argv[1] in ("-v", "--verbose"))
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
        if is_click_exception(e):
            if type(e).__name__ == "NoArgsIsHelpError":  # `dispo` alone: the help, as Typer shows it
                e.show()
            else:  # an unknown command or option, a missing argument: one line, exit 2
                typer.secho(f"error: {usage_error_line(e)}", err=True, fg="red")
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
