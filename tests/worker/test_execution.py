"""Running jobs: async, sync and process tasks, priorities, delays, the job context,
progress, and an event loop that sync work never blocks."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from datetime import timedelta

from workhorse import JobContext, JobState, Workhorse, current_job

from . import _process_tasks
from ._support import DEADLINE, eventually, job_in_state, wait_event


async def test_async_and_sync_tasks(app: Workhorse) -> None:
    @app.task
    async def add(a: int, b: int) -> int:
        return a + b

    @app.task
    def shout(word: str, *, times: int = 1) -> str:
        return word.upper() * times

    async with app.worker():
        a = await add.enqueue(2, 3)
        s = await shout.enqueue("hi", times=2)
        assert await a.result(timeout=10) == 5
        assert await s.result(timeout=10) == "HIHI"


async def test_process_tasks_run_in_another_process(sqlite_app: Workhorse) -> None:
    app = sqlite_app
    square = app.task(executor="process")(_process_tasks.square)
    async with app.worker():
        jobs = [await square.enqueue(n) for n in range(4)]
        results = [await job.result(timeout=30) for job in jobs]
    assert [r["square"] for r in results] == [0, 1, 4, 9]
    assert os.getpid() not in {r["pid"] for r in results}


async def test_a_process_task_error_is_recorded(sqlite_app: Workhorse) -> None:
    app = sqlite_app
    explode = app.task(executor="process", retry=1)(_process_tasks.explode)
    async with app.worker():
        job = await explode.enqueue("from the child")
        record = await job_in_state(app, job.id, JobState.FAILED, timeout=30)
    assert record.error is not None
    assert (record.error.type, record.error.message) == ("ValueError", "from the child")
    assert "explode" in (record.error.traceback or ""), "the child's traceback is kept"


async def test_a_process_task_must_be_importable(app: Workhorse) -> None:
    def local(n: int) -> int:
        return n

    task = app.task(executor="process", retry=5)(local)
    async with app.worker():
        job = await task.enqueue(1)
        record = await job_in_state(app, job.id, JobState.FAILED)
    assert record.attempt == 1, "a configuration error is not retried"
    assert record.error is not None
    assert record.error.type == "ConfigurationError"
    assert "module level" in record.error.message


async def test_higher_priority_runs_first(app: Workhorse) -> None:
    order: list[str] = []

    @app.task
    async def note(name: str) -> None:
        order.append(name)

    await note.options(priority=0).enqueue("low")
    await note.options(priority=10).enqueue("high")
    await note.options(priority=5).enqueue("mid")
    last = await note.options(priority=-1).enqueue("last")
    async with app.worker(concurrency=1):
        await last.result(timeout=10)
    assert order == ["high", "mid", "low", "last"]


async def test_a_delayed_job_starts_on_time_without_waiting_for_a_poll(app: Workhorse) -> None:
    started_at: list[float] = []

    @app.task
    async def later() -> None:
        started_at.append(time.monotonic())

    # The poll interval is far longer than the delay: only sleeping until the job's
    # run_at gets it started on time.
    async with app.worker(poll_interval=30.0):
        enqueued = time.monotonic()
        job = await later.options(delay=0.4).enqueue()
        record = await job_in_state(app, job.id, JobState.COMPLETED, timeout=5)
    waited = started_at[0] - enqueued
    assert waited >= 0.39, f"started {waited:.3f}s after enqueue, before its delay"
    assert waited < 1.5, f"started {waited:.3f}s after enqueue"
    assert record.started_at is not None
    assert record.started_at >= record.run_at - timedelta(milliseconds=5)


async def test_current_job_in_async_and_sync_tasks(local_app: Workhorse) -> None:
    app = local_app
    seen: dict[str, JobContext] = {}
    threads: dict[str, int] = {}

    @app.task
    async def in_loop() -> int:
        seen["async"] = current_job()
        return current_job().attempt

    @app.task
    def in_thread() -> int:
        seen["sync"] = current_job()
        threads["sync"] = threading.get_ident()
        return current_job().job_id

    async with app.worker():
        a = await in_loop.enqueue()
        s = await in_thread.enqueue()
        assert await a.result(timeout=10) == 1
        assert await s.result(timeout=10) == s.id
    assert seen["async"].job_id == a.id
    assert seen["async"].task_name == in_loop.name
    assert seen["sync"].job_id == s.id
    assert threads["sync"] != threading.get_ident(), "sync tasks run off the loop thread"


async def test_progress_is_visible_in_the_store_while_running(app: Workhorse) -> None:
    gate = threading.Event()

    @app.task
    def crunch() -> str:
        ctx = current_job()
        for step in range(1, 41):
            ctx.set_progress(step, f"step {step}")  # many updates, coalesced
        gate.wait(30)
        return "done"

    async with app.worker():
        job = await crunch.enqueue()
        record = await eventually(
            job.refresh, lambda r: r.progress == 40, what="progress 40 in the store"
        )
        assert record.state is JobState.RUNNING
        assert record.progress_message == "step 40"
        gate.set()
        assert await job.result(timeout=10) == "done"


async def test_sync_tasks_never_block_the_event_loop(local_app: Workhorse) -> None:
    app = local_app

    @app.task
    def blocking(seconds: float) -> None:
        time.sleep(seconds)

    lags: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - before - 0.01)

    async with app.worker(concurrency=3):
        jobs = [await blocking.enqueue(0.4) for _ in range(3)]
        tick = asyncio.create_task(ticker())
        for job in jobs:
            await job.result(timeout=10)
        stop.set()
        await tick
    assert len(lags) > 10
    assert max(lags) < 0.1, f"the loop stalled for {max(lags):.3f}s"


async def test_an_in_process_enqueue_wakes_an_idle_worker(local_app: Workhorse) -> None:
    app = local_app
    ran = asyncio.Event()

    @app.task
    async def ping() -> None:
        ran.set()

    async with app.worker(poll_interval=30.0):
        # Once this job is done the worker has claimed and found nothing more: it is idle
        # until the poll timer, 30 s away, unless the enqueue wakes it.
        await (await ping.enqueue()).result(timeout=DEADLINE)
        ran.clear()
        await ping.enqueue()
        await wait_event(ran, timeout=5)


async def test_concurrency_limits_running_jobs(local_app: Workhorse) -> None:
    app = local_app
    running = 0
    peak = 0

    @app.task
    async def busy() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1

    jobs = await app.enqueue_many([busy.call() for _ in range(20)])
    async with app.worker(concurrency=3):
        for job in jobs:
            await job.result(timeout=10)
    assert peak == 3
