"""Helpers for the PostgreSQL tests: collecting wake-ups from a running listener or the
raw notifications of a store's channels, polling with a deadline instead of sleeping,
and reading the catalogs and query plans."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from _polling import DEADLINE as DEADLINE
from _polling import eventually as eventually
from workhorse.backends.base import NewJob
from workhorse.backends.postgres import PostgresBackend
from workhorse.backends.postgres.config import parse_config
from workhorse.backends.postgres.listener import Listener
from workhorse.backends.postgres.statements import Statements

"""Seconds a test waits for something that should happen within milliseconds."""


class Wakes:
    """The wake-ups a listener delivered, in order."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()

    def __call__(self, queue: str | None) -> None:
        self._queue.put_nowait(queue)

    async def next(self, timeout: float = DEADLINE) -> str | None:
        """The next wake-up (fails the test if none comes in time)."""
        return await asyncio.wait_for(self._queue.get(), timeout)

    async def until(self, queue: str | None, timeout: float = DEADLINE) -> list[str | None]:
        """Every wake-up up to and including the first for ``queue``."""
        seen: list[str | None] = []
        deadline = time.monotonic() + timeout
        while not seen or seen[-1] != queue:
            seen.append(await self.next(max(0.0, deadline - time.monotonic())))
        return seen

    def pending(self) -> int:
        """Wake-ups delivered but not read yet."""
        return self._queue.qsize()


@asynccontextmanager
async def listening(listener: Listener) -> AsyncIterator[Wakes]:
    """Run ``listener`` until the block ends, once its LISTEN is in effect."""
    wakes = Wakes()
    task = asyncio.create_task(listener.run(wakes))
    try:
        await asyncio.wait_for(listener.connected.wait(), DEADLINE)
        yield wakes
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


class Heard:
    """The notifications a LISTEN connection received, as (channel, payload)."""

    def __init__(self, conn: psycopg.AsyncConnection[object]) -> None:
        self._conn = conn

    async def until(
        self, last: tuple[str, str], timeout: float = DEADLINE
    ) -> list[tuple[str, str]]:
        """Every notification before ``last`` (fails the test if it does not come)."""
        seen: list[tuple[str, str]] = []
        # Closed on the way out: a suspended generator keeps the connection locked.
        async with contextlib.aclosing(self._conn.notifies(timeout=timeout)) as notifies:
            async for notify in notifies:
                if (notify.channel, notify.payload) == last:
                    return seen
                seen.append((notify.channel, notify.payload))
        raise AssertionError(f"no {last} within {timeout}s; heard {seen}")


@asynccontextmanager
async def notifications(url: str, sql: Statements) -> AsyncIterator[Heard]:
    """LISTEN on both channels of the store at ``url`` for the duration of the block."""
    conninfo = parse_config(url, {"application_name": "wh-test-listen"}).conninfo
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        for channel in (sql.channel, sql.next_channel):
            await conn.execute(f'LISTEN "{channel}"')
        yield Heard(conn)


async def sentinel(backend: PostgresBackend, wakes: Wakes) -> list[str | None]:
    """Insert into a queue of its own and return every wake-up before its own: since
    notifications arrive in commit order, these are all that earlier commits sent."""
    await backend.job_insert_many([NewJob(task="sentinel", queue="sentinel")])
    return (await wakes.until("sentinel"))[:-1]


async def schema_exists(admin: psycopg.AsyncConnection[TupleRow], schema: str) -> bool:
    """Whether ``schema`` exists (seen from ``admin``, a connection outside the store)."""
    cur = await admin.execute("SELECT to_regnamespace(%s) IS NOT NULL", [f'"{schema}"'])
    row = await cur.fetchone()
    return bool(row and row[0])


def plan_scans(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The nodes of a JSON plan (``EXPLAIN (FORMAT JSON)``) that read the jobs table or
    one of its indexes."""
    if node.get("Relation Name") == "workhorse_jobs" or "Index Name" in node:
        yield node
    for child in node.get("Plans", []):
        yield from plan_scans(child)


async def explain_as_run(
    pg: PostgresBackend,
    statement: str,
    arguments: Mapping[str, Any],
    types: Mapping[str, str],
    *,
    mode: str,
) -> dict[str, Any]:
    """The JSON plan of ``statement`` (its ``%(name)s`` parameters of the SQL ``types``
    named) run with ``arguments`` and rolled back, on a connection of the store's own
    (its session settings matter), prepared and planned as ``mode`` says:
    ``force_custom_plan`` or ``force_generic_plan``, as the server may plan a statement
    once it is prepared."""
    names = list(dict.fromkeys(re.findall(r"%\((\w+)\)s", statement)))
    for number, name in enumerate(names, start=1):
        statement = statement.replace(f"%({name})s", f"${number}")
    declared = ", ".join(types[name] for name in names)
    values = sql.SQL(", ").join(sql.Literal(arguments[name]) for name in names)

    async def explain(conn: psycopg.AsyncConnection[Any]) -> Any:
        async with conn.transaction(force_rollback=True):
            await conn.execute(f"PREPARE explained ({declared}) AS {statement}")
            await conn.execute(f"SET LOCAL plan_cache_mode = {mode}")
            query = sql.SQL("EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE explained({})").format(values)
            row = await (await conn.execute(query)).fetchone()
            await conn.execute("DEALLOCATE explained")
        assert row is not None
        return row[0][0]["Plan"]

    plan: dict[str, Any] = await pg._pool.run(explain, idempotent=True)
    return plan
