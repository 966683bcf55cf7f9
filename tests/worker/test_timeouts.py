"""Timeouts of each kind of task: an async task is cancelled; a sync or process task's
attempt ends at the timeout and frees its slot while the call runs on, its late result
discarded."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest

from workhorse import Backoff, JobState, Retry, Workhorse, current_job

from . import _process_tasks
from ._support import DropsOneCancellation, job_in_state, wait_event


async def test_an_async_task_is_cancelled_at_its_timeout(local_app: Workhorse) -> None:
    app = local_app
    cancelled = asyncio.Event()

    @app.task(timeout=0.2, retry=1)
    async def sleepy() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with app.worker():
        t0 = time.monotonic()
        job = await sleepy.enqueue()
        record = await job_in_state(app, job.id, JobState.FAILED)
        assert time.monotonic() - t0 < 3
    assert cancelled.is_set()
    assert record.error is not None
    assert record.error.type == "JobTimeoutError"
    assert "0.2" in record.error.message


async def test_an_async_task_that_drops_the_timeouts_cancellation_is_cancelled_again(
    local_app: Workhorse,
) -> None:
    # On Python 3.11 asyncio.wait_for (psycopg_pool's wait for a connection among its
    # users) drops a cancellation that arrives with its result: the job awaits on.
    app = local_app
    body = DropsOneCancellation()
    stubborn = app.task(name="stubborn", timeout=0.2, retry=1)(body.run)
    async with app.worker():
        job = await stubborn.enqueue()
        record = await job_in_state(app, job.id, JobState.FAILED)
    assert body.cancellations == 2
    assert record.error is not None
    assert record.error.type == "JobTimeoutError"  # not a stop by the worker


async def test_a_timeout_is_retried_like_any_error(local_app: Workhorse) -> None:
    app = local_app

    @app.task(timeout=0.05, retry=Retry(max_attempts=2, backoff=Backoff(base=0.01)))
    async def sleepy() -> None:
        await asyncio.sleep(30)

    async with app.worker():
        job = await sleepy.enqueue()
        record = await job_in_state(app, job.id, JobState.FAILED)
    assert record.attempt == 2


async def test_a_timeout_set_at_enqueue_wins(local_app: Workhorse) -> None:
    app = local_app

    @app.task(timeout=60, retry=1)
    async def sleepy() -> None:
        await asyncio.sleep(30)

    async with app.worker():
        job = await sleepy.options(timeout=0.1).enqueue()
        record = await job_in_state(app, job.id, JobState.FAILED)
    assert record.error is not None
    assert record.error.type == "JobTimeoutError"


async def test_a_sync_task_times_out_runs_on_and_its_result_is_discarded(
    sqlite_app: Workhorse,
) -> None:
    app = sqlite_app
    release = threading.Event()
    returned = threading.Event()
    saw_cancel: list[bool] = []

    @app.task(timeout=0.2, retry=1)
    def stubborn() -> str:
        release.wait(30)
        saw_cancel.append(current_job().cancelled)
        returned.set()
        return "too late"

    after = asyncio.Event()

    @app.task
    async def next_one() -> None:
        after.set()

    async with app.worker(concurrency=1):
        job = await stubborn.enqueue()
        record = await job_in_state(app, job.id, JobState.FAILED)
        assert record.error is not None
        assert record.error.type == "JobTimeoutError"
        # The slot is free again although the thread still runs.
        await next_one.enqueue()
        await wait_event(after)
        assert not returned.is_set()
        release.set()
        await asyncio.to_thread(returned.wait, 10)
    assert saw_cancel == [True], "the abandoned call sees ctx.cancelled"
    record = await job.refresh()
    assert record.state is JobState.FAILED
    assert record.result is None, "the late result was discarded"


async def test_a_process_task_times_out_and_frees_its_slot(sqlite_app: Workhorse) -> None:
    app = sqlite_app
    nap = app.task(executor="process", timeout=1.0, retry=1)(_process_tasks.nap)
    square = app.task(executor="process")(_process_tasks.square)
    async with app.worker(concurrency=1, processes=2):
        warm = await square.enqueue(2)  # the pool's first use spawns it
        assert (await warm.result(timeout=30))["square"] == 4
        t0 = time.monotonic()
        job = await nap.enqueue(30)
        record = await job_in_state(app, job.id, JobState.FAILED)
        assert time.monotonic() - t0 < 10
        assert record.error is not None
        assert record.error.type == "JobTimeoutError"
        again = await square.enqueue(3)
        assert (await again.result(timeout=30))["square"] == 9
    # Stopping terminated the child still napping: the test does not wait 30s.


async def test_calls_abandoned_at_their_timeout_never_use_up_the_thread_pool(
    sqlite_app: Workhorse, caplog: pytest.LogCaptureFixture
) -> None:
    app = sqlite_app
    release = threading.Event()
    hung = 0

    @app.task(timeout=0.2, retry=1)
    def stuck() -> None:
        nonlocal hung
        hung += 1
        release.wait(30)

    @app.task(timeout=5)
    def trivial() -> str:
        return "ran"

    # concurrency 2: a pool of 6 threads; 7 abandoned calls hold more than that.
    try:
        with caplog.at_level(logging.WARNING, logger="workhorse.worker"):
            async with app.worker(concurrency=2):
                jobs = [await stuck.enqueue() for _ in range(7)]
                for job in jobs:
                    record = await job_in_state(app, job.id, JobState.FAILED)
                    assert record.error is not None
                    assert record.error.type == "JobTimeoutError"
                assert await (await trivial.enqueue()).result(timeout=10) == "ran"
                assert hung == 7, "each stuck call ran, and still runs"
    finally:
        release.set()
    abandoned = [
        r.getMessage() for r in caplog.records if "still runs in its thread" in r.getMessage()
    ]
    assert len(abandoned) == 7, "one warning per abandoned call"
    assert "grows to 13 threads" in abandoned[-1]


async def test_the_timeout_starts_when_the_call_gets_a_thread(sqlite_app: Workhorse) -> None:
    app = sqlite_app

    @app.task(timeout=0.9, retry=1)
    def half_a_second() -> str:
        time.sleep(0.5)
        return "done"

    # One thread for two slots: the second call waits 0.5 s for it, then runs 0.5 s,
    # within its timeout only if the wait does not count.
    async with app.worker(concurrency=2, threads=1):
        jobs = [await half_a_second.enqueue() for _ in range(3)]
        for job in jobs:
            assert await job.result(timeout=10) == "done"


async def test_a_process_call_abandoned_at_its_timeout_has_its_child_terminated(
    sqlite_app: Workhorse,
) -> None:
    app = sqlite_app
    nap = app.task(executor="process", timeout=0.5, retry=1)(_process_tasks.nap)
    square = app.task(executor="process", timeout=20)(_process_tasks.square)
    # One child, and more calls that hang than there are children.
    async with app.worker(concurrency=2, processes=1):
        naps = [await nap.enqueue(60) for _ in range(2)]
        for job in naps:
            record = await job_in_state(app, job.id, JobState.FAILED, timeout=30)
            assert record.error is not None
            assert record.error.type == "JobTimeoutError"
        # A fresh child runs it: the napping ones were terminated, not left to nap for
        # a minute with the only slot.
        after = await square.enqueue(7)
        assert (await after.result(timeout=30))["square"] == 49
