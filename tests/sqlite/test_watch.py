"""The change feed: a commit by another process wakes ``watch()`` on the event loop's
thread, on Linux through inotify read by the loop itself (``inotify``), elsewhere
through a polling thread (``polling``, forced here); cancelling it stops both."""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import sqlite3
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from _polling import until
from workhorse.backends.base import NewJob, Wanted
from workhorse.backends.sqlite import SQLiteBackend, watch
from workhorse.backends.sqlite.inotify import open_file_watch
from workhorse.backends.sqlite.watch import _LoopFeed
from workhorse.errors import BackendUnavailableError

from ._support import run_child

WATCH_THREAD = "workhorse-sqlite-watch"
LINUX = sys.platform.startswith("linux")


@pytest.fixture(autouse=True)
def no_safety_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """The slow look that covers what inotify misses would hide a missed wake-up."""
    monkeypatch.setattr(watch, "SAFETY_CHECK", 3600.0)


@pytest.fixture(params=["inotify", "polling"])
def feed(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which feed ``watch()`` runs: the loop's inotify reader, or the polling thread."""
    if request.param == "inotify" and not LINUX:
        pytest.skip("inotify is Linux only; elsewhere watch() polls")
    if request.param == "polling":
        monkeypatch.setattr(watch, "open_file_watch", lambda path: None)
    return str(request.param)


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
    store: SQLiteBackend, wakes: Wakes, wanted: Wanted | None = None
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
    store: SQLiteBackend, db_url: str, feed: str
) -> None:
    wakes = Wakes()
    async with watching(store, wakes):
        code, _, stderr = await run_child("insert", db_url, "1")
        assert code == 0, stderr
        await wakes.next()
    assert set(wakes.calls) == {None}
    assert wakes.threads == {threading.get_ident()}, "wake ran off the event loop thread"


async def test_no_commit_no_wake(store: SQLiteBackend, feed: str) -> None:
    wakes = Wakes()
    async with watching(store, wakes):
        # This store's own commits come from another connection too.
        await store.job_insert_many([NewJob(task="local")])
        await wakes.next()
        await store.job_get(job_id=1)
        await store.job_claim(worker_id="w", queues=["none"], limit=1, lease_seconds=1)
        await wakes.none()


def _count_version_checks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    checks = [0]
    checked_version = watch._checked_version

    def counted(cursor: sqlite3.Cursor) -> int | None:
        checks[0] += 1
        return checked_version(cursor)

    monkeypatch.setattr(watch, "_checked_version", counted)
    return checks


async def test_a_watcher_rests_while_not_wanted_and_then_wakes_for_what_changed(
    store: SQLiteBackend, monkeypatch: pytest.MonkeyPatch, feed: str
) -> None:
    """A busy worker ignores wake-ups: meanwhile the feed does not look at the file,
    however much is written; wanted again, it wakes once for the commits it missed."""
    checks = _count_version_checks(monkeypatch)
    wakes, wanted = Wakes(), Wanted()
    async with watching(store, wakes, wanted):
        baseline = checks[0]
        for _ in range(20):
            await store.job_insert_many([NewJob(task="while busy")])
        await wakes.none()
        assert checks[0] == baseline
        wanted.set()
        await wakes.next()  # for the commits made while it rested
        wanted.clear()  # woken, the worker claims, then waits again
        wanted.set()
        await store.job_insert_many([NewJob(task="while idle")])
        await wakes.next()
    assert _watch_threads() == [], "a resting thread stops when cancelled"


