"""Group commit: every write that arrives while another is in flight shares the next
transaction, so fifty concurrent enqueuers (or a claim, a batch of completions and a
heartbeat arriving together) pay for one fsync instead of one each.

Each write runs under its own SAVEPOINT: it stays all-or-nothing, and one that fails is
rolled back alone while the others commit.

A write says whether it must survive a power loss (``durable``): a batch that holds one
is fsynced after its commit when the store is FULL (see ``wal_sync``), a batch of worker
bookkeeping alone (claims, heartbeats, outcomes) skips the fsync. In WAL mode the next
durable commit's fsync covers the frames before it, so all a power loss can take is the
bookkeeping since the last durable commit, which leases already recover from: those jobs
run again.

Small durable writes (enqueues) may be committed on their own event loop's thread
instead (see ``inline``), still grouped: the first one of a loop iteration schedules a
commit at the end of that iteration, and every inline write submitted meanwhile (fifty
tasks enqueuing at once) shares it. A write submitted when nothing else waits to run in
its loop iteration has nobody to share with: it commits at once (and such writes let
the loop run its other callbacks after every millisecond they held it). A single
caller pays no thread hop and no wait for a group; many pay one fsync. When the
database is busy, the group goes to the connection thread instead. A claim (a write
behind a probe, without an fsync) takes the same shortcut when nothing else is ready to
run: an idle worker's claim, the one that a job's pickup latency waits for, crosses no
thread; a busy worker's claims share the connection thread's transactions as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from workhorse.backends.sqlite.failures import is_busy, translate
from workhorse.backends.sqlite.inline import GaveWay, InlineWriter

T = TypeVar("T")

Probe = tuple[str, dict[str, Any]]
"""A read (SQL and parameters) that must find a row for a write to be worth its lock."""


class Thread(Protocol):
    """The connection thread a queue feeds (``connection.Database``)."""

    path: str

    def post(self, work: Callable[[], None]) -> Future[None]: ...

    def read_now(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

    def write_now(self, fn: Callable[[sqlite3.Connection], T], *, durable: bool = True) -> T: ...


@dataclass(slots=True)
class _Write:
    fn: Callable[[sqlite3.Connection], Any]
    probe: Probe | None
    durable: bool
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


@dataclass(frozen=True, slots=True)
class _Failed:
    error: BaseException


class WriteQueue:
    """Writes waiting for the connection thread, committed together when it gets to them."""

    def __init__(self, thread: Thread, inline: InlineWriter) -> None:
        self._thread = thread
        self._inline = inline
        self._lock = threading.Lock()
        self._pending: list[_Write] = []
        self._scheduled = False
        self._inline_pending: dict[asyncio.AbstractEventLoop, list[_Write]] = {}

    async def submit(
        self,
        fn: Callable[[sqlite3.Connection], T],
        probe: Probe | None,
        *,
        durable: bool,
        inline: bool = False,
    ) -> T | None:
        """``fn(conn)`` in the next group transaction; None without running it when
        ``probe`` finds no row. ``inline`` (a small write) asks for this loop's thread,
        unless writes already wait for the connection thread: a durable write without
        a probe joins this loop's own group, committed there at the end of the
        iteration; any inline write is committed at once when nothing else is ready to
        run in the iteration, and otherwise goes to the connection thread."""
        loop = asyncio.get_running_loop()
        inline = inline and not self._scheduled
        # Nothing else about to run in this loop iteration (not even the commit of a
        # group forming in it): no write can join this one, so commit it now rather
        # than at the end of the iteration.
        if inline and _nothing_else_ready(loop):
            try:
                result = self._write_inline(fn, probe, durable=durable)
            except GaveWay:
                inline = False
            except BaseException as exc:
                raise translate(exc, self._thread.path)  # noqa: B904 (translate sets the cause)
            else:
                # A loop of enqueues must not starve its timers and sockets (a worker's
                # heartbeats, a server's requests); a turn per write would cost each
                # write a pass of the loop, a tenth of an enqueue.
                if self._inline.turn_due():
                    await asyncio.sleep(0)
                return result
        future: asyncio.Future[T | None] = loop.create_future()
        write = _Write(fn, probe, durable, future, loop)
        if inline and durable and probe is None:
            self._join_inline(write)
        else:
            self._send([write])
        return await future

    def _write_inline(
        self, fn: Callable[[sqlite3.Connection], T], probe: Probe | None, *, durable: bool
    ) -> T | None:
        if probe is not None and not self._inline.read(_probe(probe)):
            return None  # as on the connection thread: no write lock, no commit
        return self._inline.write(fn, durable=durable)

    def _send(self, writes: list[_Write]) -> None:
        """Queue ``writes`` for the connection thread's next group."""
        with self._lock:
            self._pending.extend(writes)
            start = not self._scheduled
            self._scheduled = True
        if not start:
            return
        try:
            self._thread.post(self._drain)
        except BaseException as exc:
            # Closed: fail every write that counted on this drain.
            with self._lock:
                stranded, self._pending = self._pending, []
                self._scheduled = False
            for write in stranded:
                _deliver(write, _Failed(exc))

    def _join_inline(self, write: _Write) -> None:
        with self._lock:
            group = self._inline_pending.get(write.loop)
            if group is None:
                self._inline_pending[write.loop] = [write]
            else:
                group.append(write)
        if group is None:  # first of this iteration: commit once the others joined
            write.loop.call_soon(self._drain_inline, write.loop)

    def _drain_inline(self, loop: asyncio.AbstractEventLoop) -> None:
        """On ``loop``'s thread: commit its inline group there, or hand it to the
        connection thread when the database (or that thread) is busy."""
        with self._lock:
            group = [w for w in self._inline_pending.pop(loop, ()) if not w.future.cancelled()]
        if not group:
            return
        if self._scheduled:  # keep the order of writes already waiting for the thread
            self._send(group)
            return
        outcomes: list[Any]
        try:
            outcomes = self._inline.write(lambda conn: _apply_all(conn, group))
        except GaveWay:
            self._send(group)
            return
        except BaseException as exc:
            outcomes = [_Failed(translate(exc, self._thread.path))] * len(group)
        for write, outcome in zip(group, outcomes, strict=True):
            _settle(write.future, outcome)

    def _drain(self) -> None:
        """Connection thread: commit everything pending now, in one transaction."""
        with self._lock:
            batch, self._pending = self._pending, []
            self._scheduled = False
        due: list[_Write] = []
        for write in batch:
            if write.future.cancelled():
                continue
            if write.probe is None:
                due.append(write)
                continue
            try:
                found = self._thread.read_now(_probe(write.probe))
            except BaseException as exc:
                _deliver(write, _Failed(translate(exc, self._thread.path)))
                continue
            if found:
                due.append(write)
            else:
                _deliver(write, None)  # nothing to do: no write lock, no fsync
        if not due:
            return
        outcomes: list[Any]
        try:
            durable = any(write.durable for write in due)
            outcomes = self._thread.write_now(lambda conn: _apply_all(conn, due), durable=durable)
        except BaseException as exc:
            outcomes = [_Failed(translate(exc, self._thread.path))] * len(due)
        for write, outcome in zip(due, outcomes, strict=True):
            _deliver(write, outcome)


