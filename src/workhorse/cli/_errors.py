"""How the CLI fails: one clear line on stderr and an exit code, never a traceback for a
mistake the user can fix (``--debug`` shows it anyway)."""

from __future__ import annotations

import sys
import traceback

from workhorse.cli._output import error_line
from workhorse.errors import (
    BackendUnavailableError,
    ConfigurationError,
    CorruptJobError,
    JobNotFoundError,
    JobStateError,
    MissingDependencyError,
    SerializationError,
    UnknownTaskError,
)

USAGE = 2
"""Exit code for a mistake in the command line, the app, the input or the store."""
FAILURE = 1
"""Exit code for something that went wrong at run time."""


class CliError(Exception):
    """A user mistake the CLI explains in one line (exit code 2 unless told otherwise)."""

    def __init__(self, message: str, *, exit_code: int = USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


_USER_ERRORS: tuple[type[BaseException], ...] = (
    ConfigurationError,
    CorruptJobError,
    UnknownTaskError,
    JobNotFoundError,
    JobStateError,
    SerializationError,
    BackendUnavailableError,
    MissingDependencyError,
)


def _parser_error(exc: BaseException) -> tuple[str, int] | None:
    """Message and exit code of an error raised by the CLI library while parsing (a
    missing argument, a bad option value); None for any other error. Duck-typed: typer
    raises its own copy of click's exceptions, older typers raise click's."""
    format_message = getattr(exc, "format_message", None)
    exit_code = getattr(exc, "exit_code", None)
    if not callable(format_message) or not isinstance(exit_code, int):
        return None
    message = str(format_message())
    ctx = getattr(exc, "ctx", None)
    if exit_code == USAGE and ctx is not None:
        message += f" (see '{ctx.command_path} --help')"
    return message, exit_code


def report(exc: BaseException, *, debug: bool) -> int:
    """Print ``exc`` the way a CLI user should see it and return the exit code."""
    parser_error = _parser_error(exc)
    if parser_error is not None:
        error_line(parser_error[0])
        return parser_error[1]
    if debug:
        sys.stderr.write("".join(traceback.format_exception(exc)))
        sys.stderr.flush()
    if isinstance(exc, CliError):
        error_line(str(exc))
        return exc.exit_code
    if isinstance(exc, _USER_ERRORS):
        error_line(str(exc))
        return USAGE
    hint = "" if debug else " (run with 'workhorse --debug ...' for the traceback)"
    error_line(f"{type(exc).__name__}: {exc}{hint}")
    return FAILURE