@pytest.mark.skipif(not LINUX, reason="inotify is Linux only")
async def test_after_a_wake_the_feed_reads_nothing_until_wanted_again(
    store: SQLiteBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Woken, the worker claims at once: the writes meanwhile (its own claim's among
    them) cost no callback, and what was committed is seen as it waits again."""
    written = [0]
    loop_feed_written = _LoopFeed._written

    def counted(feed: _LoopFeed) -> None:
        written[0] += 1
        loop_feed_written(feed)

    monkeypatch.setattr(_LoopFeed, "_written", counted)
    wakes, wanted = Wakes(), Wanted()
    wanted.set()
    async with watching(store, wakes, wanted):
        await store.job_insert_many([NewJob(task="first")])
        await wakes.next()
        wanted.clear()  # the worker claims
        callbacks = written[0]
        await store.job_insert_many([NewJob(task="while it claims")])
        await wakes.none()
        assert written[0] == callbacks
        wanted.set()  # and waits again
        await wakes.next()


async def test_wanted_again_with_nothing_changed_no_wake(store: SQLiteBackend, feed: str) -> None:
    wakes, wanted = Wakes(), Wanted()
    async with watching(store, wakes, wanted):
        wanted.set()
        await wakes.none()


async def test_cancelling_stops_the_thread(store: SQLiteBackend, feed: str) -> None:
    before = len(_watch_threads())
    first, second = Wakes(), Wakes()
    watchers = [asyncio.create_task(store.watch(wakes)) for wakes in (first, second)]
    await first.next()
    await second.next()
    assert len(_watch_threads()) == before + (2 if feed == "polling" else 0)
    for task in watchers:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert len(_watch_threads()) == before


async def test_a_watcher_that_cannot_read_the_file_raises(tmp_path: Path, feed: str) -> None:
    # A folder that is missing (inotify cannot watch it), or a database that is a folder.
    (tmp_path / "a-folder.db").mkdir()
    for path in (tmp_path / "missing" / "jobs.db", tmp_path / "a-folder.db"):
        store = SQLiteBackend(f"sqlite:///{path}")
        with pytest.raises(BackendUnavailableError):
            await asyncio.wait_for(store.watch(lambda queue: None), 10)
    assert _watch_threads() == []


@pytest.mark.skipif(not LINUX, reason="inotify is Linux only")
def test_file_watch_sees_another_connections_commit(tmp_path: Path) -> None:
    database = tmp_path / "watched.db"
    conn = sqlite3.connect(database, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    files = open_file_watch(database)
    assert files is not None

    def written(timeout: float) -> bool:
        readable, _, _ = select.select([files], [], [], timeout)
        return bool(readable) and files.drain()

    try:
        assert files.drain() is False  # nothing written yet: never blocks
        conn.execute("INSERT INTO t VALUES (1)")
        assert written(5) is True
        (tmp_path / "unrelated.txt").write_text("other files do not count")
        assert written(0.05) is False
        conn.execute("INSERT INTO t VALUES (2)")
        assert written(5) is True
    finally:
        files.close()
        files.close()  # idempotent
        conn.close()


class PipeEvents:
    """Stands in for the inotify watch: a byte written to its pipe is a write event,
    whatever was (or was not) committed."""

    def __init__(self) -> None:
        self.read_end, self.write_end = os.pipe()
        os.set_blocking(self.read_end, False)

    def fileno(self) -> int:
        return self.read_end

    def event(self) -> None:
        os.write(self.write_end, b"x")

    def drain(self) -> bool:
        try:
            return bool(os.read(self.read_end, 512))
        except BlockingIOError:
            return False

    def close(self) -> None:
        os.close(self.read_end)
        os.close(self.write_end)


@contextlib.asynccontextmanager
async def loop_feed(path: Path, wakes: Wakes) -> AsyncIterator[PipeEvents]:
    """A bare loop feed (no safety check) on ``path``, its events from a pipe."""
    events = PipeEvents()
    cursor = sqlite3.connect(path, isolation_level=None).cursor()
    seen = watch._checked_version(cursor)
    feed = _LoopFeed(cursor, seen, events, wakes, wanted=None)  # type: ignore[arg-type]
    try:
        yield events
    finally:
        feed.close()
        events.close()


def _writer(path: Path) -> sqlite3.Connection:
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
    return writer


async def test_a_write_event_before_its_commit_is_published_is_followed_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A commit at synchronous=FULL writes its frames (the event) before its fsync and
    # publishes them after: the version moves only later, with no event of its own.
    checks = _count_version_checks(monkeypatch)
    monkeypatch.setattr(watch, "FOLLOW_UP", (0.2, 0.4, 0.8, 1.6, 3.2))  # outlasts a slow test
    path = tmp_path / "watch.db"
    writer = _writer(path)
    wakes = Wakes()
    async with loop_feed(path, wakes) as events:
        looked = checks[0]
        events.event()  # the frames, not yet published
        await until(lambda: checks[0] > looked, what="the feed's look")
        assert wakes.calls == []
        writer.execute("INSERT INTO t VALUES (1)")  # published: no event comes for it
        await wakes.next(timeout=5)
    writer.close()
