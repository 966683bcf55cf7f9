"""Pooled connections that survive a server that dropped them.

When PostgreSQL restarts or an operator runs ``pg_terminate_backend``, every idle pooled
connection is dead but the pool does not know until it is used. Before handing one out,
the pool runs a cheap local probe (no round trip) that notices the server's goodbye; on
a dead connection the whole pool is renewed, since whatever killed one connection
(a restart, a mass termination) most likely killed its siblings.

A connection that dies while a statement runs leaves its outcome unknown: the server may
have committed before the reply was lost. Each call says what may happen then
(:meth:`Pool.run`): work that is safe to repeat runs once more on a fresh connection;
work with a way to find out what happened runs that instead, once the server is done
with the lost session; anything else raises
:class:`~workhorse.errors.BackendUnavailableError` saying the outcome is unknown.

Waiting too long for a connection has two causes, told apart: every connection of the
pool busy (the pool is exhausted: a clear error, and the pool stays as it is), or the
pool unable to open one (the server is unreachable). Only then is the pool replaced by a
fresh one, once a probe connection gets through, so that it reconnects at once instead
of waiting out a long backoff.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
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
from workhorse.backends.postgres.recent_first import RecentFirstPool
from workhorse.backends.postgres.sessions import AsyncConnSession
from workhorse.errors import BackendUnavailableError

T = TypeVar("T")
Connection = psycopg.AsyncConnection[Any]
Work = Callable[[Connection], Awaitable[T]]

# The server's ways of saying "this connection is gone": class 08 (connection
# exception), admin/crash shutdown and "cannot connect now" (57P01-57P03).
_DISCONNECT_STATES = frozenset({"57P01", "57P02", "57P03"})

_SETTLED = """
SELECT NOT EXISTS (
    SELECT 1 FROM pg_stat_activity
    WHERE pid = %(pid)s AND state IN ('active', 'idle in transaction')
) AS settled
"""
_SETTLE_POLL = 0.02


def is_disconnect(exc: BaseException) -> bool:
    """True when ``exc`` means the connection or server is gone (rather than a problem
    with the statement)."""
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


class _Lost(Exception):
    """The connection died while work ran on it (server session ``pid``)."""

    def __init__(self, error: psycopg.OperationalError, pid: int | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.pid = pid


async def _configure(conn: Connection) -> None:
    # Every workhorse query reads an index in order up to a LIMIT. Without statistics (a
    # table filled faster than autovacuum analyzes it: a fresh store, a burst of
    # enqueues) the planner takes a bitmap scan instead and reads and sorts every queued
    # job on each claim; a cached generic plan would keep doing so.
    await conn.execute("SET enable_bitmapscan = off")


class Pool:
    """A psycopg pool whose failures read as workhorse errors."""

    def __init__(self, config: PostgresConfig) -> None:
        self._config = config
        self._pool: AsyncConnectionPool[Connection] | None = None
        self._failed: AsyncConnectionPool[Connection] | None = None
        self._retired: set[asyncio.Task[None]] = set()
        self._busy: Counter[AsyncConnectionPool[Connection]] = Counter()
        """Connections each pool has handed out and not had back."""
        self._reserved: dict[str, int] = {}
        """Connections reserved by their users (workers), when the size is not fixed."""

    @property
    def max_size(self) -> int:
        """The most connections the pool opens: ``max_size`` when the configuration
        sets it, else the default or what the reservations add up to, if more."""
        if self._config.max_size is not None:
            return self._config.max_size
        return max(self._config.default_max_size, sum(self._reserved.values()))

    async def reserve(self, user: str, connections: int) -> None:
        """Size the pool for ``connections`` used by ``user`` (on top of other users'),
        unless the configuration fixes ``max_size``. Reserving again replaces."""
        self._reserved[user] = connections
        await self._resize()

    async def unreserve(self, user: str) -> None:
        """Forget ``user``'s reservation (idempotent)."""
        if self._reserved.pop(user, None) is not None:
            await self._resize()

    async def _resize(self) -> None:
        if self._pool is not None and self._pool.max_size != self.max_size:
            await self._pool.resize(self._config.min_size, self.max_size)

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

    async def run(
        self,
        work: Work[T],
        *,
        idempotent: bool = False,
        recover: Work[T] | None = None,
    ) -> T:
        """Run ``work`` on a pooled connection.

        If the connection dies under it (the outcome is then unknown), ``idempotent``
        work runs once more on a fresh connection. Otherwise ``recover``, when given,
        runs on a fresh connection once the server has finished with the lost session
        (committed or rolled back its transaction), to find out what happened and finish
        the job. Without either, :class:`BackendUnavailableError` says the outcome is
        unknown."""
        try:
            return await self._attempt(work)
        except _Lost as lost:
            if idempotent:
                again = work
            elif recover is not None:
                again = self._after_settling(lost.pid, recover)
            else:
                raise self._unknown_outcome(lost.error) from lost.error
        try:
            return await self._attempt(again)
        except _Lost as lost:
            raise self._unavailable(lost.error) from lost.error

    async def fetch(
        self, query: str, params: Mapping[str, Any], *, idempotent: bool = False
    ) -> list[DictRow]:
        """Run one statement and return its rows; repeated after a lost connection only
        when ``idempotent`` (see :meth:`run`)."""
        return await self.run(
            lambda conn: AsyncConnSession(conn).fetch(query, params), idempotent=idempotent
        )

    async def fetch_alone(self, query: str, params: Mapping[str, Any]) -> list[DictRow]:
        """Run one statement on a connection of its own, outside the pool (which may be
        closed): a server that does not answer fails at once, after libpq's
        ``connect_timeout``, with its reason, where a pool would retry quietly until its
        own timeout and then report only that. A read: a connection that dies after it
        was made (terminated by an operator, a failover) gets one more try."""
        for attempt in (1, 2):
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self._config.conninfo, autocommit=True, context=_adapters()
                )
            except psycopg.OperationalError as exc:
                raise self._unavailable(exc) from None
            try:
                return await AsyncConnSession(conn).fetch(query, params)
            except psycopg.OperationalError as exc:
                if attempt == 2 or not is_disconnect(exc):
                    raise self._unavailable(exc) from None
            finally:
                await conn.close()
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(self, work: Work[T]) -> T:
        pool = await self._current()
        pid: int | None = None
        try:
            # getconn/putconn rather than pool.connection(): that context also enters the
            # connection's own, whose exit commits (a no-op on these autocommit
            # connections, but a lock and a wait each time), and its generator costs as
            # much again. putconn rolls back whatever work left open.
            conn = await pool.getconn()
            self._busy[pool] += 1
            try:
                pid = conn.pgconn.backend_pid
                return await work(conn)
            finally:
                self._busy[pool] -= 1
                if not self._busy[pool]:
                    del self._busy[pool]
                await pool.putconn(conn)
        except PoolTimeout as exc:
            if self._busy[pool] >= pool.max_size:
                raise self._exhausted(pool) from exc
            # The pool could not open a connection: the server is likely down.
            self._failed = pool
            raise self._unavailable(exc) from exc
        except psycopg.OperationalError as exc:
            if not is_disconnect(exc):
                raise
            # Whatever killed this connection likely killed its idle siblings too.
            await pool.drain()
            raise _Lost(exc, pid) from exc

    def _after_settling(self, pid: int | None, recover: Work[T]) -> Work[T]:
        async def settled_then_recover(conn: Connection) -> T:
            if pid is not None:
                await self._await_settled(conn, pid)
            return await recover(conn)

        return settled_then_recover

    async def _await_settled(self, conn: Connection, pid: int) -> None:
        """Wait until server session ``pid`` runs no statement and holds no open
        transaction: what it did is then committed or rolled back for good."""
        deadline = time.monotonic() + self._config.timeout
        session = AsyncConnSession(conn)
        while not (await session.fetch(_SETTLED, {"pid": pid}))[0]["settled"]:
            if time.monotonic() > deadline:
                raise BackendUnavailableError(
                    f"PostgreSQL at {self._config.target}: a lost connection's statement "
                    f"was still running after {self._config.timeout:g}s; its outcome is unknown"
                )
            await asyncio.sleep(_SETTLE_POLL)

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

        pool = RecentFirstPool(
            self._config.conninfo,
            kwargs={"autocommit": True, "context": _adapters()},
            configure=_configure,
            check=check,
            min_size=self._config.min_size,
            max_size=self.max_size,
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

    def _unknown_outcome(self, exc: BaseException) -> BackendUnavailableError:
        return BackendUnavailableError(
            f"PostgreSQL at {self._config.target}: the connection was lost during the call "
            f"({first_line(exc)}); it may or may not have taken effect"
        )

    def _exhausted(self, pool: AsyncConnectionPool[Connection]) -> BackendUnavailableError:
        return BackendUnavailableError(
            f"the connection pool to PostgreSQL at {self._config.target} is exhausted: all "
            f"{pool.max_size} connections (max_size) stayed busy for "
            f"{self._config.timeout:g}s (timeout); raise max_size or share the pool among "
            "fewer concurrent callers"
        )
