"""The one shape of every write transaction: ``BEGIN IMMEDIATE``, the work, ``COMMIT``,
and a rollback when anything fails in between."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


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