def _nothing_else_ready(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether no other callback is waiting to run in this iteration of ``loop``.

    asyncio's loops keep those in ``_ready``, which no public API shows; a loop without
    it (uvloop) counts as busy, so its writes are always grouped."""
    ready = getattr(loop, "_ready", None)
    return ready is not None and not ready


def _probe(probe: Probe) -> Callable[[sqlite3.Connection], bool]:
    sql, params = probe
    return lambda conn: conn.execute(sql, params).fetchone() is not None


def _apply_all(conn: sqlite3.Connection, batch: list[_Write]) -> list[Any]:
    if len(batch) == 1:
        # Alone in its transaction: a failure rolls the transaction back.
        return [batch[0].fn(conn)]
    outcomes: list[Any] = []
    for write in batch:
        conn.execute("SAVEPOINT workhorse_write")
        try:
            outcomes.append(write.fn(conn))
        except Exception as exc:
            if is_busy(exc):
                raise  # the whole transaction is retried
            conn.execute("ROLLBACK TO workhorse_write")
            outcomes.append(_Failed(exc))
        conn.execute("RELEASE workhorse_write")
    return outcomes


def _deliver(write: _Write, outcome: Any) -> None:
    with contextlib.suppress(RuntimeError):  # that event loop is closed
        write.loop.call_soon_threadsafe(_settle, write.future, outcome)


def _settle(future: asyncio.Future[Any], outcome: Any) -> None:
    if future.done():
        return
    if isinstance(outcome, _Failed):
        future.set_exception(outcome.error)
    else:
        future.set_result(outcome)
