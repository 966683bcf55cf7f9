"""The connection pool: busy is not down (an exhausted pool says so and is kept), the
connection returned last is handed out first, workers size it for what they run unless
the configuration fixes its size, and it reaches a server on this machine through its
Unix socket when the URL names the socket's directory."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from conftest import PG_URL
from workhorse.backends.base import NewJob, WorkerInfo
from workhorse.backends.postgres import PostgresBackend
from workhorse.backends.postgres.backend import worker_connections
from workhorse.backends.postgres.config import parse_config
from workhorse.backends.postgres.pool import Connection, Pool
from workhorse.errors import BackendUnavailableError

pytestmark = pytest.mark.postgres


@asynccontextmanager
async def holding(pool: Pool, count: int) -> AsyncIterator[set[int]]:
    """Keep ``count`` pooled connections busy for the block; their server pids."""
    release = asyncio.Event()
    pids: set[int] = set()
    taken = asyncio.Semaphore(0)

    async def hold(conn: Connection) -> None:
        pids.add(conn.info.backend_pid)
        taken.release()
        await release.wait()

    holders = [asyncio.create_task(pool.run(hold)) for _ in range(count)]
    try:
        for _ in range(count):
            await asyncio.wait_for(taken.acquire(), 10)
        yield pids
    finally:
        release.set()
        await asyncio.gather(*holders)


async def _pid(pool: Pool) -> int:
    (row,) = await pool.fetch("SELECT pg_backend_pid() AS pid", {})
    return int(row["pid"])


async def test_an_exhausted_pool_says_so_and_is_kept(pg_url: str) -> None:
    pool = Pool(parse_config(pg_url, {"max_size": 2, "timeout": 0.3}))
    await pool.open()
    try:
        async with holding(pool, 2) as busy:
            with pytest.raises(BackendUnavailableError, match="exhausted") as caught:
                await _pid(pool)
            assert "all 2 connections (max_size)" in str(caught.value)
            assert "0.3s (timeout)" in str(caught.value)
        # The same pool (and connections) serves the next call: nothing was replaced.
        assert await _pid(pool) in busy
        async with holding(pool, 2) as again:
            assert again == busy
    finally:
        await pool.close()


async def test_one_callers_calls_stay_on_the_connection_returned_last(pg_url: str) -> None:
    """After a burst opened several connections, sequential calls reuse one (warm)
    connection instead of visiting each idle one in turn."""
    pool = Pool(parse_config(pg_url, {"max_size": 4}))
    await pool.open()
    try:
        async with holding(pool, 3) as burst:
            pass
        assert len(burst) == 3
        first = await _pid(pool)
        assert first in burst
        assert {await _pid(pool) for _ in range(6)} == {first}
    finally:
        await pool.close()


def _worker(worker_id: str, concurrency: int) -> WorkerInfo:
    return WorkerInfo(id=worker_id, hostname="h", pid=1, queues=None, concurrency=concurrency)


async def test_workers_size_the_pool_for_what_they_run(pg_url: str) -> None:
    store = PostgresBackend(pg_url, timeout=1.0)
    await store.connect()
    try:
        await store.migrate()
        assert store.max_connections == 10
        await store.worker_register(worker=_worker("big", 16))
        assert store.max_connections == worker_connections(16) == 15
        await store.worker_register(worker=_worker("small", 2))
        assert store.max_connections == 15 + worker_connections(2)
        # Every connection the workers reserved can be in use at once.
        async with holding(store._pool, store.max_connections) as busy:
            assert len(busy) == 22
        await store.worker_deregister(worker_id="big")
        await store.worker_deregister(worker_id="small")
        assert store.max_connections == 10
    finally:
        await store.close()


@pytest.mark.parametrize("how", ["option", "url"])
async def test_a_fixed_size_stays_fixed(pg_url: str, how: str) -> None:
    store = (
        PostgresBackend(pg_url, max_size=4)
        if how == "option"
        else PostgresBackend(f"{pg_url}&max_size=4")
    )
    await store.connect()
    try:
        await store.migrate()
        await store.worker_register(worker=_worker("w", 16))
        assert store.max_connections == 4
    finally:
        await store.close()


def test_pool_options_in_the_url() -> None:
    config = parse_config("postgresql://h/db?max_size=7&min_size=2&timeout=3&schema=s", {})
    assert (config.max_size, config.min_size, config.timeout, config.schema) == (7, 2, 3.0, "s")
    assert "max_size" not in config.conninfo
    assert parse_config("postgresql://h/db?max_size=7", {"max_size": 3}).max_size == 3
    assert parse_config("postgresql://h/db", {}).max_size is None


async def test_a_store_on_the_servers_unix_socket(pg_schema: str) -> None:
    # The README's URL for a server on the same machine: its socket directory as host.
    with psycopg.connect(PG_URL) as conn:
        (directories,) = conn.execute("SHOW unix_socket_directories").fetchone() or ("",)
    directory = next((d.strip() for d in directories.split(",") if os.path.isdir(d.strip())), "")
    if not directory:
        pytest.skip(f"the server's socket directories ({directories!r}) are not on this machine")
    params = conninfo_to_dict(PG_URL)
    url = (
        f"postgresql://{params.get('user', '')}@/{params.get('dbname', '')}"
        f"?host={directory}&schema={pg_schema}"
    )
    store = PostgresBackend(url)
    await store.connect()
    try:
        await store.migrate()
        (inserted,) = await store.job_insert_many([NewJob(task="t")])
        (row,) = await store._pool.fetch(
            "SELECT client_addr IS NULL AS local FROM pg_stat_activity"
            " WHERE pid = pg_backend_pid()",
            {},
        )
        assert row["local"], "connected over TCP, not the socket"
        assert (await store.job_get(job_id=inserted.id)) is not None
        assert directory in store._config.target  # what its errors name
    finally:
        await store.close()
