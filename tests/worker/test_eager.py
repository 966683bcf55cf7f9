"""Eager mode: enqueue runs the job at once, through the store and the worker's own
executor, retries included, and the task's exception reaches the caller."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from workhorse import Backoff, JobState, Retry, Workhorse, current_job
from workhorse.testing import assert_enqueued, refute_enqueued

from . import _process_tasks

SLOW = Backoff(base=600.0)
"""A backoff that would make the test hang if eager mode waited for it."""


@pytest.fixture
async def make_app(store_url: str) -> AsyncIterator[Callable[..., Workhorse]]:
    """Build apps on the test's store; they are closed after the test."""
    apps: list[Workhorse] = []

    def make(**options: Any) -> Workhorse:
        apps.append(Workhorse(store_url, **options))
        return apps[-1]

    yield make
    for app in apps:
        await app.aclose()
        await asyncio.to_thread(app.close)  # the sync bridge of enqueue_sync, if used


@pytest.fixture
def eager_app(make_app: Callable[..., Workhorse]) -> Workhorse:
    return make_app(eager=True)


async def test_enqueue_runs_the_job_at_once(eager_app: Workhorse) -> None:
    app = eager_app
    ran: list[int] = []

    @app.task
    async def add(a: int, b: int) -> int:
        ran.append(current_job().job_id)
        return a + b

    job = await add.enqueue(2, 3)
    assert ran == [job.id], "it ran before enqueue returned"
    assert await job.result(timeout=0) == 5
    record = await job.refresh()
    assert record.state is JobState.COMPLETED
    assert record.attempt == 1
    await refute_enqueued(app, add)


async def test_retries_run_at_once(eager_app: Workhorse) -> None:
    app = eager_app
    attempts: list[int] = []

    @app.task(retry=Retry(max_attempts=3, backoff=SLOW))
    def flaky() -> str:
        attempts.append(current_job().attempt)
        if len(attempts) < 3:
            raise ConnectionError("again")
        return "ok"

    job = await flaky.enqueue()
    assert attempts == [1, 2, 3]
    assert await job.result(timeout=0) == "ok"


async def test_the_tasks_exception_reaches_the_caller(eager_app: Workhorse) -> None:
    app = eager_app

    class PaymentDeclined(Exception):
        pass

    @app.task(retry=Retry(max_attempts=2, backoff=SLOW))
    async def charge(amount: int) -> None:
        raise PaymentDeclined(f"declined: {amount}")

    with pytest.raises(PaymentDeclined, match="declined: 42"):
        await charge.enqueue(42)
    (record,) = await app.list_jobs(task=charge.name)
    assert record.state is JobState.FAILED
    assert record.attempt == 2
    assert record.error is not None
    assert record.error.type == "PaymentDeclined"


async def test_without_propagation_the_failure_is_only_recorded(
    make_app: Callable[..., Workhorse],
) -> None:
    app = make_app(eager=True, eager_propagate=False)

    @app.task(retry=1)
    async def broken() -> None:
        raise RuntimeError("boom")

    job = await broken.enqueue()
    assert (await job.refresh()).state is JobState.FAILED


async def test_every_job_of_a_bulk_enqueue_runs_before_the_error_is_raised(
    eager_app: Workhorse,
) -> None:
    app = eager_app
    ran: list[int] = []

    @app.task(retry=1)
    async def maybe(n: int) -> None:
        ran.append(n)
        if n == 1:
            raise ValueError("one")

    with pytest.raises(ValueError, match="one"):
        await app.enqueue_many([maybe.call(n) for n in range(3)])
    assert ran == [0, 1, 2]


async def test_nested_enqueues_run_inline(eager_app: Workhorse) -> None:
    app = eager_app
    order: list[str] = []

    @app.task
    async def leaf(name: str) -> str:
        order.append(f"leaf {name}")
        return name

    @app.task
    def sync_branch() -> str:
        job = leaf.enqueue_sync("from a thread")
        order.append("sync branch")
        return job.result_sync(timeout=0)

    @app.task
    async def root() -> str:
        order.append("root")
        first = await leaf.enqueue("from the loop")
        second = await sync_branch.enqueue()
        return f"{await first.result(timeout=0)} + {await second.result(timeout=0)}"

    job = await root.enqueue()
    assert await job.result(timeout=0) == "from the loop + from a thread"
    assert order == ["root", "leaf from the loop", "leaf from a thread", "sync branch"]


async def test_process_tasks_run_eagerly_by_name(eager_app: Workhorse) -> None:
    app = eager_app
    square = app.task(executor="process")(_process_tasks.square)
    job = await square.enqueue(6)
    assert (await job.result(timeout=0))["square"] == 36


async def test_a_delayed_job_runs_at_once(eager_app: Workhorse) -> None:
    app = eager_app

    @app.task
    async def later() -> str:
        return "now"

    job = await later.options(delay=3600).enqueue()
    assert await job.result(timeout=0) == "now"


async def test_the_eager_block_switches_mode(make_app: Callable[..., Workhorse]) -> None:
    app = make_app()

    @app.task
    async def ping() -> str:
        return "pong"

    queued = await ping.enqueue()
    await assert_enqueued(app, ping, count=1)
    with app.eager():
        ran = await ping.enqueue()
        assert await ran.result(timeout=0) == "pong"
    assert (await queued.refresh()).state is JobState.QUEUED


def test_enqueue_sync_runs_eagerly() -> None:
    app = Workhorse("memory://", eager=True)

    @app.task
    def double(n: int) -> int:
        return 2 * n

    @app.task(retry=1)
    def fails() -> None:
        raise LookupError("missing")

    try:
        job = double.enqueue_sync(21)
        assert job.result_sync(timeout=0) == 42
        with pytest.raises(LookupError, match="missing"):
            fails.enqueue_sync()
    finally:
        app.close()
