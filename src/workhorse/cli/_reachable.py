"""Looking at the store before a command uses it.

A PostgreSQL connection pool that cannot connect keeps retrying quietly until its
timeout (10 s), then reports only that it timed out. A one-shot command would make its
user wait for that and then hide the reason, so the CLI first asks the store whether it
is there (``Backend.absent``: one plain connection, bounded by libpq's
``connect_timeout``, 5 s unless the URL says otherwise), which also tells a read
command whether there is anything to read, before anything is created.
"""

from __future__ import annotations

import logging

from workhorse.app import Workhorse


def quiet_pool_logs() -> None:
    """Keep psycopg's pool from printing a multi-line warning at each connection retry:
    workhorse reports an unreachable store itself, in one line (``--debug`` shows them)."""
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)


async def ensure_reachable(app: Workhorse) -> str | None:
    """Raise :class:`~workhorse.errors.BackendUnavailableError` with the reason when the
    app's store cannot be reached; otherwise what of it is absent (see
    ``Backend.absent``), None when it is there. Creates nothing."""
    return await app.open_store().absent()
