"""A change feed across processes without polling the tables: a daemon thread reads
``PRAGMA data_version`` on its own connection, a counter that moves whenever another
connection commits, and wakes the event loop when it does."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable

from workhorse.backends.sqlite.config import SQLiteSettings
from workhorse.backends.sqlite.connection import configure, connect
from workhorse.backends.sqlite.failures import is_busy
from workhorse.backends.sqlite.statements import QUERIES

_JOIN_TIMEOUT = 2.0


async def watch_data_version(settings: SQLiteSettings, wake: Callable[[str | None], None]) -> None:
    """Call ``wake(None)`` on the running loop once it watches, then after each commit
    made by any other connection to the file (this process's own backend included),
    until cancelled.
    Raises if the watching thread fails, so that whoever runs it notices."""
    loop = asyncio.get_running_loop()
    failed: asyncio.Future[None] = loop.create_future()
    stop = threading.Event()
    thread = threading.Thread(
        target=_poll,
        args=(settings, loop, wake, failed, stop),
        name="workhorse-sqlite-watch",
        daemon=True,
    )
    thread.start()
    try:
        await failed
    finally:
        stop.set()
        # The thread notices within one watch_interval.
        thread.join(_JOIN_TIMEOUT)


def _poll(
    settings: SQLiteSettings,
    loop: asyncio.AbstractEventLoop,
    wake: Callable[[str | None], None],
    failed: asyncio.Future[None],
    stop: threading.Event,
) -> None:
    try:
        conn = connect(settings)
        try:
            configure(conn, settings)
            _watch(conn, settings.watch_interval, loop, wake, stop)
        finally:
            conn.close()
    except BaseException as exc:
        if not stop.is_set():
            with contextlib.suppress(RuntimeError):  # the loop is closed
                loop.call_soon_threadsafe(_fail, failed, exc)


def _watch(
    conn: sqlite3.Connection,
    interval: float,
    loop: asyncio.AbstractEventLoop,
    wake: Callable[[str | None], None],
    stop: threading.Event,
) -> None:
    cursor = conn.cursor()
    seen = _data_version(cursor)
    # Whatever was committed before this baseline went unseen: wake once for it.
    loop.call_soon_threadsafe(wake, None)
    # time.sleep costs less CPU per tick than Event.wait; stopping waits one tick.
    while True:
        time.sleep(interval)
        if stop.is_set():
            return
        try:
            version = _data_version(cursor)
        except sqlite3.OperationalError as exc:
            if not is_busy(exc):
                raise
            version = None  # cannot tell: wake anyway, a spurious wake costs one probe
        if version != seen or version is None:
            seen = version if version is not None else seen
            loop.call_soon_threadsafe(wake, None)


def _data_version(cursor: sqlite3.Cursor) -> int:
    (version,) = cursor.execute(QUERIES["data_version"]).fetchone()
    return int(version)


def _fail(failed: asyncio.Future[None], exc: BaseException) -> None:
    if not failed.done():
        failed.set_exception(exc)
