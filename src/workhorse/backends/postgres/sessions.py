"""One connection seen as a session that runs statements and COPYs rows, whether it is
an async psycopg connection or a sync one (whose calls then run in a thread)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

import psycopg
from psycopg import pq
from psycopg.rows import DictRow, dict_row

Row = tuple[Any, ...]


class Session(Protocol):
    """What the insert needs from a connection."""

    async def fetch(self, query: str, params: Mapping[str, Any]) -> list[DictRow]:
        """Run one statement; its rows as dicts (none for a statement without rows)."""
        ...

    async def copy(self, statement: str, rows: Iterable[Row]) -> None:
        """Stream ``rows`` into a ``COPY ... FROM STDIN`` statement."""
        ...

    def atomic(self) -> AbstractAsyncContextManager[None]:
        """Make the statements inside all-or-nothing: they join the open transaction
        when there is one, else run in a transaction of their own."""
        ...


class AsyncConnSession:
    """A session on an async psycopg connection."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.conn = conn

    async def fetch(self, query: str, params: Mapping[str, Any]) -> list[DictRow]:
        async with self.conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query, params)
            return await cur.fetchall() if _has_rows(cur) else []

    async def copy(self, statement: str, rows: Iterable[Row]) -> None:
        async with self.conn.cursor() as cur, cur.copy(statement) as copy:
            for row in rows:
                await copy.write_row(row)

    @asynccontextmanager
    async def atomic(self) -> AsyncIterator[None]:
        if _in_transaction(self.conn):
            yield
        else:
            async with self.conn.transaction():
                yield


class ThreadedConnSession:
    """A session on a sync psycopg connection; each call runs in a worker thread so the
    event loop never blocks on the network."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    async def fetch(self, query: str, params: Mapping[str, Any]) -> list[DictRow]:
        return await asyncio.to_thread(self._fetch, query, params)

    def _fetch(self, query: str, params: Mapping[str, Any]) -> list[DictRow]:
        with self.conn.cursor(row_factory=dict_row) as cur:
            cur.execute(query, params)
            return cur.fetchall() if _has_rows(cur) else []

    async def copy(self, statement: str, rows: Iterable[Row]) -> None:
        await asyncio.to_thread(self._copy, statement, rows)

    def _copy(self, statement: str, rows: Iterable[Row]) -> None:
        with self.conn.cursor() as cur, cur.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)

    @asynccontextmanager
    async def atomic(self) -> AsyncIterator[None]:
        if _in_transaction(self.conn):
            yield
            return
        await asyncio.to_thread(self.conn.execute, "BEGIN")
        try:
            yield
        except BaseException:
            await asyncio.to_thread(self.conn.execute, "ROLLBACK")
            raise
        await asyncio.to_thread(self.conn.execute, "COMMIT")


def _has_rows(cur: psycopg.AsyncCursor[Any] | psycopg.Cursor[Any]) -> bool:
    # Whether the statement returned rows (a SELECT, a RETURNING), which fetchall
    # requires. cur.description would say the same, at the price of building a Column
    # object per column on every call.
    result = cur.pgresult
    return result is not None and result.status == pq.ExecStatus.TUPLES_OK


def _in_transaction(conn: psycopg.AsyncConnection[Any] | psycopg.Connection[Any]) -> bool:
    # A connection out of autocommit opens a transaction at its first statement, which
    # its owner commits: statements run there already share one transaction.
    return not conn.autocommit or conn.info.transaction_status != pq.TransactionStatus.IDLE
