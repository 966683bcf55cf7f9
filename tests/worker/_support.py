"""Helpers for the worker tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from workhorse import JobRecord, JobState, WorkerSettings, Workhorse

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

DEADLINE = 10.0


async def eventually(
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool],
    *,
    timeout: float = DEADLINE,
    what: str = "condition",
) -> T:
    """Call ``probe`` until ``accept`` holds for its value; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        value = await probe()
        if accept(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s; last value: {value!r}")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)


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
