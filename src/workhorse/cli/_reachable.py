"""Failing fast on a store the CLI cannot reach.

A PostgreSQL connection pool that cannot connect keeps retrying quietly until its
timeout (10 s), then reports only that it timed out. A one-shot command would make its
user wait for that and then hide the reason, so the CLI first opens one plain connection
(bounded by libpq's ``connect_timeout``, 5 s unless the URL says otherwise) and turns
its failure into one line with the server's own reason.
"""

from __future__ import annotations

import logging

from workhorse.errors import BackendUnavailableError

POSTGRES_SCHEMES = frozenset({"postgresql", "postgres", "postgresql+psycopg"})


def quiet_pool_logs() -> None:
    """Keep psycopg's pool from printing a multi-line warning at each connection retry:
    workhorse reports an unreachable store itself, in one line (``--debug`` shows them)."""
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)


async def ensure_reachable(url: str) -> None:
    """Raise :class:`BackendUnavailableError` with the reason when ``url`` is a PostgreSQL
    store that does not accept a connection; do nothing for other stores."""
    if url.partition("://")[0].lower() not in POSTGRES_SCHEMES:
        return
    try:
        import psycopg

        from workhorse.backends.postgres.config import parse_config
        from workhorse.backends.postgres.pool import first_line
    except ImportError:
        return  # opening the store names the missing extra
    config = parse_config(url, {})
    try:
        conn = await psycopg.AsyncConnection.connect(config.conninfo)
    except psycopg.Error as exc:
        raise BackendUnavailableError(
            f"PostgreSQL at {config.target} is unavailable ({first_line(exc)})"
        ) from None
    await conn.close()
