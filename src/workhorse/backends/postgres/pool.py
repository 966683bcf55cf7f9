"""Pooled connections that survive a server that dropped them.

When PostgreSQL restarts or an operator runs ``pg_terminate_backend``, every idle pooled
connection is dead but the pool does not know until it is used. Before handing one out,
the pool runs a cheap local probe (no round trip) that notices the server's goodbye; on
a dead connection the whole pool is renewed, since whatever killed one connection
(a restart, a mass termination) most likely killed its siblings. An operation that is
safe to repeat runs once more when its connection dies under it; anything else, and an
unreachable server, raise :class:`~workhorse.errors.BackendUnavailableError`. A pool that
could not reach the server is replaced by a fresh one, which reconnects as soon as the
server is back instead of waiting out a long backoff.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import orjson
import psycopg
from psycopg import pq
from psycopg.adapt import AdaptersMap
from psycopg.rows import DictRow
from psycopg.types.json import set_json_loads
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from workhorse.backends.postgres.config import PostgresConfig
from workhorse.backends.postgres.sessions import AsyncConnSession
from workhorse.errors import BackendUnavailableError

T = TypeVar("T")
Connection = psycopg.AsyncConnection[Any]

# The server's ways of saying "this connection is gone": class 08 (connection
# exception), admin/crash shutdown and "cannot connect now" (57P01-57P03).
_DISCONNECT_STATES = frozenset({"57P01", "57P02", "57P03"})


def is_disconnect(exc: BaseException) -> bool:
    """True when ``exc`` means the connection or server is gone (rather than a problem
    with the statement)."""
    if isinstance(exc, PoolTimeout):
        return True
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = exc.sqlstate
    return state is None or state.startswith("08") or state in _DISCONNECT_STATES


def first_line(exc: BaseException) -> str:
    """The gist of an error (libpq messages run over several lines)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _adapters() -> AdaptersMap:
    adapters = AdaptersMap(psycopg.adapters)
    set_json_loads(orjson.loads, adapters)
    return adapters


def is_alive(conn: Connection) -> bool:
    """Whether an idle connection still has a server behind it, without a round trip.

    A terminated server leaves a final error message and then end-of-file in the
    socket: the first read takes the message, the second meets the end."""
    pgconn = conn.pgconn
    try:
        pgconn.consume_input()
        pgconn.consume_input()
    except psycopg.OperationalError:
        return False
    return pgconn.status == pq.ConnStatus.OK


class Pool:
    """A psycopg pool whose failures read as workhorse errors."""

    def __init__(self, config: PostgresConfig) -> None:
        self._config = config
        self._pool: AsyncConnectionPool[Connection] | None = None
        self._failed: AsyncConnectionPool[Connection] | None = None
        self._retired: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        """Open the pool and wait for its first connection."""
        if self._pool is not None:
            return
        pool = self._new_pool()
        try:
            await pool.open(wait=True, timeout=self._config.timeout)
        except PoolTimeout as exc:
            await pool.close()
            raise self._unavailable(exc) from exc
        self._pool = pool

    async def close(self) -> None:
        """Close every pooled connection (idempotent)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
        await asyncio.gather(*self._retired)

    async def run(self, work: Callable[[Connection], Awaitable[T]], *, idempotent: bool) -> T:
        """Run ``work`` on a pooled connection; once more on a fresh connection if the
        first died under it and ``idempotent`` says repeating is harmless."""
        attempts = 2 if idempotent else 1
        for attempt in range(1, attempts + 1):
            pool = await self._current()
            try:
                async with pool.connection() as conn:
                    return await work(conn)
            except PoolTimeout as exc:
                self._failed = pool
                raise self._unavailable(exc) from exc
            except psycopg.OperationalError as exc:
                if not is_disconnect(exc):
                    raise
                if attempt == attempts:
                    raise self._unavailable(exc) from exc
                await pool.drain()
        raise AssertionError("unreachable")  # pragma: no cover

    async def fetch(
        self, query: str, params: Mapping[str, Any], *, idempotent: bool = True
    ) -> list[DictRow]:
        """Run one statement and return its rows (see :meth:`run`)."""
        return await self.run(
            lambda conn: AsyncConnSession(conn).fetch(query, params), idempotent=idempotent
        )

    async def _current(self) -> AsyncConnectionPool[Connection]:
        pool = self._require()
        if pool is not self._failed:
            return pool
        # A pool that could not connect retries ever more slowly (up to minutes apart),
        # even once the server is back. Meanwhile one plain connection tells whether the
        # server is back: if not, fail at once; if so, swap in a pool that connects now.
        try:
            probe = await psycopg.AsyncConnection.connect(self._config.conninfo)
        except psycopg.OperationalError as exc:
            raise self._unavailable(exc) from exc
        await probe.close()
        fresh = self._new_pool()
        await fresh.open(wait=False)
        if self._pool is not pool:  # replaced or closed meanwhile
            await fresh.close()
            return self._require()
        self._pool = fresh
        retiring = asyncio.create_task(pool.close())
        self._retired.add(retiring)
        retiring.add_done_callback(self._retired.discard)
        return fresh

    def _new_pool(self) -> AsyncConnectionPool[Connection]:
        pool: AsyncConnectionPool[Connection]

        async def check(conn: Connection) -> None:
            if not is_alive(conn):
                # Close the idle connections and open new ones (quietly, unlike a check
                # of each); connections in use are replaced when they come back.
                await pool.drain()
                raise psycopg.OperationalError("the server closed this pooled connection")

        pool = AsyncConnectionPool(
            self._config.conninfo,
            kwargs={"autocommit": True, "context": _adapters()},
            check=check,
            min_size=self._config.min_size,
            max_size=self._config.max_size,
            timeout=self._config.timeout,
            name=f"workhorse:{self._config.schema}",
            open=False,
        )
        return pool

    def _require(self) -> AsyncConnectionPool[Connection]:
        if self._pool is None:
            raise BackendUnavailableError(
                f"the PostgreSQL store at {self._config.target} is not connected: "
                "call connect() first"
            )
        return self._pool

    def _unavailable(self, exc: BaseException) -> BackendUnavailableError:
        return BackendUnavailableError(
            f"PostgreSQL at {self._config.target} is unavailable ({first_line(exc)})"
        )
