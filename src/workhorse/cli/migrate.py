"""``workhorse migrate``: bring the store's schema up to date, or print it."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from workhorse.app import Workhorse
from workhorse.backends import open_backend
from workhorse.cli._app import AppOption, UrlOption, resolve_app, run
from workhorse.cli._output import console


def migrate_command(
    print_sql: Annotated[
        bool,
        typer.Option(
            "--print", help="Print the schema SQL (to run it yourself) instead of applying it."
        ),
    ] = False,
    app: AppOption = None,
    url: UrlOption = None,
) -> None:
    """Apply pending schema migrations to the store (workers and enqueues also do it)."""
    found = resolve_app(app, url)
    if print_sql:
        sys.stdout.write(open_backend(found.url).migration_sql().rstrip() + "\n")
        return
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
