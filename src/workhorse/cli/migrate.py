"""``workhorse migrate``: bring the store's schema up to date, or print it."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from workhorse.app import Workhorse
from workhorse.cli._app import AppOption, UrlOption, resolve_app, run
from workhorse.cli._errors import CliError
from workhorse.cli._output import console


def migrate_command(
    print_sql: Annotated[
        bool,
        typer.Option(
            "--print", help="Print the schema SQL (to run it yourself) instead of applying it."
        ),
    ] = False,
    from_version: Annotated[
        int,
        typer.Option(
            "--from-version",
            metavar="N",
            min=0,
            help="With --print: only the migrations after version N (what a database whose "
            "schema is at version N still needs).",
        ),
    ] = 0,
    app: AppOption = None,
    url: UrlOption = None,
) -> None:
    """Apply pending schema migrations to the store (workers and enqueues also do it,
    unless the app says auto_migrate=False)."""
    found = resolve_app(app, url)
    if print_sql:
        # Printing never connects: the SQL comes from the app's URL and backend options.
        sys.stdout.write(found.open_store().migration_sql(after=from_version).rstrip() + "\n")
        return
    if from_version:
        raise CliError("--from-version only goes with --print")
    # Applying is this command's job: the app must not do it silently on connect, or
    # the command would always report "up to date".
    found.auto_migrate = False

    async def apply(wh: Workhorse) -> list[str]:
        return await wh.migrate()

    applied = run(found, apply)
    if applied:
        for name in applied:
            console.print(f"applied {name}")
    else:
        console.print("schema is up to date")
