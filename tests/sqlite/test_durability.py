"""What is fsynced: enqueues and user actions (when the store is FULL), after their
commit and before the caller hears of it; a worker's bookkeeping alone never; a batch
that mixes them once. Every connection itself stays at ``synchronous=NORMAL``."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from workhorse.backends.base import NewJob, Outcome
from workhorse.backends.sqlite import SQLiteBackend, inline
from workhorse.backends.sqlite.backend import INLINE_INSERT_MAX
from workhorse.backends.sqlite.config import SQLiteSettings
from workhorse.backends.sqlite.connection import Database
from workhorse.backends.sqlite.wal_sync import WalFile
from workhorse.errors import BackendUnavailableError
from workhorse.jobs import JobState

NORMAL = 1
"""What ``PRAGMA synchronous`` reads back for NORMAL."""


class _Syncs:
    """Every real ``WalFile.sync`` of the test, by the thread that made it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.threads: list[str] = []
        self.before: list[object] = []
        self.look: Callable[[], object] | None = None
        """Called before each fsync; what it returns is kept in ``before``."""
        real = WalFile.sync

        def sync(wal: WalFile) -> None:
            if self.look is not None:
                self.before.append(self.look())
            real(wal)
            self.threads.append(threading.current_thread().name)

        monkeypatch.setattr(WalFile, "sync", sync)

    def taken(self) -> list[str]:
        """The syncs since the last call: ``caller`` (this thread) or ``thread``."""
        mine = threading.current_thread().name
        seen = ["caller" if name == mine else "thread" for name in self.threads]
        self.threads.clear()
        return seen


@pytest.fixture
def syncs(monkeypatch: pytest.MonkeyPatch) -> _Syncs:
    return _Syncs(monkeypatch)


def _level(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA synchronous").fetchone()[0])


async def _open(db_path: Path, synchronous: str = "FULL") -> Database:
    db = Database(SQLiteSettings(path=str(db_path), synchronous=synchronous))
    await db.open()
    return db


async def test_bookkeeping_alone_skips_the_fsync_and_durable_writes_get_one(
    db_path: Path, syncs: _Syncs
) -> None:
    db = await _open(db_path)
    try:
        assert await db.write(_level, durable=False) == NORMAL
        assert syncs.taken() == []
        assert await db.write(_level) == NORMAL  # the commit itself never fsyncs...
        assert syncs.taken() == ["thread"]  # ...the sync after it does
        assert await db.write(_level, durable=False) == NORMAL
        assert syncs.taken() == []
    finally:
        await db.close()


async def test_a_batch_with_one_durable_write_is_synced_once(db_path: Path, syncs: _Syncs) -> None:
    db = await _open(db_path)
    try:
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
        assert await asyncio.gather(*writes) == [NORMAL, NORMAL, NORMAL]
        assert syncs.taken() == ["thread"]
    finally:
        await db.close()


async def test_a_store_set_to_normal_never_syncs(db_path: Path, syncs: _Syncs) -> None:
    db = await _open(db_path, synchronous="NORMAL")
    try:
        assert await db.write(_level) == NORMAL
        assert await db.write(_level, durable=False) == NORMAL
        assert syncs.taken() == []
    finally:
        await db.close()


class _Commits:
    """How many COMMITs one connection made."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.trace: list[str] = []
        conn.set_trace_callback(self.trace.append)

    def count(self) -> int:
        seen = self.trace.count("COMMIT")
        self.trace.clear()
        return seen


async def test_enqueue_is_durable_and_claim_and_complete_are_not(
    store: SQLiteBackend, syncs: _Syncs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inline, "SLOW_WRITE", 60.0)  # a loaded machine: stay inline
    thread = await store._db.call(lambda: _Commits(store._db._connection()))
    # Small writes (an enqueue, an idle worker's claim) commit on this thread's own
    # inline connection, and an enqueue syncs there too.
    caller = _Commits(store._db._inline._connection())

    def taken() -> tuple[int, int, list[str]]:
        return caller.count(), thread.count(), syncs.taken()

    await store.job_insert_many([NewJob(task="t")])
    assert taken() == (1, 0, ["caller"])
    (job,) = await store.job_claim(worker_id="w", queues=None, limit=1, lease_seconds=30)
    assert taken() == (1, 0, [])
    await store.job_insert_many([NewJob(task="t")])
    assert taken() == (1, 0, ["caller"])
    outcome = Outcome(job_id=job.id, lease_token=job.lease_token, state=JobState.COMPLETED)
    assert await store.job_complete_many([outcome]) == [True]
    assert taken() == (0, 1, [])
    # A batch too large for the caller's thread commits on the connection thread.
    await store.job_insert_many([NewJob(task="t") for _ in range(INLINE_INSERT_MAX + 1)])
    assert taken() == (0, 1, ["thread"])
    assert await store.job_cancel(job_id=job.id + 1) is not None
    assert taken() == (0, 1, ["thread"])


async def test_a_durable_commit_is_seen_before_its_fsync_and_returns_after_it(
    store: SQLiteBackend, db_path: Path, syncs: _Syncs
) -> None:
    """Other connections (a worker's) see an enqueued job while its fsync runs, and the
    enqueue returns only once that fsync is done."""
    other = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    try:
        syncs.look = lambda: other.execute("SELECT count(*) FROM workhorse_jobs").fetchone()[0]
        await store.job_insert_many([NewJob(task="t")])
        assert syncs.before == [1]  # committed and visible when the fsync started
        assert syncs.taken() == ["caller"]  # and that fsync finished before the return
        await store.job_insert_many([NewJob(task="t") for _ in range(INLINE_INSERT_MAX + 1)])
        assert syncs.before == [1, 2 + INLINE_INSERT_MAX]
        assert syncs.taken() == ["thread"]
    finally:
        other.close()


def _wal_of(db_path: Path) -> tuple[sqlite3.Connection, WalFile]:
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    return conn, WalFile(conn)


def test_the_wal_is_found_as_sqlite_names_it_through_a_symbolic_link(tmp_path: Path) -> None:
    real = tmp_path / "real" / "jobs.db"
    real.parent.mkdir()
    link = tmp_path / "link.db"
    link.symlink_to(real)
    conn, wal = _wal_of(link)
    try:
        assert os.path.exists(wal.path)
        assert Path(wal.path).resolve() == Path(f"{real.resolve()}-wal")
        wal.sync()
    finally:
        wal.close()
        conn.close()


def test_a_sync_that_cannot_reach_the_wal_says_the_commit_may_not_last(
    tmp_path: Path,
) -> None:
    conn, wal = _wal_of(tmp_path / "jobs.db")
    try:
        os.unlink(wal.path)  # before its first sync opened it
        with pytest.raises(BackendUnavailableError, match="may not survive a power loss"):
            wal.sync()
    finally:
        wal.close()
        conn.close()
