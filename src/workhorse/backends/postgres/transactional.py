"""The caller's own connection as a session, so an insert joins the caller's transaction.

Accepted: a psycopg 3 ``AsyncConnection`` or ``Connection`` (a sync connection's calls
run in a thread so the event loop never blocks), and a SQLAlchemy ``AsyncSession``,
``AsyncConnection``, ``Session`` or ``Connection`` on the psycopg driver. SQLAlchemy is
imported only when one of its objects is passed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg

from workhorse.backends.postgres.sessions import AsyncConnSession, Session, ThreadedConnSession
from workhorse.errors import ConfigurationError


async def caller_session(connection: Any) -> Session:
    """A session on the psycopg connection behind ``connection``.

    Statements join the transaction open on it (or the one psycopg begins at the first
    statement, which the caller commits), so what they write exists if and only if the
    caller commits."""
    driver = connection
    if type(connection).__module__.startswith("sqlalchemy."):
        driver = await _from_sqlalchemy(connection)
    if isinstance(driver, psycopg.AsyncConnection):
        return AsyncConnSession(driver)
    if isinstance(driver, psycopg.Connection):
        return ThreadedConnSession(driver)
    if driver is not connection:
        raise ConfigurationError(
            "transactional enqueue needs SQLAlchemy on the psycopg 3 driver "
            f"(a postgresql+psycopg:// URL), not {type(driver).__module__}"
        )
    raise ConfigurationError(
        "connection= takes a psycopg 3 connection or a SQLAlchemy Session, AsyncSession, "
        f"Connection or AsyncConnection; got {type(connection).__name__}"
    )


async def _from_sqlalchemy(connection: Any) -> Any:
    from sqlalchemy.engine import Connection
    from sqlalchemy.ext.asyncio import AsyncConnection
    from sqlalchemy.ext.asyncio import AsyncSession as OrmAsyncSession
    from sqlalchemy.orm import Session as OrmSession

    # A session begins its transaction when asked for its connection; a bare connection
    # is begun here, or SQLAlchemy would not know it has anything to commit.
    if isinstance(connection, OrmAsyncSession):
        connection = await connection.connection()
    if isinstance(connection, AsyncConnection):
        if not connection.in_transaction():
            await connection.begin()
        raw = await connection.get_raw_connection()
        return raw.driver_connection
    if isinstance(connection, OrmSession):
        # The session may have to check a connection out of its engine's pool first.
        connection = await asyncio.to_thread(connection.connection)
    if isinstance(connection, Connection):
        if not connection.in_transaction():
            await asyncio.to_thread(connection.begin)
        return connection.connection.driver_connection
    raise ConfigurationError(
        f"unsupported SQLAlchemy object for connection=: {type(connection).__name__}"
    )
