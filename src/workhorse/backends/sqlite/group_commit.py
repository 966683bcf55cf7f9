"""Group commit: every write that arrives while another is in flight shares the next
transaction, so fifty concurrent enqueuers (or a claim, a batch of completions and a
heartbeat arriving together) pay for one fsync instead of one each.

Each write runs under its own SAVEPOINT: it stays all-or-nothing, and one that fails is
rolled back alone while the others commit.

A write says whether it must survive a power loss (``durable``): a batch that holds one
commits with the store's ``synchronous`` level, a batch of worker bookkeeping alone
(claims, heartbeats, outcomes) skips the fsync. In WAL mode the next durable commit's
fsync covers the frames before it, so all a power loss can take is the bookkeeping since
the last durable commit, which leases already recover from: those jobs run again.
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

    def __init__(self, thread: Thread) -> None:
        self._thread = thread
        self._lock = threading.Lock()
        self._pending: list[_Write] = []
        self._scheduled = False

    @property
    def idle(self) -> bool:
        """No write waits for the connection thread (read without the lock: a hint)."""
        return not self._scheduled

    async def submit(
        self, fn: Callable[[sqlite3.Connection], T], probe: Probe | None, *, durable: bool
    ) -> T | None:
        """``fn(conn)`` in the next group transaction; None without running it when
        ``probe`` finds no row."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T | None] = loop.create_future()
        with self._lock:
            self._pending.append(_Write(fn, probe, durable, future, loop))
            start = not self._scheduled
            self._scheduled = True
        if start:
            try:
                self._thread.post(self._drain)
            except BaseException as exc:
                # Closed: fail every write that counted on this drain, not just ours.
                with self._lock:
                    stranded, self._pending = self._pending, []
                    self._scheduled = False
                for write in stranded:
                    if write.future is not future:
                        _deliver(write, _Failed(exc))
                raise
        return await future

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
