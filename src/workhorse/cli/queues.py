"""``workhorse queues``: how many jobs wait, run and ended, per queue."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from workhorse.backends.base import QueueStats
from workhorse.cli._app import AppOption, UrlOption, resolve_app, run
from workhorse.cli._output import STATE_ORDER, STATE_STYLES, console, duration, note, print_json
from workhorse.jobs import JobState


def queues_command(
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant's jobs.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    app: AppOption = None,
    url: UrlOption = None,
) -> None:
    """Jobs per state in every queue, and how long the oldest queued job has waited."""
    found = resolve_app(app, url)
    stats = run(found, lambda wh: wh.queue_stats(tenant=tenant), existing=True)
    if as_json:
        print_json(stats)
        return
    if not stats:
        note("no jobs in any queue")
        return
    console.print(queues_table(stats))


def queues_table(stats: list[QueueStats]) -> Table:
    """One row per queue, one column per state, and how long the oldest queued job has
    waited (OLDEST)."""
    now = datetime.now(UTC)
    # Blocked jobs only exist with workflows: no column for them until there are some.
    states = [
        state
        for state in STATE_ORDER
        if state is not JobState.BLOCKED or any(row.counts.get(state) for row in stats)
    ]
    table = Table(box=None, header_style="bold", pad_edge=False, collapse_padding=True)
    table.add_column("QUEUE")
    for state in states:
        table.add_column(state.value.upper(), justify="right", style=STATE_STYLES[state])
    table.add_column("OLDEST", justify="right")
    for row in sorted(stats, key=lambda s: s.queue):
        cells = [_count(row.counts.get(state, 0)) for state in states]
        oldest = row.oldest_queued_at
        wait = duration((now - oldest).total_seconds()) if oldest is not None else "-"
        table.add_row(row.queue, *cells, wait)
    return table


def _count(value: int) -> Text:
    return Text(str(value)) if value else Text("0", style="dim")
