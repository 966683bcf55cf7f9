"""``workhorse schedules``: the periodic jobs of an app, their next run and last tick."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from workhorse.cli._app import AppOption, UrlOption, require_app, run_if_present
from workhorse.cli._output import ago, console, note, print_json
from workhorse.scheduling.overview import ScheduleInfo, schedule_infos, schedule_overview


def schedules_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    app: AppOption = None,
    url: UrlOption = None,
) -> None:
    """Your app's periodic jobs: trigger, next run, and the last tick enqueued."""
    found = require_app(app, url, why="listing schedules")
    # No store yet: nothing was enqueued, and listing schedules creates none.
    infos = run_if_present(found, schedule_overview, lambda: schedule_infos(found, {}))
    if as_json:
        print_json(infos)
        return
    if not infos:
        note("no schedules: add one with @app.periodic(...) or app.schedule(...)")
        return
    console.print(schedules_table(infos))


def schedules_table(infos: list[ScheduleInfo]) -> Table:
    """One row per schedule."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("NAME", "TASK", "QUEUE", "TRIGGER", "NEXT RUN", "LAST TICK", "LAST JOB"):
        table.add_column(column)
    for info in infos:
        next_run = "never" if info.next_run_at is None else _when(info)
        table.add_row(
            info.name,
            info.task,
            info.queue,
            info.trigger,
            next_run,
            ago(info.last_tick_at),
            "-" if info.last_job_id is None else str(info.last_job_id),
        )
    return table


def _when(info: ScheduleInfo) -> str:
    assert info.next_run_at is not None
    return f"{info.next_run_at:%Y-%m-%d %H:%M:%S} UTC ({ago(info.next_run_at)})"
