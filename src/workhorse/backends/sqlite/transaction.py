"""The one shape of every write transaction: ``BEGIN IMMEDIATE``, the work, ``COMMIT``,
and a rollback when anything fails in between."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def set_synchronous(conn: sqlite3.Connection, current: str, store: str, *, durable: bool) -> str:
    """Set ``conn``'s ``PRAGMA synchronous`` for its next transaction, and return it:
    ``store`` (the store's level) for a durable write, NORMAL (no fsync) for worker
    bookkeeping. ``current`` is the connection's level now; no statement when it is
    already right. Only between two transactions: SQLite refuses it inside one."""
    level = store if durable else "NORMAL"
    if level != current:
        conn.execute(f"PRAGMA synchronous = {level}")
    return level


def begin(conn: sqlite3.Connection) -> None:
    """Take the write lock up front (waiting in the busy handler, if it has a timeout).

    A deferred transaction that reads then writes can fail with SQLITE_BUSY_SNAPSHOT
    instead, which no busy handler retries."""
    conn.execute("BEGIN IMMEDIATE")


def commit(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """``fn(conn)`` in the transaction :func:`begin` opened, then commit; roll back and
    re-raise if either fails."""
    try:
        result = fn(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise
    return result
