"""The change feed: a commit by another process wakes ``watch()`` on the event loop's
thread, and cancelling it stops its thread."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from workhorse.backends.base import NewJob
from workhorse.backends.sqlite import SQLiteBackend, watch
from workhorse.backends.sqlite.watch import _FOLLOW_UP, _follow_up
from workhorse.errors import BackendUnavailableError

from ._support import run_child

WATCH_THREAD = "workhorse-sqlite-watch"


class Wakes:
    """Records ``wake`` calls and the threads they ran on."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.calls: list[str | None] = []
        self.threads: set[int] = set()

    def __call__(self, queue: str | None) -> None:
        self.calls.append(queue)
        self.threads.add(threading.get_ident())
        self.event.set()

    async def next(self, timeout: float = 10) -> None:
        await asyncio.wait_for(self.event.wait(), timeout)
        self.event.clear()

    async def none(self) -> None:
        """No wake within a fifth of a second."""
        with pytest.raises(TimeoutError):
            await self.next(timeout=0.2)


@contextlib.asynccontextmanager
async def watching(
    store: SQLiteBackend, wakes: Wakes, wanted: threading.Event | None = None
) -> AsyncIterator[None]:
    """``store.watch(wakes)`` from its first wake (it watches from there on) until the
    block ends, then cancelled."""
    watcher = asyncio.create_task(store.watch(wakes, wanted=wanted))
    try:
        await wakes.next()
        yield
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


def _watch_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == WATCH_THREAD]


async def test_a_commit_in_another_process_wakes_the_watcher(
    store: SQLiteBackend, db_url: str
) -> None:
    wakes = Wakes()
    async with watching(store, wakes):
        code, _, stderr = await run_child("insert", db_url, "1")
        assert code == 0, stderr
        await wakes.next()
    assert set(wakes.calls) == {None}
    assert wakes.threads == {threading.get_ident()}, "wake ran off the event loop thread"


async def test_no_commit_no_wake(store: SQLiteBackend) -> None:
    wakes = Wakes()
    async with watching(store, wakes):
        # This store's own commits come from another connection too.
        await store.job_insert_many([NewJob(task="local")])
        await wakes.next()
        await store.job_get(job_id=1)
        await store.job_claim(worker_id="w", queues=["none"], limit=1, lease_seconds=1)
        await wakes.none()


async def test_a_watcher_rests_while_not_wanted_and_then_wakes_for_what_changed(
    store: SQLiteBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A busy worker ignores wake-ups: meanwhile the thread does not look at the file,
    however much is written; wanted again, it wakes once for the commits it missed."""
    checks = [0]
    checked_version = watch._checked_version

    def counted(cursor: sqlite3.Cursor) -> int | None:
        checks[0] += 1
        return checked_version(cursor)

    monkeypatch.setattr(watch, "_checked_version", counted)
    wakes, wanted = Wakes(), threading.Event()
    async with watching(store, wakes, wanted):
        for _ in range(20):
            await store.job_insert_many([NewJob(task="while busy")])
        await wakes.none()
        assert checks[0] == 0
        wanted.set()
        await wakes.next()  # for the commits made while it rested
        await store.job_insert_many([NewJob(task="while idle")])
        await wakes.next()
    assert _watch_threads() == [], "a resting thread stops when cancelled"


async def test_wanted_again_with_nothing_changed_no_wake(store: SQLiteBackend) -> None:
    wakes, wanted = Wakes(), threading.Event()
    async with watching(store, wakes, wanted):
        wanted.set()
        await wakes.none()


async def test_cancelling_stops_the_thread(store: SQLiteBackend) -> None:
    before = len(_watch_threads())
    first, second = Wakes(), Wakes()
    watchers = [asyncio.create_task(store.watch(wakes)) for wakes in (first, second)]
    await first.next()
    await second.next()
    assert len(_watch_threads()) == before + 2
    for task in watchers:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert len(_watch_threads()) == before


async def test_a_watcher_that_cannot_read_the_file_raises(tmp_path: Path) -> None:
    store = SQLiteBackend(f"sqlite:///{tmp_path / 'missing' / 'jobs.db'}")
    with pytest.raises(BackendUnavailableError):
        await asyncio.wait_for(store.watch(lambda queue: None), 10)
    assert _watch_threads() == []


def test_file_watch_sees_another_connections_commit_and_can_be_interrupted(
    tmp_path: Path,
) -> None:
    import sqlite3
    import sys
    import time

    from workhorse.backends.sqlite.inotify import open_file_watch

    if not sys.platform.startswith("linux"):
        pytest.skip("inotify is Linux only; elsewhere watch() polls")
    database = tmp_path / "watched.db"
    conn = sqlite3.connect(database, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    files = open_file_watch(database)
    assert files is not None
    try:
        assert files.wait(0.05) is False  # nothing written: times out
        conn.execute("INSERT INTO t VALUES (1)")
        assert files.wait(5) is True
        (tmp_path / "unrelated.txt").write_text("other files do not count")
        assert files.wait(0.05) is False
        threading.Timer(0.05, files.interrupt).start()
        started = time.monotonic()
        assert files.wait(30) is False
        assert time.monotonic() - started < 10  # the interrupt ended the wait
        # A wait shorter than poll(2) can time still reports a write.
        assert files.wait(0.0001) is False
        conn.execute("INSERT INTO t VALUES (2)")
        assert files.wait(0.0001) is True
    finally:
        files.close()
        conn.close()


class Follow:
    """A ``pause`` for ``_follow_up`` that records its waits and, at chosen waits, says
    the files were written and (optionally) commits from another connection."""

    def __init__(self, path: Path, written_at: set[int], commit_at: int | None) -> None:
        self.writer = sqlite3.connect(path, isolation_level=None)
        self.writer.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
        self.waits: list[float | None] = []
        self.written_at = written_at
        self.commit_at = commit_at

    def __call__(self, timeout: float | None) -> bool:
        call = len(self.waits)
        self.waits.append(timeout)
        if call == self.commit_at:
            self.writer.execute("INSERT INTO t VALUES (1)")
        return call in self.written_at or call == self.commit_at


def _reader(path: Path) -> tuple[sqlite3.Cursor, int]:
    cursor = sqlite3.connect(path, isolation_level=None).cursor()
    (version,) = cursor.execute("PRAGMA data_version").fetchone()
    return cursor, version


def test_a_write_during_a_long_follow_up_wait_starts_the_short_waits_again(
    tmp_path: Path,
) -> None:
    # A write event that was no commit (a checkpoint, the first frames of a commit not yet
    # published) sent the watcher into its growing waits; the next write must not sit out
    # the long ones.
    path = tmp_path / "watch.db"
    pause = Follow(path, written_at={4}, commit_at=6)
    cursor, seen = _reader(path)
    version = _follow_up(cursor, seen, pause, threading.Event())
    assert version != seen
    assert pause.waits == [*_FOLLOW_UP[:5], _FOLLOW_UP[0], _FOLLOW_UP[1]]


def test_write_events_without_a_commit_end_the_follow_up(tmp_path: Path) -> None:
    path = tmp_path / "watch.db"
    pause = Follow(path, written_at=set(range(10_000)), commit_at=None)
    cursor, seen = _reader(path)
    assert _follow_up(cursor, seen, pause, threading.Event()) == seen
    assert len(pause.waits) < 100
