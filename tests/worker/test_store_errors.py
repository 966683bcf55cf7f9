"""A store that fails for a while: claims and outcome writes are retried with backoff,
logged at WARNING, and nothing is lost."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar, cast

import pytest

from workhorse import JobState, Workhorse

from ._support import job_in_state

F = TypeVar("F", bound=Callable[..., Coroutine[Any, Any, Any]])


def failing(times: int, call: F) -> F:
    """``call``, except that its first ``times`` calls raise ``ConnectionError``."""
    left = times

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        nonlocal left
        if left > 0:
            left -= 1
            raise ConnectionError("store unreachable")
        return await call(*args, **kwargs)

    return cast(F, flaky)


async def test_outcomes_survive_failed_writes(
    local_app: Workhorse, caplog: pytest.LogCaptureFixture
) -> None:
    app = local_app

    @app.task
    async def double(n: int) -> int:
        return 2 * n

    store = await app.backend()
    store.job_complete_many = failing(3, store.job_complete_many)  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="workhorse.worker"):
        async with app.worker() as worker:
            jobs = [await double.enqueue(n) for n in range(5)]
            results = [await job.result(timeout=10) for job in jobs]
    assert results == [0, 2, 4, 6, 8]
    assert worker.stats.completed == 5
    warnings = [r for r in caplog.records if "could not store" in r.getMessage()]
    assert len(warnings) == 3
    assert all(r.levelno == logging.WARNING for r in warnings)


async def test_claims_are_retried(local_app: Workhorse, caplog: pytest.LogCaptureFixture) -> None:
    app = local_app

    @app.task
    async def ping() -> str:
        return "pong"

    store = await app.backend()
    job = await ping.enqueue()
    store.job_claim = failing(2, store.job_claim)  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="workhorse.worker"):
        async with app.worker():
            assert await job.result(timeout=10) == "pong"
    assert sum("claim failed" in r.getMessage() for r in caplog.records) == 2
    assert not any(r.levelno >= logging.ERROR for r in caplog.records)


async def test_outcomes_that_cannot_be_written_by_the_end_are_reported(
    local_app: Workhorse, caplog: pytest.LogCaptureFixture
) -> None:
    app = local_app

    @app.task
    async def ping() -> str:
        return "pong"

    store = await app.backend()
    job = await ping.enqueue()
    store.job_complete_many = failing(10_000, store.job_complete_many)  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="workhorse.worker"):
        worker = app.worker(lease=0.5, heartbeat_interval=0.1)
        await worker.start()
        await job_in_state(app, job.id, JobState.RUNNING)
        await worker.stop()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(f"jobs {job.id}" in m and "run again" in m for m in errors), errors
    # The job stays claimed until its lease expires; then it runs again (at-least-once).
    assert (await job.refresh()).state is JobState.RUNNING
