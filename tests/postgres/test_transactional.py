"""Transactional enqueue: jobs inserted on the caller's own connection exist if and only
if the caller's transaction commits, whichever kind of connection the caller holds."""

from __future__ import annotations

import asyncio
import random

import psycopg
import pytest
from psycopg.rows import TupleRow
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Session

from workhorse.backends.base import NewJob
from workhorse.backends.postgres import PostgresBackend
from workhorse.backends.postgres.config import parse_config
from workhorse.backends.postgres.inserting import COPY_THRESHOLD
from workhorse.errors import ConfigurationError

from ._support import listening, sentinel


@pytest.fixture
def caller_conninfo(store_url: str) -> str:
    """How the application (not workhorse) connects to the same database."""
    return parse_config(store_url, {"application_name": "wh-test-app"}).conninfo


@pytest.fixture
def sqlalchemy_url(store_url: str) -> str:
    """The same database as a SQLAlchemy URL on the psycopg 3 driver."""
    return store_url.split("?")[0].replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture
async def orders(pg: PostgresBackend, admin: psycopg.AsyncConnection[TupleRow]) -> str:
    """An application table beside the workhorse tables; its qualified name."""
    table = f'"{pg.schema}".orders'
    await admin.execute(f"CREATE TABLE {table} (n integer PRIMARY KEY)")
    return table


async def _jobs_by_order(admin: psycopg.AsyncConnection[TupleRow], schema: str) -> dict[int, int]:
    cur = await admin.execute(
        f'SELECT (args->>0)::int, count(*) FROM "{schema}".workhorse_jobs GROUP BY 1'
    )
    return {int(n): int(count) for n, count in await cur.fetchall()}


async def _orders(admin: psycopg.AsyncConnection[TupleRow], table: str) -> set[int]:
    cur = await admin.execute(f"SELECT n FROM {table}")
    return {int(n) for (n,) in await cur.fetchall()}


async def test_jobs_exist_exactly_for_committed_transactions(
    pg: PostgresBackend,
    admin: psycopg.AsyncConnection[TupleRow],
    caller_conninfo: str,
    orders: str,
) -> None:
    rng = random.Random(20240611)
    expected: dict[int, int] = {}
    async with await psycopg.AsyncConnection.connect(caller_conninfo) as conn:
        for n in range(500):
            await conn.execute(f"INSERT INTO {orders} (n) VALUES (%s)", [n])
            size = COPY_THRESHOLD + 10 if rng.random() < 0.03 else rng.randint(1, 3)
            jobs = [NewJob(task="orders.confirm", args=f"[{n}]") for _ in range(size)]
            if rng.random() < 0.2:
                jobs.append(NewJob(task="orders.once", args=f"[{n}]", unique_key=f"o:{n}"))
            inserted = await pg.job_insert_many(jobs, connection=conn)
            assert all(row.created for row in inserted)
            if rng.random() < 0.5:
                await conn.commit()
                expected[n] = len(jobs)
            else:
                await conn.rollback()
    assert 200 < len(expected) < 300, "the seed mixes commits and rollbacks"
    assert await _orders(admin, orders) == set(expected)
    assert await _jobs_by_order(admin, pg.schema) == expected


async def test_sync_psycopg_connection(
    pg: PostgresBackend, admin: psycopg.AsyncConnection[TupleRow], caller_conninfo: str
) -> None:
    with psycopg.connect(caller_conninfo) as conn:
        await pg.job_insert_many([NewJob(task="t", args="[1]")], connection=conn)
        await asyncio.to_thread(conn.commit)
        await pg.job_insert_many([NewJob(task="t", args="[2]")], connection=conn)
        await asyncio.to_thread(conn.rollback)
        big = [NewJob(task="t", args="[3]") for _ in range(COPY_THRESHOLD)]
        await pg.job_insert_many(big, connection=conn)
        await asyncio.to_thread(conn.commit)
    assert await _jobs_by_order(admin, pg.schema) == {1: 1, 3: COPY_THRESHOLD}


async def test_sqlalchemy_async_session(
    pg: PostgresBackend,
    admin: psycopg.AsyncConnection[TupleRow],
    sqlalchemy_url: str,
    orders: str,
) -> None:
    engine = create_async_engine(sqlalchemy_url)
    try:
        for n, commit in ((1, True), (2, False), (3, True)):
            async with AsyncSession(engine) as session:
                await session.execute(text(f"INSERT INTO {orders} (n) VALUES (:n)"), {"n": n})
                await pg.job_insert_many(
                    [NewJob(task="t", args=f"[{n}]", unique_key=f"k{n}")], connection=session
                )
                if commit:
                    await session.commit()
                else:
                    await session.rollback()
    finally:
        await engine.dispose()
    assert await _orders(admin, orders) == {1, 3}
    assert await _jobs_by_order(admin, pg.schema) == {1: 1, 3: 1}


