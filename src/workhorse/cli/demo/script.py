"""The demo's script: enqueue a few hundred mixed jobs, run a worker under a live view,
cancel the long report while it runs, and collect every job for the summary."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.live import Live

from workhorse.app import Workhorse
from workhorse.cli._errors import FAILURE, CliError
from workhorse.cli.demo.display import DemoDisplay
from workhorse.handle import Job
from workhorse.jobs import JobRecord, JobState
from workhorse.tasks import JobSpec

DEADLINE = 50.0
"""Seconds after which the demo gives up waiting (it normally ends in well under 15)."""
CANCEL_AFTER = 1.5
"""Seconds the long report runs before the demo cancels it."""
_REFRESH = 0.1

WORKER_SETTINGS: dict[str, Any] = {
    "lease": 5.0,
    "heartbeat_interval": 0.5,
    "poll_interval": 0.2,
    "reclaim_interval": 0.5,
    "cancel_grace": 2.0,
    "shutdown_grace": 5.0,
}
"""Snappier than the defaults, so that the demo's few seconds show every mechanism."""


@dataclass(frozen=True, slots=True)
class DemoPlan:
    """The jobs to enqueue, and what is special about some of them."""

    specs: list[JobSpec[Any]]
    delayed: int
    urgent: int


@dataclass(frozen=True, slots=True)
class DemoResult:
    """What happened, for the summary."""

    records: list[JobRecord]
    elapsed: float
    plan: DemoPlan
    report_job: int
    report_progress: float | None
    """How far the report was when it was cancelled (None if it never got cancelled)."""
    concurrency: int


def plan_jobs(app: Workhorse, total: int, rng: random.Random) -> DemoPlan:
    """``total`` jobs: one long report, some flaky calls and invalid invoices, the rest
    page fetches (some delayed) and image resizes (some urgent)."""
    tasks = app.tasks
    flaky = max(2, total // 12)
    invalid = max(1, total // 30)
    rest = total - 1 - flaky - invalid
    fetches = rest * 55 // 100
    specs: list[JobSpec[Any]] = [tasks["demo.build_report"].call("quarterly")]
    delayed = urgent = 0
    fetch, resize = tasks["demo.fetch_page"], tasks["demo.resize_image"]
    for n in range(fetches):
        url = f"https://example.com/page/{n}"
        if n % 8 == 7:
            specs.append(fetch.options(delay=rng.uniform(1.0, 3.0)).call(url))
            delayed += 1
        else:
            specs.append(fetch.call(url))
    for n in range(rest - fetches):
        args = (f"photo-{n}.jpg", rng.choice([320, 640, 1280]))
        if n % 5 == 4:
            specs.append(resize.options(priority=10).call(*args))
            urgent += 1
        else:
            specs.append(resize.call(*args))
    specs += [tasks["demo.call_flaky_api"].call(1000 + n) for n in range(flaky)]
    specs += [tasks["demo.import_invoice"].call(2000 + n) for n in range(invalid)]
    head, tail = specs[:1], specs[1:]
    rng.shuffle(tail)
    return DemoPlan(head + tail, delayed, urgent)


async def run_demo(
    app: Workhorse, *, total: int, concurrency: int, console: Console, seed: int = 7
) -> DemoResult:
    """Run the whole demo on ``app`` (its store must be fresh) and return what happened."""
    plan = plan_jobs(app, total, random.Random(seed))
    display = DemoDisplay(
        total=total, title=f"workhorse demo: {total} jobs, 1 worker, concurrency {concurrency}"
    )
    with _worker_logs_to(display), Live(display, console=console, refresh_per_second=10):
        jobs = await app.enqueue_many(plan.specs)
        display.event(
            f"enqueued {total} jobs in one write ({plan.delayed} delayed, {plan.urgent} urgent)"
        )
        report = jobs[0]
        async with app.worker(concurrency=concurrency, **WORKER_SETTINGS):
            display.event("worker started: async tasks on its loop, sync ones in threads")
            progress_at_cancel = await _watch(app, display, report)
            display.event("all jobs finished: the worker drains and stops")
        elapsed = display.elapsed
    records = await _all_jobs(app)
    return DemoResult(records, elapsed, plan, report.id, progress_at_cancel, concurrency)


async def _watch(app: Workhorse, display: DemoDisplay, report: Job[Any]) -> float | None:
    """Refresh the view until no job is live; cancel the report once it has run a while.
    Returns the report's progress when it was cancelled."""
    cancelled_at: float | None = None
    report_started: float | None = None
    while True:
        stats = await app.queue_stats()
        running = await app.list_jobs(states=[JobState.RUNNING], limit=6)
        display.update(stats, running)
        if cancelled_at is None:
            record = await app.get_job(report.id)
            if record.state is JobState.RUNNING and report_started is None:
                report_started = time.monotonic()
            if report_started is not None and time.monotonic() - report_started > CANCEL_AFTER:
                record = await app.cancel(report.id)
                cancelled_at = record.progress
                display.event(
                    f"cancelling job {report.id} ({record.task}) at {record.progress:.0f}%: "
                    "the task sees it and stops",
                    style="magenta",
                )
        if display.live == 0:
            return cancelled_at
        if display.elapsed > DEADLINE:
            raise CliError(
                f"the demo did not finish within {DEADLINE:g}s ({display.live} jobs left)",
                exit_code=FAILURE,
            )
        await asyncio.sleep(_REFRESH)


async def _all_jobs(app: Workhorse) -> list[JobRecord]:
    records: list[JobRecord] = []
    before: int | None = None
    while True:
        page = await app.list_jobs(limit=1_000, before_id=before)
        records += page
        if len(page) < 1_000:
            return records
        before = page[-1].id


class _ToDisplay(logging.Handler):
    def __init__(self, display: DemoDisplay) -> None:
        super().__init__(logging.WARNING)
        self.display = display

    def emit(self, record: logging.LogRecord) -> None:
        style = "red" if record.levelno >= logging.ERROR else "yellow"
        self.display.log(record.getMessage().splitlines()[0], style=style)


@contextmanager
def _worker_logs_to(display: DemoDisplay) -> Iterator[None]:
    """Show workhorse's warnings (expected here: failing demo jobs) in the live view
    instead of letting them scroll it away."""
    log = logging.getLogger("workhorse")
    handler = _ToDisplay(display)
    saved = log.propagate
    log.addHandler(handler)
    log.propagate = False
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.propagate = saved
