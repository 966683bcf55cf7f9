"""Finding the user's app (``module:attribute``) or store (``--url``), the options that
pick them, and running a command's coroutine against them."""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, NoReturn, TypeVar

import typer

from workhorse.app import Workhorse
from workhorse.backends import DEFAULT_URL
from workhorse.cli._errors import CliError
from workhorse.cli._reachable import ensure_reachable

T = TypeVar("T")

APP_ENV = "WORKHORSE_APP"
URL_ENV = "WORKHORSE_URL"

AppOption = Annotated[
    str | None,
    typer.Option(
        "--app",
        "-A",
        envvar=APP_ENV,
        metavar="MODULE:ATTR",
        help="Your Workhorse app, e.g. myproject.jobs:app (its store and tasks).",
        show_default=False,
    ),
]
UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        metavar="URL",
        help=(f"Store URL; overrides the app's. Default: ${URL_ENV}, else {DEFAULT_URL}."),
        show_default=False,
    ),
]


def load_app(spec: str) -> Workhorse:
    """Import ``module:attribute`` (the current directory is on the path) and check that it
    is a :class:`Workhorse` app. Every way this can go wrong is a one-line ``CliError``."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise CliError(
            f"APP must look like module:attribute (e.g. myproject.jobs:app), got {spec!r}"
        )
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name + ".").startswith(exc.name + "."):
            raise CliError(
                f"cannot import {module_name!r} from {spec!r}: no module named {exc.name!r} "
                "(run from your project's folder, or check the name)"
            ) from exc
        raise CliError(f"importing {module_name!r} failed: {exc}") from exc
    except Exception as exc:
        raise CliError(f"importing {module_name!r} failed: {type(exc).__name__}: {exc}") from exc
    found: object = module
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise CliError(f"module {module_name!r} has no attribute {attribute!r}") from None
    if not isinstance(found, Workhorse):
        raise CliError(
            f"{spec!r} is {type(found).__name__!r}, not a Workhorse app "
            "(point it at the object made by Workhorse(...))"
        )
    return found


def resolve_app(app: str | None, url: str | None) -> Workhorse:
    """The app named by ``--app`` (or ``$WORKHORSE_APP``), its store switched to ``--url``
    when both are given; else a task-less app on ``--url``, ``$WORKHORSE_URL`` or the
    default store."""
    if app:
        found = load_app(app)
        if url:
            found.url = url
        return found
    return Workhorse(url)


def require_app(app: str | None, url: str | None, *, why: str) -> Workhorse:
    """Like :func:`resolve_app`, but the app itself is needed (for its tasks)."""
    if not app:
        raise CliError(f"{why} needs your app: pass --app module:attribute (or set {APP_ENV})")
    return resolve_app(app, url)


def run(app: Workhorse, work: Callable[[Workhorse], Awaitable[T]], *, existing: bool = False) -> T:
    """Run ``work(app)`` on a fresh event loop and close the app's store afterwards; an
    unreachable store fails at once, with its reason. With ``existing`` (commands that
    look into the store, which must not create one by accident: a typo in a path or a
    schema name would otherwise report "no jobs" instead of the mistake), a store that
    is not there yet is an error naming what is missing, and nothing is created."""
    return _run(app, work, _refuse_absent if existing else None)


def run_if_present(
    app: Workhorse, work: Callable[[Workhorse], Awaitable[T]], otherwise: Callable[[], T]
) -> T:
    """Like :func:`run`, but a store that is not there yet answers ``otherwise()``
    (nothing is created)."""
    return _run(app, work, lambda _: otherwise())


def _run(
    app: Workhorse,
    work: Callable[[Workhorse], Awaitable[T]],
    absent: Callable[[str], T] | None,
) -> T:
    async def main() -> T:
        absence = await ensure_reachable(app)
        try:
            if absence is not None and absent is not None:
                return absent(absence)
            return await work(app)
        finally:
            await app.aclose()

    return asyncio.run(main())


def _refuse_absent(absence: str) -> NoReturn:
    raise CliError(
        f"no workhorse store: {absence}, nothing was enqueued there yet "
        f"(pick the store with --url or --app, or set {URL_ENV})"
    )
