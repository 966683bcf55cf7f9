"""What commits with an fsync: enqueues and user actions at the store's ``synchronous``
level, a worker's bookkeeping alone without one, and a batch that mixes them durably."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from workhorse.backends.base import NewJob, Outcome
from workhorse.backends.sqlite import SQLiteBackend, inline
from workhorse.backends.sqlite.backend import INLINE_INSERT_MAX
from workhorse.backends.sqlite.config import SQLiteSettings
from workhorse.backends.sqlite.connection import Database
from workhorse.jobs import JobState

NORMAL, FULL = 1, 2
"""What ``PRAGMA synchronous`` reads back."""


def _level(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA synchronous").fetchone()[0])


async def _open(db_path: Path, synchronous: str = "FULL") -> Database:
    db = Database(SQLiteSettings(path=str(db_path), synchronous=synchronous))
    await db.open()
    return db


async def test_bookkeeping_alone_skips_the_fsync_and_durable_writes_keep_it(
    db_path: Path,
) -> None:
    db = await _open(db_path)
    try:
        assert await db.write(_level, durable=False) == NORMAL
        assert await db.write(_level) == FULL
        assert await db.write(_level, durable=False) == NORMAL
        assert await db.read(_level) == NORMAL  # stays until a durable write needs FULL
    finally:
        await db.close()


async def test_a_batch_with_one_durable_write_commits_durably(db_path: Path) -> None:
    db = await _open(db_path)
    try:
        await db.write(_level, durable=False)
        gate = threading.Event()

        async def open_gate() -> None:
            gate.set()

        blocker = asyncio.create_task(db.call(lambda: gate.wait(30)))
        writes = [
            asyncio.create_task(db.write(_level, durable=durable))
            for durable in (False, True, False)
        ]
        opener = asyncio.create_task(open_gate())
        await blocker
        await opener
        assert await asyncio.gather(*writes) == [FULL, FULL, FULL]
    finally:
        await db.close()


async def test_a_store_set_to_normal_never_asks_for_full(db_path: Path) -> None:
    db = await _open(db_path, synchronous="NORMAL")
    try:
        assert await db.write(_level) == NORMAL
        assert await db.write(_level, durable=False) == NORMAL
    finally:
        await db.close()


class _Commits:
    """The ``synchronous`` level of each COMMIT one connection traced."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.trace: list[str] = []
        self.level = {NORMAL: "NORMAL", FULL: "FULL"}[_level(conn)]
        conn.set_trace_callback(self.trace.append)

    def levels(self) -> list[str]:
        seen = []
        for statement in self.trace:
            if statement.startswith("PRAGMA synchronous = "):
                self.level = statement.removeprefix("PRAGMA synchronous = ")
            elif statement == "COMMIT":
                seen.append(self.level)
        self.trace.clear()
        return seen


async def test_enqueue_is_durable_and_claim_and_complete_are_not(
    store: SQLiteBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inline, "SLOW_WRITE", 60.0)  # a loaded machine: stay inline
    thread = await store._db.call(lambda: _Commits(store._db._connection()))
    # Small writes (an enqueue, an idle worker's claim) commit on this thread's own
    # inline connection, each at its own level.
    caller = _Commits(store._db._inline._connection())

    await store.job_insert_many([NewJob(task="t")])
    assert (caller.levels(), thread.levels()) == (["FULL"], [])
    (job,) = await store.job_claim(worker_id="w", queues=None, limit=1, lease_seconds=30)
    assert (caller.levels(), thread.levels()) == (["NORMAL"], [])
    await store.job_insert_many([NewJob(task="t")])
    assert (caller.levels(), thread.levels()) == (["FULL"], [])
    outcome = Outcome(job_id=job.id, lease_token=job.lease_token, state=JobState.COMPLETED)
    assert await store.job_complete_many([outcome]) == [True]
    assert (caller.levels(), thread.levels()) == ([], ["NORMAL"])
    # A batch too large for the caller's thread commits on the connection thread.
    await store.job_insert_many([NewJob(task="t") for _ in range(INLINE_INSERT_MAX + 1)])
    assert (caller.levels(), thread.levels()) == ([], ["FULL"])
    assert await store.job_cancel(job_id=job.id + 1) is not None
    assert (caller.levels(), thread.levels()) == ([], ["FULL"])
