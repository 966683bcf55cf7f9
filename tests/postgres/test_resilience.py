"""Connection loss: terminated pooled connections are replaced without the caller
noticing, and a database that is down gives a clear error, never a silent drop."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psycopg
import pytest
from psycopg.rows import TupleRow

from workhorse.backends.base import JobFilter, Lease, NewJob, Outcome
from workhorse.backends.postgres import PostgresBackend
from workhorse.errors import BackendUnavailableError
from workhorse.jobs import JobState

from ._proxy import Proxy
from .conftest import terminate


async def _busy(backend: PostgresBackend, calls: int = 8) -> None:
    """Run concurrent calls so the pool holds several connections."""
    await asyncio.gather(*(backend.job_count(filter=JobFilter()) for _ in range(calls)))


async def test_every_call_survives_terminated_connections(
    pg_url: str, admin: psycopg.AsyncConnection[TupleRow], app_name: str
) -> None:
    backend = PostgresBackend(pg_url, min_size=4, max_size=8)
    await backend.connect()
    try:
        await backend.migrate()
        await backend.job_insert_many([NewJob(task="t") for _ in range(3)])
        await _busy(backend)
        assert await terminate(admin, app_name) >= 4

        (inserted,) = await backend.job_insert_many([NewJob(task="after")])
        assert inserted.created
        await _busy(backend)
        assert await terminate(admin, app_name) >= 1

        claimed = await backend.job_claim(worker_id="w", queues=None, limit=10, lease_seconds=30)
        assert len(claimed) == 4
        assert await terminate(admin, app_name) >= 1

        leases = [Lease(job.id, job.lease_token) for job in claimed]
        reply = await backend.job_heartbeat(worker_id="w", leases=leases, lease_seconds=30)
        assert reply.lost == frozenset()
        assert await terminate(admin, app_name) >= 1

        outcomes = [Outcome(job.id, job.lease_token, JobState.COMPLETED) for job in claimed]
        assert await backend.job_complete_many(outcomes) == [True] * 4
        assert await terminate(admin, app_name) >= 1

        assert await backend.job_count(filter=JobFilter(states=(JobState.COMPLETED,))) == 4
    finally:
        await backend.close()


async def test_an_insert_while_the_database_is_down_raises_and_writes_nothing(
    pg: PostgresBackend, proxy_url: str, proxy: Proxy
) -> None:
    backend = PostgresBackend(proxy_url, timeout=1.0)
    await backend.connect()
    try:
        await backend.job_insert_many([NewJob(task="before")])
        await proxy.cut()
        started = time.monotonic()
        with pytest.raises(BackendUnavailableError, match="unavailable"):
            await backend.job_insert_many([NewJob(task="during"), NewJob(task="during")])
        assert time.monotonic() - started < 10, "the error comes within the pool timeout"
        started = time.monotonic()
        for _ in range(5):
            with pytest.raises(BackendUnavailableError):
                await backend.job_count(filter=JobFilter())
        assert time.monotonic() - started < 1, "once known down, calls fail fast"

        await proxy.start()
        started = time.monotonic()
        (after,) = await backend.job_insert_many([NewJob(task="after")])
        assert after.created
        assert time.monotonic() - started < 1, "calls resume as soon as the server is back"
        tasks = [record.task for record in await backend.job_list(filter=JobFilter())]
        assert tasks == ["after", "before"], "nothing of the failed batch was written"
    finally:
        await backend.close()
    assert await pg.job_count(filter=JobFilter()) == 2


async def test_connecting_to_a_database_that_is_down(proxy_url: str, proxy: Proxy) -> None:
    await proxy.cut()
    backend = PostgresBackend(proxy_url, timeout=0.5)
    with pytest.raises(BackendUnavailableError, match="unavailable"):
        await backend.connect()
    await backend.close()


async def test_calls_before_connect_say_so(pg_url: str) -> None:
    backend = PostgresBackend(pg_url)
    with pytest.raises(BackendUnavailableError, match="connect"):
        await backend.job_get(job_id=1)


async def test_a_look_at_the_store_survives_its_connection_dying(
    pg_url: str, admin: psycopg.AsyncConnection[TupleRow], monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the CLI asks before it starts a worker: a connection terminated between its
    # opening and its query (an operator, a failover) is not an unreachable server.
    connect = psycopg.AsyncConnection.connect
    terminated: list[int] = []

    async def connect_then_terminate(*args: Any, **kwargs: Any) -> psycopg.AsyncConnection[Any]:
        conn = await connect(*args, **kwargs)
        if not terminated:
            pid = conn.info.backend_pid
            await admin.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])
            terminated.append(pid)
        return conn

    monkeypatch.setattr(psycopg.AsyncConnection, "connect", connect_then_terminate)
    store = PostgresBackend(pg_url)
    assert await store.absent() == (
        f"schema {store.schema!r} does not exist in PostgreSQL at {store._config.target}"
    )
    assert len(terminated) == 1
