"""Helpers for the worker tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from _polling import DEADLINE as DEADLINE
from _polling import eventually as eventually
from workhorse import JobRecord, JobState, WorkerSettings, Workhorse
from workhorse.worker.store_health import StoreHealth

T = TypeVar("T")

FAST = WorkerSettings(
    concurrency=4,
    lease=1.5,
    heartbeat_interval=0.1,
    reclaim_interval=0.1,
    poll_interval=0.5,
    shutdown_grace=5.0,
    cancel_grace=0.3,
    prune_interval=60.0,
    leader_ttl=2.0,
)
"""Short leases and intervals so that the suite stays fast."""


class DropsOneCancellation:
    """A job body that drops the first cancellation it gets, as ``asyncio.wait_for``
    does on Python 3.11 with one that arrives with its result, and ends at the next."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancellations = 0

    async def run(self) -> None:
        self.started.set()
        never = asyncio.Event()
        while True:
            try:
                await never.wait()
            except asyncio.CancelledError:
                self.cancellations += 1
                if self.cancellations > 1:
                    raise


async def job_in_state(
    app: Workhorse, job_id: int, *states: JobState, timeout: float = DEADLINE
) -> JobRecord:
    """The job's record once it is in one of ``states``."""
    return await eventually(
        lambda: app.get_job(job_id),
        lambda record: record.state in states,
        timeout=timeout,
        what=f"job {job_id} in {', '.join(states)}",
    )


async def wait_event(event: asyncio.Event, timeout: float = DEADLINE) -> None:
    """Wait for ``event``, failing the test after ``timeout``."""
    await asyncio.wait_for(event.wait(), timeout)


async def through_an_outage(
    app: Workhorse,
    *,
    begin: Callable[[], Awaitable[None]],
    end: Callable[[], Awaitable[None]],
    failures: int,
) -> StoreHealth:
    """Run one job on a worker of ``app`` that ends while the store is away: ``begin``
    takes the store away once the job runs, ``end`` brings it back once the worker's
    calls failed ``failures`` times. Returns the worker's store health once the store is
    back and the job's outcome is stored."""
    gate = asyncio.Event()

    @app.task
    async def waits() -> str:
        await gate.wait()
        return "done"

    try:
        # A long lease: the outage must not stop the running job.
        async with app.worker(lease=60) as worker:
            health = worker.health
            assert health is not None
            job = await waits.enqueue()
            await job_in_state(app, job.id, JobState.RUNNING)
            await begin()
            try:
                gate.set()  # the job ends: its outcome waits for the store
                await eventually(
                    lambda: _now(health.failures),
                    lambda seen: health.down and seen >= failures,
                    what="several failed calls",
                )
            finally:
                await end()
            assert await job.result(timeout=20) == "done"
            await eventually(lambda: _now(health.down), lambda down: not down)
    finally:
        await app.aclose()
    return health


async def _now(value: T) -> T:
    return value
