"""Small writes on the caller's own thread, when the database is free at once.

A write sent to the connection thread crosses two threads: the hop there and the wake-up
back cost more than a one-row insert itself. So a small write (an enqueue, an idle
worker's claim) first tries its own connection on the calling thread, whose
``busy_timeout`` is zero: either it takes the write lock at once and commits there, or
it gives way and the write goes the usual road, through the connection thread and its
group commit. Nothing waits on the calling thread for another writer, ever. A claim
commits without an fsync (``durable=False``), as it would on the connection thread.

What the calling thread still pays is the statement and a durable commit's fsync. Where that
is slow (a network disk, a saturated device), running on the event loop would stall
it: when the running average of inline writes exceeds ``SLOW_WRITE``, writes go back to
the connection thread for ``COOL_DOWN`` seconds. A slow average, to which a write adds
``STALL`` seconds at most, so that writes merely preempted, or whose fsyncs waited
behind the disk's other work, do not count as a slow disk: it takes twelve to fourteen
slow writes in a row. (On a VM whose fsyncs take 0.3 ms, one of 9 or 15 ms now and
then, or a few of 4 ms close together, sent the writes of the next five seconds through
the thread, at half to two thirds the rate, while every write counted whole with a
weight of a fifth.)

SQLite never checkpoints these connections at a moment of its own choosing
(``wal_autocheckpoint`` is 0): every ``CHECKPOINT_EVERY`` commits the writer copies the
WAL back into the database itself, right after its commit, while nothing of its own
writes. It waits for no one (another writer or a reader makes it stop where it is) and
takes a fraction of a millisecond on a local disk (0.43-0.44 ms measured). When it could
not copy every frame, or took longer than ``SLOW_CHECKPOINT`` (a checkpoint copies more
than a commit writes, and fsyncs the database file: too long for an event loop on a slow
disk), the connection thread makes it: the inline writers give way to it until it is
done, and checkpoints stay that thread's for ``COOL_DOWN`` seconds after a slow one. A
checkpoint that writers keep outrunning never lets the WAL start over: the file would
grow by every commit, and every fsync would have to write its new size too. (Asking the
thread every time cost the enqueue that came next about a millisecond: it crossed to the
thread and waited there behind the checkpoint. Inline, 2.3% more sequential enqueues a
second, eight alternating pairs of 20,000.)
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from workhorse.backends.sqlite import transaction
from workhorse.backends.sqlite.config import SQLiteSettings
from workhorse.backends.sqlite.failures import is_busy
from workhorse.backends.sqlite.wal_sync import WalFile, open_wal
from workhorse.errors import BackendUnavailableError

T = TypeVar("T")

SLOW_WRITE = 0.002
"""Seconds inline writes may take on average before writes go back to the connection
thread."""
SMOOTHING = 0.05
"""Weight of the newest write in the running average."""
STALL = 2 * SLOW_WRITE
"""Seconds a write counts for in the running average at most, however long it took."""
COOL_DOWN = 5.0
"""Seconds writes stay on the connection thread once inline writes were found slow."""
CHECKPOINT_EVERY = 256
"""Inline commits between two checkpoints."""
SLOW_CHECKPOINT = SLOW_WRITE
"""Seconds an inline checkpoint may take before checkpoints go to the connection thread
for ``COOL_DOWN`` seconds."""
TURN_EVERY = 0.001
"""Seconds inline writes may hold their thread's event loop, in all, before it is let run
its other callbacks (an idle asyncio loop polls its sockets in whole milliseconds too)."""
CACHE_KIB = 2048
"""Page cache of an inline connection: it writes a few pages per commit."""


class GaveWay(Exception):
    """The database was busy (or inline writes are cooling down): use the thread."""


class InlineWriter:
    """One connection per calling thread, opened on first use, closed with the store."""

    def __init__(
        self, settings: SQLiteSettings, checkpoint: Callable[[Callable[[], None]], None]
    ) -> None:
        self._settings = settings
        self._checkpoint = checkpoint
        """Asks the connection thread for a checkpoint; calls its argument once done."""
        self._checkpointing = False
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[tuple[sqlite3.Connection, WalFile | None]] = []
        self._closed = False
        self._resume_at = 0.0
        self._average = 0.0
        self._commits = 0
        self._thread_checkpoints_until = 0.0
        """Until then (monotonic), checkpoints are the connection thread's: one was slow."""

    def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn(conn)``, autocommit reads on this thread; ``GaveWay`` whenever
        :meth:`write` would give way, or if a lock hides the database."""
        self._require_open()
        conn = self._connection()
        try:
            return fn(conn)
        except sqlite3.OperationalError as exc:
            if is_busy(exc):
                raise GaveWay from exc
            raise

    def write(self, fn: Callable[[sqlite3.Connection], T], *, durable: bool = True) -> T:
        """``fn(conn)`` in a transaction committed on this thread; ``GaveWay`` if another
        connection holds the write lock, a checkpoint is under way or inline writes are
        cooling down. A durable write is on disk when this returns (see ``wal_sync``);
        ``durable=False`` commits without an fsync (worker bookkeeping, as on the
        connection thread)."""
        self._require_open()
        conn = self._connection()
        started = time.perf_counter()
        try:
            transaction.begin(conn)  # busy_timeout 0: never waits
        except sqlite3.OperationalError as exc:
            if is_busy(exc):
                raise GaveWay from exc
            raise
        result = transaction.commit(conn, fn)
        if durable and self._local.wal is not None:
            self._local.wal.sync()
        elapsed = time.perf_counter() - started
        self._local.held += elapsed
        self._average += (min(elapsed, STALL) - self._average) * SMOOTHING
        if self._average > SLOW_WRITE:
            self._resume_at = time.monotonic() + COOL_DOWN
            self._average = 0.0  # after the cool-down, measure afresh
        self._commits += 1
        if self._commits % CHECKPOINT_EVERY == 0:
            self._checkpoint_after_commit(conn)
        return result

    def _checkpoint_after_commit(self, conn: sqlite3.Connection) -> None:
        """Copy the WAL back on this thread if nothing is in the way and it is quick;
        otherwise ask the connection thread (see the module doc)."""
        if time.monotonic() >= self._thread_checkpoints_until:
            started = time.perf_counter()
            try:
                complete = _checkpoint_without_waiting(conn)
            except sqlite3.Error:
                complete = False
            elapsed = time.perf_counter() - started
            self._local.held += elapsed
            if elapsed > SLOW_CHECKPOINT:
                self._thread_checkpoints_until = time.monotonic() + COOL_DOWN
            if complete:
                return
        self._checkpointing = True
        self._checkpoint(self._checkpoint_done)

    def turn_due(self) -> bool:
        """Whether this thread's inline writes have held its event loop for
        ``TURN_EVERY`` since this last said so: then the caller lets the loop run."""
        if self._local.held < TURN_EVERY:
            return False
        self._local.held = 0.0
        return True

    def _require_open(self) -> None:
        if self._closed or self._checkpointing or time.monotonic() < self._resume_at:
            raise GaveWay

    def _checkpoint_done(self) -> None:
        self._checkpointing = False

    def close(self) -> None:
        """Close every inline connection (each thread opens a new one if used again
        after the store reopens)."""
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn, wal in connections:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
            if wal is not None:
                wal.close()

    def reopen(self) -> None:
        """Allow inline writes again after :meth:`close`."""
        with self._lock:
            self._closed = False
            self._checkpointing = False
            self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        conn = sqlite3.connect(
            self._settings.path,
            timeout=0,
            isolation_level=None,
            check_same_thread=False,  # closed by whichever thread closes the store
            cached_statements=64,
        )
        try:
            conn.execute("PRAGMA synchronous = NORMAL")  # durable commits: see wal_sync
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
            wal = open_wal(conn, self._settings)
        except (sqlite3.Error, BackendUnavailableError) as exc:
            conn.close()
            raise GaveWay from exc
        with self._lock:
            if self._closed:
                conn.close()
                raise GaveWay
            self._connections.append((conn, wal))
        self._local.conn = conn
        self._local.wal = wal
        self._local.held = 0.0  # seconds its writes held the loop (see turn_due)
        return conn


def _checkpoint_without_waiting(conn: sqlite3.Connection) -> bool:
    """A FULL checkpoint on ``conn``, whose busy timeout is zero: where another writer or
    a reader is in the way, it copies what it can, as a PASSIVE one does. Whether it
    copied every frame (then the next writer starts the WAL over)."""
    busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(FULL)").fetchone()
    return not busy and frames == copied
