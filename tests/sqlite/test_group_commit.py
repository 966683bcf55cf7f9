"""Group commit: writes that queue up behind one in flight share one transaction, and a
failing write is rolled back alone."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from functools import partial
from pathlib import Path

import pytest

from workhorse.backends.base import JobFilter, NewJob
from workhorse.backends.sqlite import SQLiteBackend
from workhorse.backends.sqlite.config import SQLiteSettings
from workhorse.backends.sqlite.connection import Database
from workhorse.errors import SerializationError


def _add(value: int, conn: sqlite3.Connection) -> int:
    conn.execute("INSERT INTO t (x) VALUES (?)", (value,))
    if value < 0:
        raise ValueError(f"refused {value}")
    return value


async def test_queued_writes_share_one_transaction(db_path: Path) -> None:
    db = Database(SQLiteSettings(path=str(db_path)))
    await db.open()
    try:
        await db.write(lambda conn: conn.execute("CREATE TABLE t (x INTEGER)"))
        trace: list[str] = []
        await db.read(lambda conn: conn.set_trace_callback(trace.append))

        gate = threading.Event()

        async def open_gate() -> None:
            gate.set()

        # Tasks take their first step in creation order: the blocker occupies the
        # connection's thread, every write queues behind it, then the gate opens.
        blocker = asyncio.create_task(db.call(lambda: gate.wait(30)))
        writes = [asyncio.create_task(db.write(partial(_add, i))) for i in range(50)]
        opener = asyncio.create_task(open_gate())
        assert await blocker is True
        assert await asyncio.gather(*writes) == list(range(50))
        await opener

        assert sum(statement == "BEGIN IMMEDIATE" for statement in trace) == 1
        assert sum(statement == "COMMIT" for statement in trace) == 1
        count = await db.read(lambda conn: conn.execute("SELECT count(*) FROM t").fetchone()[0])
        assert count == 50
    finally:
        await db.close()


async def test_a_failing_write_is_rolled_back_alone(db_path: Path) -> None:
    db = Database(SQLiteSettings(path=str(db_path)))
    await db.open()
    try:
        await db.write(lambda conn: conn.execute("CREATE TABLE t (x INTEGER)"))
        gate = threading.Event()

        async def open_gate() -> None:
            gate.set()

        blocker = asyncio.create_task(db.call(lambda: gate.wait(30)))
        writes = [asyncio.create_task(db.write(partial(_add, value))) for value in (1, -2, 3)]
        opener = asyncio.create_task(open_gate())
        await blocker
        await opener
        results = await asyncio.gather(*writes, return_exceptions=True)
        assert results[0] == 1
        assert isinstance(results[1], ValueError)
        assert results[2] == 3
        stored = await db.read(lambda conn: conn.execute("SELECT x FROM t ORDER BY x").fetchall())
        assert stored == [(1,), (3,)]
    finally:
        await db.close()


async def test_concurrent_enqueues_stay_all_or_nothing(
    store: SQLiteBackend, raw: sqlite3.Connection
) -> None:
    # Another connection holds the write lock, so the enqueues pile up behind the first.
    raw.execute("BEGIN IMMEDIATE")

    async def release() -> None:
        raw.execute("COMMIT")

    good = [
        asyncio.create_task(store.job_insert_many([NewJob(task=f"good.{i}")] * 3)) for i in range(5)
    ]
    bad = asyncio.create_task(
        store.job_insert_many([NewJob(task="bad.ok"), NewJob(task="bad.args", args="[1,")])
    )
    more = asyncio.create_task(store.job_insert_many([NewJob(task="good.last")]))
    releaser = asyncio.create_task(release())
    inserted = await asyncio.gather(*good, more)
    await releaser
    with pytest.raises(SerializationError, match="not valid JSON"):
        await bad
    assert all(row.created for rows in inserted for row in rows)
    assert await store.job_count(filter=JobFilter()) == 16
    assert await store.job_count(filter=JobFilter(task="bad.ok")) == 0
