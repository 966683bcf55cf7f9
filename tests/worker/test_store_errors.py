"""A store that fails for a while: claims and outcome writes are retried with backoff and
nothing is lost. A worker tells of an outage once: one WARNING when it begins, whichever
of its loops meets it first, and one INFO with its length when the store is back."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest

from workhorse import JobState, Workhorse

from ._support import FAST, job_in_state, through_an_outage

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


def assert_one_outage(caplog: pytest.LogCaptureFixture, doing: str) -> None:
    """The log tells of one outage, met first while ``doing``, and of its end; no other
    warning."""
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "store unavailable" in warnings[0]
    assert doing in warnings[0]
    back = [r.getMessage() for r in caplog.records if "store available again" in r.getMessage()]
    assert len(back) == 1, back
    assert all(r.levelno == logging.INFO for r in caplog.records if r.getMessage() in back)


async def test_outcomes_survive_failed_writes(
    local_app: Workhorse, caplog: pytest.LogCaptureFixture
) -> None:
    app = local_app

    @app.task
    async def double(n: int) -> int:
        return 2 * n

    store = await app.backend()
    store.job_complete_many = failing(3, store.job_complete_many)  # type: ignore[method-assign]
    with caplog.at_level(logging.INFO, logger="workhorse.worker"):
        async with app.worker() as worker:
            jobs = [await double.enqueue(n) for n in range(5)]
            results = [await job.result(timeout=10) for job in jobs]
    assert results == [0, 2, 4, 6, 8]
    assert worker.stats.completed == 5
    assert_one_outage(caplog, "outcome(s)")


async def test_claims_are_retried(local_app: Workhorse, caplog: pytest.LogCaptureFixture) -> None:
    app = local_app

    @app.task
    async def ping() -> str:
        return "pong"

    store = await app.backend()
    job = await ping.enqueue()
    store.job_claim = failing(2, store.job_claim)  # type: ignore[method-assign]
    with caplog.at_level(logging.INFO, logger="workhorse.worker"):
        async with app.worker():
            assert await job.result(timeout=10) == "pong"
    assert_one_outage(caplog, "claiming jobs")
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


async def test_a_locked_sqlite_store_is_one_outage(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "jobs.db"
    app = Workhorse(f"sqlite:///{path}?busy_timeout=0.05&lock_timeout=0.3", settings=FAST)
    locker = sqlite3.connect(path, isolation_level=None)

    async def lock() -> None:
        locker.execute("BEGIN IMMEDIATE")  # every write of the worker now fails

    async def unlock() -> None:
        locker.execute("ROLLBACK")

    try:
        with caplog.at_level(logging.INFO, logger="workhorse.worker"):
            health = await through_an_outage(app, begin=lock, end=unlock, failures=6)
    finally:
        locker.close()
    assert_one_outage(caplog, "")
    assert health.outages == 1
