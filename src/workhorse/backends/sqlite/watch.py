"""A change feed across processes without polling the tables: a daemon thread reads
``PRAGMA data_version`` on its own connection, a counter that moves whenever another
connection commits, and wakes the event loop when it does.

On Linux the thread sleeps in the kernel until inotify says the database's files were
written (no timer, so an idle watcher costs nothing and wakes within a millisecond);
a slow safety check every :data:`SAFETY_CHECK` seconds covers what inotify cannot see
(a file system that does not report writes from other hosts' processes). Elsewhere it
checks every ``watch_interval``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from workhorse.backends.sqlite.config import SQLiteSettings
from workhorse.backends.sqlite.connection import configure, connect
from workhorse.backends.sqlite.failures import is_busy
from workhorse.backends.sqlite.inotify import FileWatch, open_file_watch
from workhorse.backends.sqlite.statements import QUERIES

_JOIN_TIMEOUT = 2.0
SAFETY_CHECK = 1.0
_REST_STOP_CHECK = 0.02
"""How often a resting thread looks whether it should stop (its shutdown's wait)."""


async def watch_data_version(
    settings: SQLiteSettings,
    wake: Callable[[str | None], None],
    wanted: threading.Event | None = None,
) -> None:
    """Call ``wake(None)`` on the running loop once it watches, then after each commit
    made by any other connection to the file (this process's own backend included),
    until cancelled.

    While ``wanted`` is clear (a busy worker, which ignores wake-ups) the thread rests:
    otherwise every write of the file, the worker's own bookkeeping included, would
    wake it, and a draining worker spent about a tenth of its CPU on that. Once
    ``wanted`` is set, a commit made meanwhile wakes the caller at once.
    Raises if the watching thread fails, so that whoever runs it notices."""
    loop = asyncio.get_running_loop()
    failed: asyncio.Future[None] = loop.create_future()
    stop = threading.Event()
    files = _open_file_watch(settings)
    thread = threading.Thread(
        target=_poll,
        args=(settings, files, loop, wake, wanted, failed, stop),
        name="workhorse-sqlite-watch",
        daemon=True,
    )
    thread.start()
    try:
        await failed
    finally:
        stop.set()
        if files is not None:
            files.interrupt()
        # Without inotify the thread notices within one watch_interval.
        thread.join(_JOIN_TIMEOUT)
        if files is not None and not thread.is_alive():
            files.close()


def _open_file_watch(settings: SQLiteSettings) -> FileWatch | None:
    return open_file_watch(Path(os.path.abspath(settings.path)))


def _poll(
    settings: SQLiteSettings,
    files: FileWatch | None,
    loop: asyncio.AbstractEventLoop,
    wake: Callable[[str | None], None],
    wanted: threading.Event | None,
    failed: asyncio.Future[None],
    stop: threading.Event,
) -> None:
    try:
        conn = connect(settings)
        try:
            configure(conn, settings)
            if files is None:

                def pause(timeout: float | None = None) -> bool:
                    # time.sleep costs less CPU per tick than Event.wait.
                    time.sleep(settings.watch_interval if timeout is None else timeout)
                    return False
            else:

                def pause(timeout: float | None = None) -> bool:
                    return files.wait(SAFETY_CHECK if timeout is None else timeout)

            _watch(conn, pause, loop, wake, wanted, stop)
        finally:
            conn.close()
    except BaseException as exc:
        if not stop.is_set():
            with contextlib.suppress(RuntimeError):  # the loop is closed
                loop.call_soon_threadsafe(_fail, failed, exc)


def _watch(
    conn: sqlite3.Connection,
    pause: Callable[[float | None], bool],
    loop: asyncio.AbstractEventLoop,
    wake: Callable[[str | None], None],
    wanted: threading.Event | None,
    stop: threading.Event,
) -> None:
    cursor = conn.cursor()
    seen = _data_version(cursor)
    # Whatever was committed before this baseline went unseen: wake once for it.
    loop.call_soon_threadsafe(wake, None)
    while True:
        if wanted is not None and not wanted.is_set():
            if not _rest(wanted, stop):
                return
            written = pause(0)  # what was written while resting, without waiting
        else:
            written = pause(None)
        if stop.is_set():
            return
        version = _checked_version(cursor)
        if written and version == seen:
            version = _follow_up(cursor, seen, pause, stop)
            if stop.is_set():  # its wait may have taken the interrupt
                return
        if version != seen or version is None:
            seen = version if version is not None else seen
            loop.call_soon_threadsafe(wake, None)


def _rest(wanted: threading.Event, stop: threading.Event) -> bool:
    """Wait until ``wanted`` is set (True) or ``stop`` is (False)."""
    while not wanted.wait(_REST_STOP_CHECK):
        if stop.is_set():
            return False
    return not stop.is_set()


def _follow_up(
    cursor: sqlite3.Cursor,
    seen: int | None,
    pause: Callable[[float | None], bool],
    stop: threading.Event,
) -> int | None:
    """The data version once it moves past ``seen``, looking again at growing intervals.

    A commit writes its WAL frames (the event) a moment before it publishes them in the
    WAL index, after its fsync: when the event came first, the version moves shortly.
    The waits end early on the next write, and the intervals start over then: an event
    that was no commit of another connection (a checkpoint) must not make a commit that
    follows it wait out the long intervals."""
    version = seen
    step = restarts = 0
    while version == seen and step < len(_FOLLOW_UP) and not stop.is_set():
        written = pause(_FOLLOW_UP[step])
        if written and restarts < _MAX_RESTARTS:
            step, restarts = 0, restarts + 1
        else:
            step += 1
        version = _checked_version(cursor)
    return version


_FOLLOW_UP = (
    *(0.0001, 0.0001, 0.0001, 0.0002, 0.0002),  # a commit's fsync: a few hundred µs
    *(0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032),
)
_MAX_RESTARTS = 32


def _checked_version(cursor: sqlite3.Cursor) -> int | None:
    """The data version, or None when a lock hides it (then wake anyway: a spurious
    wake costs one probe)."""
    try:
        return _data_version(cursor)
    except sqlite3.OperationalError as exc:
        if not is_busy(exc):
            raise
        return None


def _data_version(cursor: sqlite3.Cursor) -> int:
    (version,) = cursor.execute(QUERIES["data_version"]).fetchone()
    return int(version)


def _fail(failed: asyncio.Future[None], exc: BaseException) -> None:
    if not failed.done():
        failed.set_exception(exc)
