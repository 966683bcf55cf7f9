"""``workhorse jobs``: list, show, cancel, retry and purge jobs in the store."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from workhorse import serialization
from workhorse.app import Workhorse
from workhorse.backends.base import Backend, Dependency, JobFilter
from workhorse.cli._app import AppOption, UrlOption, resolve_app, run
from workhorse.cli._errors import CliError
from workhorse.cli._output import (
    ago,
    console,
    duration,
    err_console,
    note,
    print_json,
    state_text,
    timestamp,
)
from workhorse.cli.workflows import dependencies_of, job_fields
from workhorse.jobs import FINAL_STATES, JobRecord, JobState

jobs_app = typer.Typer(
    name="jobs",
    help="List, inspect, cancel, retry and purge jobs.",
    no_args_is_help=True,
)

StateOption = Annotated[
    list[str] | None,
    typer.Option(
        "--state",
        "-s",
        metavar="STATE",
        help="Only jobs in this state (repeat or comma-separate: -s failed,cancelled).",
        show_default=False,
    ),
]
QueueOption = Annotated[str | None, typer.Option("--queue", "-q", help="Only this queue.")]
TaskOption = Annotated[str | None, typer.Option("--task", "-t", help="Only this task name.")]
TenantOption = Annotated[str | None, typer.Option("--tenant", help="Only this tenant's jobs.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
JobIdArgument = Annotated[int, typer.Argument(metavar="ID", help="The job's id.", min=1)]

_PURGE_BATCH = 2_000


def parse_states(values: list[str] | None) -> tuple[JobState, ...] | None:
    """``["failed,cancelled", "queued"]`` -> the three states; None when none given."""
    if not values:
        return None
    names = [name.strip().lower() for value in values for name in value.split(",") if name.strip()]
    states: list[JobState] = []
    for name in names:
        try:
            states.append(JobState(name))
        except ValueError:
            known = ", ".join(state.value for state in JobState)
            raise CliError(f"unknown state {name!r} (states: {known})") from None
    return tuple(dict.fromkeys(states))


@jobs_app.command("list")
def list_jobs(
    state: StateOption = None,
    queue: QueueOption = None,
    task: TaskOption = None,
    tenant: TenantOption = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=10_000, help="How many jobs to show.")
    ] = 50,
    before_id: Annotated[
        int | None,
        typer.Option("--before-id", metavar="ID", help="Next page: only jobs older than ID."),
    ] = None,
    as_json: JsonOption = False,
    app: AppOption = None,
    url: UrlOption = None,
) -> None:
    """List jobs, newest first."""
    states = parse_states(state)
    found = resolve_app(app, url)
    records = run(
        found,
        lambda wh: wh.list_jobs(
            states=states,
            queue=queue,
            task=task,
            tenant=tenant,
            limit=limit,
            before_id=before_id,
        ),
        existing=True,
    )
    if as_json:
        print_json(records)
        return
    if not records:
        note("no jobs match")
        return
    console.print(_jobs_table(records))
    if len(records) == limit:
        note(f"showing the {limit} newest; next page: --before-id {records[-1].id}")


def _jobs_table(records: list[JobRecord]) -> Table:
    show_tenant = any(record.tenant for record in records)
    table = Table(box=None, header_style="bold", pad_edge=False)
    # On a narrow terminal the note gives way first, so the columns before it stay whole.
    table.add_column("ID", justify="right", no_wrap=True)
    table.add_column("TASK", overflow="fold")
    table.add_column("QUEUE", no_wrap=True)
    table.add_column("STATE", no_wrap=True)
    table.add_column("TRY", justify="right", no_wrap=True)
    table.add_column("PRI", justify="right", no_wrap=True)
    table.add_column("PROG", justify="right", no_wrap=True)
    if show_tenant:
        table.add_column("TENANT", no_wrap=True)
    table.add_column("CREATED", no_wrap=True)
    table.add_column("NOTE", overflow="ellipsis", max_width=48, min_width=8)
    for record in records:
        row: list[RenderableType] = [
            str(record.id),
            record.task,
            record.queue,
            state_text(record.state),
            f"{record.attempt}/{record.max_attempts}",
            str(record.priority),
            f"{record.progress:.0f}%",
        ]
        if show_tenant:
            row.append(record.tenant or "-")
        note = _note(record)
        note.no_wrap, note.overflow = True, "ellipsis"  # one line, cut to what is left
        row += [ago(record.created_at), note]
        table.add_row(*row)
    return table


def _note(record: JobRecord) -> Text:
    """The one thing worth knowing about a job at a glance."""
    if record.error is not None and record.state in {JobState.FAILED, JobState.SCHEDULED}:
        return Text(f"{record.error.type}: {record.error.message}", style="red")
    if record.state is JobState.SCHEDULED:
        return Text(f"runs {ago(record.run_at)}")
    message = record.progress_message or ""
    if record.state is JobState.RUNNING and record.cancel_requested:
        message = f"cancel requested {message}".strip()
    return Text(message)


@jobs_app.command("show")
def show_job(
    job_id: JobIdArgument,
    as_json: JsonOption = False,
    app: AppOption = None,
    url: UrlOption = None,
) -> None:
    """Show every field of one job, with its progress, its workflow and what it waits
    for, and its error traceback."""
    found = resolve_app(app, url)

    async def fetch(wh: Workhorse) -> tuple[JobRecord, list[Dependency]]:
        return await wh.get_job(job_id), await dependencies_of(wh, job_id)

    record, dependencies = run(found, fetch, existing=True)
    if as_json:
        print_json(record)
        return
    console.print(_record_view(record, dependencies))


def _record_view(record: JobRecord, dependencies: list[Dependency]) -> RenderableType:
    fields = Table.grid(padding=(0, 2))
    fields.add_column(style="bold")
    fields.add_column(overflow="fold")

    def add(name: str, value: RenderableType | None) -> None:
        if value is not None and value != "":
            fields.add_row(name, value)

    add("id", str(record.id))
    add("task", record.task)
    add("state", state_text(record.state))
    add("queue", record.queue)
    add("priority", str(record.priority))
    add("attempt", f"{record.attempt} of {record.max_attempts}")
    add("args", serialization.render(record.args))
    add("kwargs", serialization.render(record.kwargs))
    progress = Table.grid(padding=(0, 1))
    progress.add_row(
        ProgressBar(total=100, completed=record.progress, width=30),
        f"{record.progress:.0f}%",
        record.progress_message or "",
    )
    add("progress", progress)
    if record.state is JobState.COMPLETED:
        add("result", serialization.render(record.result))
    if record.error is not None:
        add("error", Text(f"{record.error.type}: {record.error.message}", style="red"))
    add("tenant", record.tenant)
    add("labels", serialization.render(record.labels) if record.labels else None)
    add("unique key", record.unique_key)
    add("timeout", duration(record.timeout) if record.timeout is not None else None)
    add("parent", str(record.parent_id) if record.parent_id is not None else None)
    for name, value in job_fields(record, dependencies):
        add(name, value)
    add("worker", record.worker_id)
    add("cancel requested", "yes" if record.cancel_requested else None)
    add("created", timestamp(record.created_at))
    add("run at", timestamp(record.run_at))
    add("started", timestamp(record.started_at) if record.started_at else None)
    add("finished", timestamp(record.finished_at) if record.finished_at else None)
    if record.started_at and record.finished_at:
        add("ran for", duration((record.finished_at - record.started_at).total_seconds()))
    if record.state is JobState.RUNNING:
        add("lease until", timestamp(record.lease_expires_at))
    add("expires", timestamp(record.expires_at) if record.expires_at else None)
    add("meta", serialization.render(record.meta) if record.meta else None)
    if record.error is None or not record.error.traceback:
        return fields
    trace = Panel(
        Text(record.error.traceback.rstrip(), style="red"),
        title="traceback of the last failed attempt",
        title_align="left",
        border_style="red",
    )
    return Group(fields, trace)


@jobs_app.command("cancel")
def cancel_job(job_id: JobIdArgument, app: AppOption = None, url: UrlOption = None) -> None:
    """Cancel a job: at once if it waits, cooperatively if it runs."""
    found = resolve_app(app, url)

    async def cancel(wh: Workhorse) -> tuple[JobState, JobRecord]:
        before = (await wh.get_job(job_id)).state
        return before, await wh.cancel(job_id)

    before, record = run(found, cancel, existing=True)
    if before is JobState.CANCELLED:
        note(f"job {job_id} was already cancelled")
    elif record.state is JobState.CANCELLED:
        console.print(f"job {job_id} cancelled")
    elif record.state is JobState.RUNNING:
        console.print(
            f"job {job_id} is running: cancellation requested; its worker stops it "
            "(the task can check for it, and it is stopped after the cancel grace)"
        )
    else:
        raise CliError(f"job {job_id} already ended {record.state}: nothing to cancel")


@jobs_app.command("retry")
def retry_job(job_id: JobIdArgument, app: AppOption = None, url: UrlOption = None) -> None:
    """Send a failed or cancelled job back to its queue."""
    found = resolve_app(app, url)
    record = run(found, lambda wh: wh.retry(job_id), existing=True)
    console.print(
        f"job {job_id} is {record.state} again on queue {record.queue!r} "
        f"(attempt {record.attempt + 1} of {record.max_attempts} next)"
    )


@jobs_app.command("purge")
def purge_jobs(
    state: StateOption = None,
    queue: QueueOption = None,
    task: TaskOption = None,
    tenant: TenantOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Really delete them.")] = False,
    app: AppOption = None,
    url: UrlOption = None,
) -> None:
    """Delete finished jobs (completed, failed, cancelled) now, rather than at their TTL."""
    states = parse_states(state) or tuple(s for s in JobState if s in FINAL_STATES)
    live = [s.value for s in states if s not in FINAL_STATES]
    if live:
        raise CliError(
            "purge deletes finished jobs only (completed, failed, cancelled), "
            f"not {', '.join(live)}"
        )
    job_filter = JobFilter(states=states, queue=queue, task=task, tenant=tenant)
    found = resolve_app(app, url)

    async def purge(wh: Workhorse) -> int:
        store = await wh.backend()
        total = await store.job_count(filter=job_filter)
        if total == 0:
            note("no finished jobs match: nothing to delete")
            return 0
        if not yes:
            raise CliError(f"{total} finished jobs match; add --yes to delete them")
        return await _purge_with_progress(store, job_filter, total)

    deleted = run(found, purge, existing=True)
    if deleted:
        console.print(f"deleted {deleted} jobs")


async def _purge_with_progress(store: Backend, job_filter: JobFilter, total: int) -> int:
    """Delete in slices of about ``_PURGE_BATCH`` jobs, newest first, so a big purge shows
    progress and never holds the store's write lock for long."""
    progress = Progress(
        TextColumn("deleting"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )
    deleted = 0
    with progress:
        bar = progress.add_task("purge", total=total)
        while True:
            page = await store.job_list(filter=job_filter, limit=_PURGE_BATCH)
            if len(page) < _PURGE_BATCH:
                deleted += await store.job_purge(filter=job_filter)
                break
            # The slice: every match created since the oldest job of this page. Jobs
            # created together (a bulk enqueue) make a bigger slice, never a smaller one.
            since = dataclasses.replace(job_filter, created_after=page[-1].created_at)
            count = await store.job_purge(filter=since)
            if count == 0:
                count = await store.job_purge(filter=job_filter)
                deleted += count
                break
            deleted += count
            progress.update(bar, completed=deleted)
        progress.update(bar, completed=deleted)
    return deleted
