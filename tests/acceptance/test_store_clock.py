"""Workers with skewed clocks agree because a worker never sends its own clock to the
store: every lease, due time and expiry is compared on the store's clock (the
database's ``now()`` on PostgreSQL), which each call uses when given no ``now``
(``tests/backends/test_clock.py``).

Here a real worker goes through what compares time (claims, a retry with backoff, a
delayed job, renewals, a dead worker's expired lease reclaimed by its maintenance)
against a real store whose every call is watched: none carries a ``now``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import pytest

from conftest import backend_url
from workhorse import Backoff, Retry, Workhorse
from workhorse.backends import Backend, open_backend

KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
QUICK = {
    "lease": 1.0,
    "heartbeat_interval": 0.2,
    "reclaim_interval": 0.2,
    "leader_ttl": 1.0,
    "poll_interval": 0.1,
}


class ClockWatch:
    """Forwards every call to a real store, noting the calls made and those that carried
    a clock of the caller's (a ``now`` argument)."""

    def __init__(self, store: Backend) -> None:
        self._store = store
        self.calls: Counter[str] = Counter()
        self.clocks: list[str] = []

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._store, name)
        if not inspect.iscoroutinefunction(found):
            return found

        async def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            if kwargs.get("now") is not None:
                self.clocks.append(name)
            return await found(*args, **kwargs)

        return call


@pytest.mark.parametrize("kind", KINDS)
async def test_a_worker_never_sends_its_own_clock(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    schema = request.getfixturevalue("pg_schema") if kind == "postgres" else None
    url = backend_url(kind, tmp_path, schema)
    app = Workhorse(url)
    failures: list[int] = []

    @app.task(name="clock.flaky", retry=Retry(max_attempts=3, backoff=Backoff(base=0.2)))
    async def flaky() -> str:
        if not failures:
            failures.append(1)
            raise ConnectionError("once")
        return "retried"

    @app.task(name="clock.echo")
    async def echo(value: str) -> str:
        return value

    @app.task(name="clock.slow")
    async def slow() -> str:
        await asyncio.sleep(4 * QUICK["heartbeat_interval"])  # outlives a few renewals
        return "renewed"

    real = await app.backend()
    watch = ClockWatch(real)
    watched: Callable[[], Awaitable[Backend]] = _returning(cast(Backend, watch))
    monkeypatch.setattr(app, "backend", watched)
    # A worker that died holding a job: its lease runs out, the live worker reclaims it.
    dead_store = open_backend(url)
    await dead_store.connect()
    try:
        (orphan,) = await dead_store.job_insert_many([echo.call("orphan").to_new_job()])
        held = await dead_store.job_claim(
            worker_id="dead-worker", queues=None, limit=1, lease_seconds=0.5
        )
        assert [job.id for job in held] == [orphan.id]
        async with app.worker(**QUICK):
            retried = await flaky.enqueue()
            delayed = await echo.options(delay=0.5).enqueue("delayed")
            renewed = await slow.enqueue()
            assert await retried.result(timeout=30) == "retried"
            assert await delayed.result(timeout=30) == "delayed"
            assert await renewed.result(timeout=30) == "renewed"
            assert await app.job(orphan.id).result(timeout=30) == "orphan"
    finally:
        await dead_store.close()
        await app.aclose()
    record = await _record(url, orphan.id)
    assert record == (2, "LeaseExpiredError"), "the orphan ran again after a reclaim"
    for needed in ("job_claim", "job_heartbeat", "job_complete_many", "job_reclaim_expired"):
        assert watch.calls[needed] > 0, f"the worker never called {needed}: {watch.calls}"
    assert watch.clocks == [], f"calls that sent the worker's clock: {Counter(watch.clocks)}"


def _returning(store: Backend) -> Callable[[], Awaitable[Backend]]:
    async def backend() -> Backend:
        return store

    return backend


async def _record(url: str, job_id: int) -> tuple[int, str | None]:
    """The attempt count and the last error type of a finished job."""
    store = open_backend(url)
    await store.connect()
    try:
        record = await store.job_get(job_id=job_id)
    finally:
        await store.close()
    assert record is not None
    return record.attempt, record.error.type if record.error else None
