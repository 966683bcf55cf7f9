"""The worker's life: start returns at once, stop drains and releases, stop requests from
a thread or from the store, supervision of side tasks."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time

import pytest

from workhorse import JobState, WorkerSettings, Workhorse
from workhorse.worker import Worker, WorkerState
from workhorse.worker.supervisor import Supervisor

from ._support import FAST, eventually, job_in_state, wait_event


def test_creating_a_worker_does_nothing() -> None:
    # No event loop runs here: a constructor that started tasks or did I/O would fail.
    app = Workhorse("memory://")
    worker = Worker(app, FAST)
    assert state(worker) is WorkerState.NEW
    assert worker.stats.running == 0
    assert worker.id.count("-") >= 2


async def test_entering_returns_at_once_and_leaving_drains(app: Workhorse) -> None:
    started: list[int] = []
    finished: list[int] = []

    @app.task
    async def slow(n: int) -> int:
        started.append(n)
        await asyncio.sleep(0.05)
        finished.append(n)
        return n

    jobs = [await slow.enqueue(n) for n in range(6)]
    t0 = time.monotonic()
    async with app.worker() as worker:
        assert time.monotonic() - t0 < 2.0
        assert state(worker) is WorkerState.RUNNING
        assert worker.id in {w.id for w in await app.workers()}
        assert await jobs[0].result(timeout=10) == 0
    assert state(worker) is WorkerState.STOPPED
    assert sorted(finished) == sorted(started), "leaving waits for running jobs"
    assert worker.id not in {w.id for w in await app.workers()}
    for job in jobs:
        record = await job.refresh()
        if record.args[0] in finished:
            assert record.state is JobState.COMPLETED
        else:
            assert (record.state, record.attempt) == (JobState.QUEUED, 0), "never claimed"
    assert await app.list_jobs(states=[JobState.RUNNING]) == []


async def test_stop_is_idempotent_and_concurrent(app: Workhorse) -> None:
    worker = app.worker()
    await worker.stop()  # never started: nothing to do
    assert state(worker) is WorkerState.NEW
    await worker.start()
    await worker.start()  # already running
    await asyncio.gather(worker.stop(), worker.stop(), worker.stop())
    await worker.stop()
    await worker.wait_stopped()
    assert state(worker) is WorkerState.STOPPED


async def test_a_stopped_worker_can_start_again_with_a_new_id(app: Workhorse) -> None:
    @app.task
    async def ping() -> str:
        return "pong"

    worker = app.worker()
    async with worker:
        first_id = worker.id
    async with worker:
        assert worker.id != first_id
        assert await (await ping.enqueue()).result(timeout=10) == "pong"


async def test_request_stop_from_another_thread_ends_run(app: Workhorse) -> None:
    worker = app.worker()
    run = asyncio.create_task(worker.run(handle_signals=False))
    await eventually(lambda: _state(worker), lambda s: s is WorkerState.RUNNING)
    threading.Thread(target=worker.request_stop).start()
    await asyncio.wait_for(run, 10)
    assert state(worker) is WorkerState.STOPPED


async def test_request_stop_before_start_stops_right_after_start(app: Workhorse) -> None:
    worker = app.worker()
    worker.request_stop()
    await asyncio.wait_for(worker.run(handle_signals=False), 10)
    assert state(worker) is WorkerState.STOPPED


async def test_a_stop_requested_through_the_store_stops_a_running_worker(
    app: Workhorse,
) -> None:
    worker = app.worker()
    run = asyncio.create_task(worker.run(handle_signals=False))
    await eventually(lambda: _state(worker), lambda s: s is WorkerState.RUNNING)
    store = await app.backend()
    assert await store.worker_request_stop(worker_id=worker.id) == 1
    await asyncio.wait_for(run, 10)
    assert state(worker) is WorkerState.STOPPED
    assert worker.id not in {w.id for w in await app.workers()}


async def test_stop_releases_jobs_that_outlive_the_grace(app: Workhorse) -> None:
    started = asyncio.Event()
    gate = threading.Event()

    @app.task
    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    @app.task
    def stuck() -> str:
        gate.wait(30)
        return "late"

    async_job = await forever.enqueue()
    sync_job = await stuck.enqueue()
    worker = app.worker()
    await worker.start()
    await wait_event(started)
    await job_in_state(app, sync_job.id, JobState.RUNNING)
    t0 = time.monotonic()
    await worker.stop(grace=0.2)
    assert time.monotonic() - t0 < 5
    assert worker.stats.released == 2
    for job in (async_job, sync_job):
        record = await job.refresh()
        assert record.state is JobState.QUEUED, "released back to the queue"
        assert record.attempt == 0, "a released attempt does not count"
    gate.set()  # the abandoned thread returns now; its result must be discarded
    await eventually(lambda: _state_of(app, sync_job.id), lambda s: s is JobState.QUEUED)
    assert (await sync_job.refresh()).result is None


async def test_an_attempt_that_fails_because_of_the_shutdown_is_released(
    app: Workhorse,
) -> None:
    started = asyncio.Event()

    @app.task(retry=1)
    async def touchy() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise RuntimeError("interrupted") from None

    job = await touchy.enqueue()
    worker = app.worker()
    await worker.start()
    await wait_event(started)
    await worker.stop(grace=0.1)
    record = await job.refresh()
    assert (record.state, record.attempt) == (JobState.QUEUED, 0), "not failed: released"
    assert worker.stats.failed == 0


async def test_sigterm_drains_and_a_second_one_skips_the_grace(app: Workhorse) -> None:
    started = asyncio.Event()
    quick_done = asyncio.Event()

    @app.task
    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    @app.task
    async def quick() -> None:
        await started.wait()
        quick_done.set()

    stuck = await forever.enqueue()
    finishing = await quick.enqueue()
    worker = app.worker(shutdown_grace=60.0)
    run = asyncio.create_task(worker.run())
    await wait_event(started)
    # run() installs its handlers in the same step that makes the worker RUNNING.
    assert state(worker) is WorkerState.RUNNING
    os.kill(os.getpid(), signal.SIGTERM)
    await eventually(lambda: _state(worker), lambda s: s is WorkerState.STOPPING)
    await wait_event(quick_done)
    await job_in_state(app, finishing.id, JobState.COMPLETED)
    assert not run.done(), "the first signal waits for the grace"
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(run, 10)
    assert state(worker) is WorkerState.STOPPED
    assert (await stuck.refresh()).state is JobState.QUEUED


async def test_a_side_task_that_dies_is_logged_and_restarted(
    app: Workhorse, caplog: pytest.LogCaptureFixture
) -> None:
    @app.task
    async def ping() -> str:
        return "pong"

    worker = app.worker()
    async with worker:
        session = worker._session
        assert session is not None
        beat = session.heartbeat.beat
        calls = 0

        async def crash_once() -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("injected heartbeat bug")
            await beat()

        with caplog.at_level(logging.ERROR, logger="workhorse.worker"):
            session.heartbeat.beat = crash_once  # type: ignore[method-assign]
            await eventually(lambda: _value(calls), lambda n: n >= 3, what="beats after a crash")
        assert session.supervisor.crashes == 1
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert any("heartbeat" in r.getMessage() and r.exc_info for r in errors)
        assert await (await ping.enqueue()).result(timeout=10) == "pong"


async def test_stopping_a_side_task_that_swallowed_its_cancellation_still_ends_it() -> None:
    # On Python 3.11, asyncio.wait_for (psycopg_pool waits for a free connection with
    # it) drops a cancellation that arrives in the same turn as its result; a heartbeat
    # waiting for a connection at the worker's stop then ran on and the stop hung.
    supervisor = Supervisor("test")
    waiting = asyncio.Event()
    turns = 0

    async def swallows_one_cancellation() -> None:
        nonlocal turns
        try:
            waiting.set()
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            pass  # what the 3.11 wait_for does when its result came with the cancel
        turns += 1
        await asyncio.Event().wait()  # runs on, as the heartbeat did, until cancelled again

    supervisor.start("side", swallows_one_cancellation)
    await wait_event(waiting)
    await asyncio.wait_for(supervisor.stop("side"), 5)
    assert not supervisor.is_up("side")
    assert turns >= 1, "the first cancellation was swallowed, so a second one ended it"


async def test_worker_settings_come_from_the_app_with_overrides(app: Workhorse) -> None:
    worker = app.worker(concurrency=3, queues=("a", "b"))
    assert worker.settings.concurrency == 3
    assert worker.settings.queues == ("a", "b")
    assert worker.settings.lease == app.settings.lease
    assert isinstance(worker.settings, WorkerSettings)


def state(worker: Worker) -> WorkerState:
    """The worker's state (a call, so that mypy does not narrow it between awaits)."""
    return worker.state


async def _state(worker: Worker) -> WorkerState:
    return worker.state


async def _state_of(app: Workhorse, job_id: int) -> JobState:
    return (await app.get_job(job_id)).state


async def _value(value: int) -> int:
    return value
