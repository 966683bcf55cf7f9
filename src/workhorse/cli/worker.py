"""``workhorse worker``: start a worker process, see which workers live, stop them."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from workhorse.app import Workhorse
from workhorse.backends.base import WorkerRecord
from workhorse.cli._app import AppOption, UrlOption, resolve_app, run
from workhorse.cli._errors import FAILURE, CliError
from workhorse.cli._output import ago, console, err_console, note, print_json
from workhorse.cli.worker_start import start
from workhorse.jobs import JobRecord, JobState

worker_app = typer.Typer(
    name="worker",
    help="Run a worker, see which workers live, stop them gracefully.",
    no_args_is_help=True,
)
worker_app.command("start")(start)

_JOBS_SHOWN = 4


@dataclass(frozen=True, slots=True)
class _Overview:
    workers: list[WorkerRecord]
    running: dict[str, list[JobRecord]]
    stale_after: float


def _is_stale(worker: WorkerRecord, stale_after: float, now: datetime) -> bool:
    """No heartbeat for a whole lease: the worker most likely died (its jobs come back
    when their leases are reclaimed)."""
    return (now - worker.heartbeat_at).total_seconds() > stale_after


async def _overview(wh: Workhorse) -> _Overview:
    store = await wh.backend()
    workers = await store.worker_list()
    running = await wh.list_jobs(states=[JobState.RUNNING], limit=10_000)
    by_worker: dict[str, list[JobRecord]] = {}
    for record in running:
        if record.worker_id is not None:
            by_worker.setdefault(record.worker_id, []).append(record)
    return _Overview(workers, by_worker, max(wh.settings.lease, 3 * wh.settings.heartbeat_interval))


@worker_app.command("status")
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    app: AppOption = None,
    url: UrlOption = None,
) -> None:
    """Workers registered in the store, their heartbeats and the jobs they run."""
    found = resolve_app(app, url)
    overview = run(found, _overview, existing=True)
    if as_json:
        now = datetime.now(UTC)
        print_json(
            [
                {
                    "worker": worker,
                    "stale": _is_stale(worker, overview.stale_after, now),
                    "jobs": [job.id for job in overview.running.get(worker.id, [])],
                }
                for worker in overview.workers
            ]
        )
        return
    if not overview.workers:
        note("no workers are registered in this store")
        return
    console.print(_workers_table(overview))


def _workers_table(overview: _Overview) -> Table:
    now = datetime.now(UTC)
    table = Table(box=None, header_style="bold", pad_edge=False)
    for name in ("WORKER", "HOST", "PID", "QUEUES", "SLOTS", "STARTED", "HEARTBEAT", "STATE"):
        table.add_column(name, justify="right" if name in {"PID", "SLOTS"} else "left")
    table.add_column("JOBS", overflow="fold")
    for worker in overview.workers:
        jobs = overview.running.get(worker.id, [])
        if _is_stale(worker, overview.stale_after, now):
            state = Text("stale (dead?)", style="red")
        elif worker.stop_requested:
            state = Text("stopping", style="yellow")
        else:
            state = Text("live", style="green")
        shown = ", ".join(f"{job.id} {job.task} {job.progress:.0f}%" for job in jobs[:_JOBS_SHOWN])
        if len(jobs) > _JOBS_SHOWN:
            shown += f", +{len(jobs) - _JOBS_SHOWN} more"
        table.add_row(
            worker.id,
            worker.hostname,
            str(worker.pid),
            ",".join(worker.queues) if worker.queues else "all",
            f"{len(jobs)}/{worker.concurrency}",
            ago(worker.started_at, now),
            ago(worker.heartbeat_at, now),
            state,
            shown or "-",
        )
    return table


@worker_app.command("stop")
def stop(
    worker_id: Annotated[
        str | None, typer.Option("--id", metavar="ID", help="The worker to stop.")
    ] = None,
    all_workers: Annotated[bool, typer.Option("--all", help="Stop every worker.")] = False,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait until the workers have drained and exited.")
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0, metavar="SECONDS", help="Longest --wait.")
    ] = 120.0,
    app: AppOption = None,
    url: UrlOption = None,
) -> None:
    """Ask workers to stop gracefully, through the store: they stop claiming, let running
    jobs finish within their shutdown grace, release the rest and exit."""
    if all_workers == (worker_id is not None):  # neither, or both
        raise CliError(
            "say which workers to stop: --id ID (see 'workhorse worker status') or --all"
        )
    found = resolve_app(app, url)

    async def request(wh: Workhorse) -> bool:
        store = await wh.backend()
        before = await _overview(wh)
        now = datetime.now(UTC)
        targets = {
            w.id
            for w in before.workers
            if (worker_id is None or w.id == worker_id)
            and not _is_stale(w, before.stale_after, now)
        }
        asked = await store.worker_request_stop(worker_id=worker_id)
        if asked == 0:
            if worker_id is not None:
                raise CliError(f"no worker with id {worker_id!r} (see 'workhorse worker status')")
            note("no workers are registered: nothing to stop")
            return True
        console.print(f"asked {asked} worker(s) to stop; they drain their running jobs first")
        return not wait or await _wait_gone(wh, targets, timeout)

    if not run(found, request, existing=True):
        raise CliError(f"workers still running after {timeout:g}s", exit_code=FAILURE)


async def _wait_gone(wh: Workhorse, targets: set[str], timeout: float) -> bool:
    """Poll until none of ``targets`` is registered; False on timeout."""
    store = await wh.backend()
    deadline = time.monotonic() + timeout
    with err_console.status("waiting for the workers to drain and exit..."):
        while True:
            left = targets & {w.id for w in await store.worker_list()}
            if not left:
                console.print("all stopped")
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.2)
