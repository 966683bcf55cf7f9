"""One sqlite3 connection owned by one thread: the PRAGMAs every connection gets, short
``BEGIN IMMEDIATE`` write transactions, and retries while another process holds the lock.

sqlite3 blocks, so nothing here runs on the event loop: every call hops to the
connection's own thread (a single-thread executor), which also serialises the calls of
every event loop that shares this instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar, cast

from workhorse.backends.sqlite import transaction
from workhorse.backends.sqlite.binding import bind_none_directly
from workhorse.backends.sqlite.config import SQLiteSettings
from workhorse.backends.sqlite.failures import is_busy, translate
from workhorse.backends.sqlite.group_commit import WriteQueue
from workhorse.backends.sqlite.inline import InlineWriter
from workhorse.backends.sqlite.wal_sync import WalFile, open_wal
from workhorse.errors import BackendUnavailableError, ConfigurationError

T = TypeVar("T")

log = logging.getLogger("workhorse.backends.sqlite")

MIN_SQLITE = (3, 35, 0)
"""RETURNING arrived in SQLite 3.35."""

_WARN_EVERY = 10.0
"""Seconds of waiting on a locked database between two WARNING logs (DEBUG otherwise)."""
CACHE_KIB = 65536
"""Page cache per connection; SQLite allocates it as pages are read."""
WAL_LIMIT_BYTES = 64 * 1024 * 1024
CHECKPOINT_WAIT = 0.05
"""Seconds a checkpoint for the inline writers waits for writers and readers to finish;
writers queue behind it meanwhile."""


class Database:
    """The connection of one backend instance and the thread that uses it."""

    def __init__(self, settings: SQLiteSettings) -> None:
        bind_none_directly()  # before any connection of this store binds a NULL
        self.settings = settings
        self.path = settings.path
        self._inline = InlineWriter(settings, self._checkpoint_soon)
        self._writes = WriteQueue(self, self._inline)
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._wal: WalFile | None = None

    # -- lifecycle (any thread, via the event loop) ------------------------------------

    async def open(self) -> None:
        """Open the connection (idempotent); creates the file's folder if missing."""
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="workhorse-sqlite")
        self._inline.reopen()
        try:
            await self.call(self._open_in_thread)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Close the connection and stop its thread (idempotent)."""
        with self._lock:
            executor, self._executor = self._executor, None
        self._inline.close()
        if executor is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(executor, self._close_in_thread)
        finally:
            executor.shutdown(wait=False)

    # -- running work on the connection's thread ---------------------------------------

    async def call(self, work: Callable[[], T]) -> T:
        """Run ``work()`` on the connection's thread (it may use ``read_now``/``write_now``)."""
        submitted = self.post(work)
        try:
            return await asyncio.wrap_future(submitted)
        except sqlite3.Error as exc:
            replacement = translate(exc, self.path)
            if replacement is exc:
                raise
            raise replacement from exc

    def post(self, work: Callable[[], T]) -> Future[T]:
        """Queue ``work()`` on the connection's thread without waiting for it."""
        try:
            return self._require().submit(work)
        except RuntimeError as exc:  # shut down by a concurrent close()
            raise self._closed() from exc

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run the read ``fn(conn)`` (autocommit statements) on the connection's thread."""
        return await self.call(lambda: self.read_now(fn))

    def write(
        self,
        fn: Callable[[sqlite3.Connection], T],
        *,
        durable: bool = True,
        inline: bool = False,
    ) -> Coroutine[Any, Any, T]:
        """Run ``fn(conn)`` in a ``BEGIN IMMEDIATE`` transaction, retried while locked,
        shared with the writes that arrive meanwhile (group commit, one savepoint each).

        ``durable=False`` is for worker bookkeeping that leases recover if a power loss
        takes it: alone in its transaction, it commits without an fsync. ``inline=True``
        (a small durable write) is committed on the calling thread, grouped with the
        inline writes of the same loop iteration, when the database is free at once
        (see ``group_commit`` and ``inline``). The write's own coroutine, not one
        around it: an enqueue's path is short."""
        write = self._writes.submit(fn, None, durable=durable, inline=inline)
        return cast("Coroutine[Any, Any, T]", write)

    async def write_if(
        self,
        probe: str,
        params: dict[str, Any],
        fn: Callable[[sqlite3.Connection], T],
        *,
        durable: bool = True,
        inline: bool = False,
    ) -> T | None:
        """``write(fn)``, but only if the read ``probe`` finds a row: an idle check costs
        no write lock (and no fsync). None when the probe found nothing. ``inline`` as
        for :meth:`write`: on the calling thread when nothing else waits to run there."""
        return await self._writes.submit(fn, (probe, params), durable=durable, inline=inline)

    def _checkpoint_soon(self, done: Callable[[], None]) -> None:
        # The checkpoint an inline connection could not finish at once (or after a slow
        # one): the connection thread makes it, while the inline connections give way
        # (``done`` lets them write again). FULL holds this process's other writers and
        # those of other processes off while it copies, so that the next writer starts
        # the WAL over; it waits CHECKPOINT_WAIT at most for them and for readers, then
        # copies what it can without blocking (and is not retried: the next one comes
        # CHECKPOINT_EVERY commits later).
        def checkpoint() -> None:
            try:
                with contextlib.suppress(sqlite3.Error, BackendUnavailableError):
                    _checkpoint_full(self._connection(), self.settings)
            finally:
                done()

        try:
            self.post(checkpoint)
        except BackendUnavailableError:
            done()

    # -- on the connection's thread ----------------------------------------------------

    def read_now(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(conn)``, retried while the database is busy. Connection thread only."""
        conn = self._connection()
        return self._retrying(lambda: fn(conn))

    def write_now(self, fn: Callable[[sqlite3.Connection], T], *, durable: bool = True) -> T:
        """``fn(conn)`` in a write transaction, retried whole while the database is
        locked; on disk when this returns if ``durable`` and the store fsyncs (see
        ``wal_sync``), else committed without an fsync. Connection thread only."""
        conn = self._connection()
        result = self._retrying(lambda: _transaction(conn, fn))
        if durable and self._wal is not None:
            self._wal.sync()
        return result

    def _retrying(self, attempt: Callable[[], T]) -> T:
        # busy_timeout already waited inside SQLite; what escapes it (WAL recovery,
        # a checkpoint, a long writer elsewhere) is retried with jittered backoff.
        started = time.monotonic()
        retries = 0
        warned = 0.0
        while True:
            try:
                return attempt()
            except sqlite3.OperationalError as exc:
                if not is_busy(exc):
                    raise
                waited = time.monotonic() - started
                if waited >= self.settings.lock_timeout:
                    raise BackendUnavailableError(
                        f"SQLite store {self.path!r} stayed locked for "
                        f"{waited:.1f}s (lock_timeout={self.settings.lock_timeout}s): {exc}"
                    ) from exc
                retries += 1
                level = logging.DEBUG
                if waited - warned >= _WARN_EVERY:
                    level, warned = logging.WARNING, waited
                log.log(
                    level,
                    "SQLite store %s is locked (%s); retry %d after %.1fs",
                    self.path,
                    exc,
                    retries,
                    waited,
                )
                backoff = min(0.001 * 2 ** min(retries, 7), 0.1)
                time.sleep(backoff * random.uniform(0.5, 1.5))

    def _require(self) -> ThreadPoolExecutor:
        executor = self._executor
        if executor is None:
            raise self._closed()
        return executor

    def _closed(self) -> BackendUnavailableError:
        return BackendUnavailableError(
            f"SQLite store {self.path!r} is not connected: call connect() first"
        )

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise BackendUnavailableError(f"SQLite store {self.path!r} is closed")
        return self._conn

    def _open_in_thread(self) -> None:
        if self._conn is not None:
            return
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise ConfigurationError(
                f"workhorse needs SQLite >= {'.'.join(map(str, MIN_SQLITE))}, "
                f"this Python has {sqlite3.sqlite_version}"
            )
        parent = Path(self.path).parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BackendUnavailableError(
                f"cannot create the folder of SQLite store {self.path!r}: {exc}"
            ) from exc
        conn = connect(self.settings)
        try:
            self._retrying(lambda: configure(conn, self.settings))
            self._wal = open_wal(conn, self.settings)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _close_in_thread(self) -> None:
        conn, self._conn = self._conn, None
        wal, self._wal = self._wal, None
        if wal is not None:
            wal.close()
        if conn is None:
            return
        with contextlib.suppress(sqlite3.Error):
            conn.execute("PRAGMA optimize")
        conn.close()


def connect(settings: SQLiteSettings) -> sqlite3.Connection:
    """A new autocommit connection (transactions are explicit) to the store's file."""
    try:
        return sqlite3.connect(
            settings.path,
            timeout=settings.busy_timeout,
            isolation_level=None,
            cached_statements=256,
        )
    except sqlite3.Error as exc:
        raise BackendUnavailableError(f"cannot open SQLite store {settings.path!r}: {exc}") from exc


def configure(conn: sqlite3.Connection, settings: SQLiteSettings) -> None:
    """The PRAGMAs every connection gets."""
    conn.execute(f"PRAGMA busy_timeout = {round(settings.busy_timeout * 1000)}")
    (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
    if str(mode).lower() != "wal":
        raise BackendUnavailableError(
            f"SQLite store {settings.path!r} cannot use write-ahead logging "
            f"(journal_mode stayed {mode!r}); put it on a local disk"
        )
    # A durable commit fsyncs the WAL itself, after the commit (see wal_sync).
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    # The default 2 MiB page cache rereads a busy queue's pages on every claim.
    conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    conn.execute("PRAGMA temp_store = MEMORY")
    # After one huge transaction, give the disk back instead of keeping a huge WAL file.
    conn.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT_BYTES}")


def _checkpoint_full(conn: sqlite3.Connection, settings: SQLiteSettings) -> None:
    conn.execute(f"PRAGMA busy_timeout = {round(CHECKPOINT_WAIT * 1000)}")
    try:
        conn.execute("PRAGMA wal_checkpoint(FULL)").fetchall()
    finally:  # back to what configure() set
        conn.execute(f"PRAGMA busy_timeout = {round(settings.busy_timeout * 1000)}")


def _transaction(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    transaction.begin(conn)
    return transaction.commit(conn, fn)
