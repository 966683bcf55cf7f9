"""What every command prints with: the two consoles, state colours, ages and durations,
and JSON for ``--json``."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

import orjson
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from workhorse.jobs import JobState

console = Console(highlight=False, markup=False)
"""Standard output: tables, records, ids. No markup: what it prints comes from the store
(task names, queues, messages) and must show as is; styles go through ``Text``."""
err_console = Console(stderr=True, highlight=False)
"""Standard error: errors, warnings and notes, so stdout stays parseable."""

STATE_STYLES: dict[JobState, str] = {
    JobState.SCHEDULED: "blue",
    JobState.QUEUED: "cyan",
    JobState.BLOCKED: "bright_black",
    JobState.RUNNING: "yellow",
    JobState.COMPLETED: "green",
    JobState.FAILED: "red",
    JobState.CANCELLED: "magenta",
}

STATE_ORDER: tuple[JobState, ...] = (
    JobState.SCHEDULED,
    JobState.QUEUED,
    JobState.BLOCKED,
    JobState.RUNNING,
    JobState.COMPLETED,
    JobState.FAILED,
    JobState.CANCELLED,
)
"""States in the order a job moves through them, for columns and bars."""


def state_text(state: JobState | str) -> Text:
    """A job state in its colour."""
    value = JobState(state)
    return Text(value.value, style=STATE_STYLES[value])


def error_line(message: str) -> None:
    """Print one red error line on stderr (never wrapped, so it stays one line)."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)


def note(message: str) -> None:
    """Print a dim note on stderr."""
    err_console.print(f"[dim]{escape(message)}[/]", soft_wrap=True)


def warn(message: str) -> None:
    """Print a yellow warning on stderr."""
    err_console.print(f"[yellow]{escape(message)}[/]", soft_wrap=True)


def duration(seconds: float | None) -> str:
    """``0.34`` -> ``340ms``, ``75`` -> ``1m15s``, ``None`` -> ``-``."""
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    return f"{hours // 24}d{hours % 24:02d}h"


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """How long ago ``moment`` was (``in 5.0s`` for a future one)."""
    if moment is None:
        return "-"
    delta = ((now or datetime.now(UTC)) - moment).total_seconds()
    if delta < 0:
        return f"in {duration(-delta)}"
    return f"{duration(delta)} ago"


def timestamp(moment: datetime | None) -> str:
    """A UTC timestamp to the millisecond, with how long ago it was."""
    if moment is None:
        return "-"
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S.%f}"[:-3] + f" UTC ({ago(moment)})"


def print_json(value: Any) -> None:
    """Write ``value`` as indented JSON on stdout (dataclasses, datetimes, enums included)."""
    sys.stdout.write(
        orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n"
    )
    sys.stdout.flush()