async def test_sqlalchemy_async_connection(
    pg: PostgresBackend, admin: psycopg.AsyncConnection[TupleRow], sqlalchemy_url: str
) -> None:
    engine = create_async_engine(sqlalchemy_url)
    try:
        async with engine.connect() as conn:
            await pg.job_insert_many([NewJob(task="t", args="[1]")], connection=conn)
            await conn.rollback()
            await pg.job_insert_many([NewJob(task="t", args="[2]")], connection=conn)
            await conn.commit()
    finally:
        await engine.dispose()
    assert await _jobs_by_order(admin, pg.schema) == {2: 1}


async def test_sqlalchemy_sync_session_and_connection(
    pg: PostgresBackend,
    admin: psycopg.AsyncConnection[TupleRow],
    sqlalchemy_url: str,
    orders: str,
) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(sqlalchemy_url)
    try:
        with Session(engine) as session:
            session.execute(text(f"INSERT INTO {orders} (n) VALUES (1)"))
            await pg.job_insert_many([NewJob(task="t", args="[1]")], connection=session)
            await asyncio.to_thread(session.commit)
        with Session(engine) as session:
            session.execute(text(f"INSERT INTO {orders} (n) VALUES (2)"))
            await pg.job_insert_many([NewJob(task="t", args="[2]")], connection=session)
            await asyncio.to_thread(session.rollback)
        with engine.connect() as conn:
            await pg.job_insert_many([NewJob(task="t", args="[3]")], connection=conn)
            await asyncio.to_thread(conn.commit)
    finally:
        engine.dispose()
    assert await _orders(admin, orders) == {1}
    assert await _jobs_by_order(admin, pg.schema) == {1: 1, 3: 1}


async def test_another_search_path_on_the_callers_connection(
    pg: PostgresBackend, admin: psycopg.AsyncConnection[TupleRow], caller_conninfo: str
) -> None:
    async with await psycopg.AsyncConnection.connect(caller_conninfo) as conn:
        await conn.execute("SET search_path TO pg_catalog")
        await pg.job_insert_many([NewJob(task="t", args="[1]", unique_key="u")], connection=conn)
        (again,) = await pg.job_insert_many(
            [NewJob(task="t", args="[1]", unique_key="u")], connection=conn
        )
        assert again.created is False
        await conn.commit()
    assert await _jobs_by_order(admin, pg.schema) == {1: 1}


async def test_an_autocommit_connection_commits_at_once(
    pg: PostgresBackend, admin: psycopg.AsyncConnection[TupleRow], caller_conninfo: str
) -> None:
    async with await psycopg.AsyncConnection.connect(caller_conninfo, autocommit=True) as conn:
        jobs = [NewJob(task="t", args="[1]", unique_key="a"), NewJob(task="t", args="[1]")]
        await pg.job_insert_many(jobs, connection=conn)
        assert await _jobs_by_order(admin, pg.schema) == {1: 2}


async def test_a_failing_insert_leaves_nothing_on_commit(
    pg: PostgresBackend, admin: psycopg.AsyncConnection[TupleRow], caller_conninfo: str
) -> None:
    async with await psycopg.AsyncConnection.connect(caller_conninfo) as conn:
        await pg.job_insert_many([NewJob(task="t", args="[1]")], connection=conn)
        bad = [NewJob(task="t", args="[2]"), NewJob(task="t", args="not json")]
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            await pg.job_insert_many(bad, connection=conn)
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            await conn.execute("SELECT 1")
        await conn.rollback()
    assert await _jobs_by_order(admin, pg.schema) == {}


async def test_workers_hear_of_jobs_only_once_committed(
    pg: PostgresBackend, caller_conninfo: str
) -> None:
    async with (
        listening(pg.listener()) as wakes,
        await psycopg.AsyncConnection.connect(caller_conninfo) as conn,
    ):
        await pg.job_insert_many([NewJob(task="t", queue="rolled")], connection=conn)
        await conn.rollback()
        await pg.job_insert_many([NewJob(task="t", queue="kept")], connection=conn)
        assert await sentinel(pg, wakes) == [], "nothing is announced before the commit"
        await conn.commit()
        assert await sentinel(pg, wakes) == ["kept"]


async def test_unsupported_connection_objects(pg: PostgresBackend) -> None:
    with pytest.raises(ConfigurationError, match="psycopg 3 connection"):
        await pg.job_insert_many([NewJob(task="t")], connection=object())
