"""The ``workhorse`` command line: workers, jobs, queues, schema and a demo.

Every command that reads or changes the store takes ``--app module:attribute`` or
``--url``; mistakes print one red line and exit with code 2, runtime failures exit 1.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from workhorse import __version__
from workhorse.cli._errors import report
from workhorse.cli._output import console
from workhorse.cli._reachable import quiet_pool_logs
from workhorse.cli.demo import demo_command
from workhorse.cli.enqueue import enqueue_command
from workhorse.cli.jobs import jobs_app
from workhorse.cli.keys import keys_app
from workhorse.cli.migrate import migrate_command
from workhorse.cli.queues import queues_command
from workhorse.cli.schedules import schedules_command
from workhorse.cli.serve import serve_command
from workhorse.cli.webhooks import webhooks_app
from workhorse.cli.worker import worker_app
from workhorse.cli.workflows import workflows_app

DEBUG_ENV = "WORKHORSE_DEBUG"

cli = typer.Typer(
    name="workhorse",
    help="Durable background jobs: run workers, enqueue and inspect jobs, run the demo.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
cli.add_typer(worker_app)
cli.add_typer(jobs_app)
cli.command("enqueue")(enqueue_command)
cli.command("queues")(queues_command)
cli.command("migrate")(migrate_command)
cli.command("demo")(demo_command)
cli.add_typer(keys_app)
cli.command("serve")(serve_command)
cli.command("schedules")(schedules_command)
cli.add_typer(webhooks_app)
cli.add_typer(workflows_app)


class _State:
    debug = False


def _show_version(value: bool) -> None:
    if value:
        console.print(f"workhorse {__version__}")
        raise typer.Exit()


@cli.callback()
def _root(
    debug: Annotated[
        bool,
        typer.Option("--debug", envvar=DEBUG_ENV, help="Show tracebacks of errors."),
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    _State.debug = debug
    if not debug:
        quiet_pool_logs()


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI (the ``workhorse`` console script) and exit with its code."""
    command = typer.main.get_command(cli)
    try:
        code = command.main(args=argv, prog_name="workhorse", standalone_mode=False)
    except typer.Abort:
        code = 130
    except Exception as exc:
        # A bare group (``workhorse jobs``): typer printed its help on raising this.
        if type(exc).__name__ == "NoArgsIsHelpError":
            sys.exit(0)
        debug = _State.debug or os.environ.get(DEBUG_ENV, "").lower() in {"1", "true", "yes"}
        code = report(exc, debug=debug)
    sys.exit(code if isinstance(code, int) else 0)
