"""Cancellation: queued jobs at once, running jobs cooperatively and then by force."""

from __future__ import annotations

import asyncio
import threading
import time

from workhorse import Cancelled, JobRecord, JobState, Task, Workhorse, current_job

from . import _process_tasks
from ._support import DropsOneCancellation, job_in_state, wait_event


async def test_a_queued_job_is_cancelled_at_once(app: Workhorse) -> None:
    ran = False

    @app.task
    async def never() -> None:
        nonlocal ran
        ran = True

    job = await never.options(delay=0.3).enqueue()
    async with app.worker():
        record = await job.cancel()
        assert record.state is JobState.CANCELLED
        follow = await never.enqueue()
        await job_in_state(app, follow.id, JobState.COMPLETED)
    assert (await job.refresh()).state is JobState.CANCELLED
    assert (await job.refresh()).attempt == 0


async def test_an_async_task_cancels_cooperatively(app: Workhorse) -> None:
    started = asyncio.Event()

    @app.task
    async def polite() -> None:
        started.set()
        await current_job().wait_cancelled()
        current_job().raise_if_cancelled()

    async with app.worker(cancel_grace=30.0) as worker:
        job = await polite.enqueue()
        await wait_event(started)
        t0 = time.monotonic()
        await job.cancel()
        record = await job_in_state(app, job.id, JobState.CANCELLED)
        assert time.monotonic() - t0 < 5, "well before the 30s grace"
    assert record.error is not None
    assert record.error.type == "Cancelled"
    assert worker.stats.cancelled == 1


async def test_a_sync_task_cancels_cooperatively(app: Workhorse) -> None:
    started = threading.Event()

    @app.task
    def polite() -> None:
        ctx = current_job()
        started.set()
        deadline = time.monotonic() + 30
        while not ctx.cancelled and time.monotonic() < deadline:
            time.sleep(0.01)
        if ctx.cancelled:
            raise Cancelled("stopping as asked")

    async with app.worker(cancel_grace=30.0):
        job = await polite.enqueue()
        await asyncio.to_thread(started.wait, 10)
        await job.cancel()
        record = await job_in_state(app, job.id, JobState.CANCELLED)
    assert record.error is not None
    assert record.error.message == "stopping as asked"


async def test_an_async_task_that_ignores_the_request_is_cancelled_after_the_grace(
    app: Workhorse,
) -> None:
    started = asyncio.Event()
    interrupted = asyncio.Event()

    @app.task
    async def deaf() -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            interrupted.set()
            raise

    await _cancelled_after_the_grace(app, deaf, started)
    assert interrupted.is_set()


async def test_an_async_task_that_drops_the_first_cancellation_is_cancelled_again(
    app: Workhorse,
) -> None:
    # On Python 3.11 asyncio.wait_for (psycopg_pool's wait for a connection among its
    # users) drops a cancellation that arrives with its result: the job awaits on.
    body = DropsOneCancellation()
    stubborn = app.task(name="stubborn")(body.run)
    await _cancelled_after_the_grace(app, stubborn, body.started)
    assert body.cancellations == 2


async def _cancelled_after_the_grace(
    app: Workhorse, task: Task[[], None], started: asyncio.Event
) -> JobRecord:
    """Run ``task``, ask to cancel it once ``started`` is set, and check that the worker
    stopped it after its cancel grace (0.2 s)."""
    async with app.worker(cancel_grace=0.2):
        job = await task.enqueue()
        await wait_event(started)
        await job.cancel()
        record = await job_in_state(app, job.id, JobState.CANCELLED)
    assert record.error is not None
    assert "cancel grace" in record.error.message
    return record


async def test_a_sync_task_that_ignores_the_request_is_abandoned_after_the_grace(
    app: Workhorse,
) -> None:
    started = threading.Event()
    gate = threading.Event()
    after = asyncio.Event()

    @app.task
    def deaf() -> str:
        started.set()
        gate.wait(30)
        return "ignored"

    @app.task
    async def next_one() -> None:
        after.set()

    async with app.worker(concurrency=1, cancel_grace=0.2):
        job = await deaf.enqueue()
        await asyncio.to_thread(started.wait, 10)
        await job.cancel()
        record = await job_in_state(app, job.id, JobState.CANCELLED)
        await next_one.enqueue()
        await wait_event(after)  # the slot was freed
        gate.set()
    assert record.result is None


async def test_a_process_task_that_ignores_the_request_has_its_child_terminated(
    sqlite_app: Workhorse,
) -> None:
    app = sqlite_app
    nap = app.task(executor="process")(_process_tasks.nap)
    square = app.task(executor="process")(_process_tasks.square)
    async with app.worker(concurrency=1, processes=1, cancel_grace=0.2):
        first = await square.enqueue(2)  # spawns the only child
        child = (await first.result(timeout=30))["pid"]
        job = await nap.enqueue(60)
        await job_in_state(app, job.id, JobState.RUNNING)
        await job.cancel()
        record = await job_in_state(app, job.id, JobState.CANCELLED)
        # The slot is back at once, in a fresh child: the napping one was terminated.
        after = await square.enqueue(3)
        result = await after.result(timeout=30)
    assert result["square"] == 9
    assert result["pid"] != child
    assert record.error is not None
    assert "cancel grace" in record.error.message
