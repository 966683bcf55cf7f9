"""LISTEN on a dedicated connection and turn notifications into wake-ups.

Writes that make jobs claimable notify ``<schema>_jobs`` with the queue name in the same
transaction, so a listening worker hears of new work as soon as it is committed; writes
that schedule jobs for later (inserts, retries after a backoff, workflow parts released
before their time) notify ``<schema>_next``, so an idle worker looks again when the next
job of that queue is due (rather than at its next poll). When the listening
connection drops, the listener logs one warning, reconnects with backoff and listens
again; meanwhile the worker's polling covers the gap, and a ``wake(None)`` after
reconnecting says that anything may have arrived in between.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence

import psycopg

from workhorse.backends.postgres.pool import first_line

logger = logging.getLogger("workhorse.backends.postgres")

_BACKOFF_FIRST = 0.05
_BACKOFF_MAX = 5.0


class Listener:
    """Listens on some channels with its own connection (never a pooled one: a pooled
    connection is shared, and LISTEN belongs to a session)."""

    def __init__(
        self, conninfo: str, channels: Sequence[str], *, ping_interval: float = 30.0
    ) -> None:
        self._conninfo = conninfo
        self._channels = tuple(channels)
        self._ping_interval = ping_interval
        self.connected = asyncio.Event()
        """Set while LISTEN is in effect (tests and health checks await it)."""

    async def run(self, wake: Callable[[str | None], None]) -> None:
        """Call ``wake(queue)`` for each notification, whatever its channel, until
        cancelled."""
        delay = _BACKOFF_FIRST
        down = False  # an outage is under way and was reported
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True
                ) as conn:
                    for channel in self._channels:
                        await conn.execute(f'LISTEN "{channel}"')
                    self.connected.set()
                    if down:
                        logger.info("PostgreSQL LISTEN connection restored")
                        wake(None)
                    down, delay = False, _BACKOFF_FIRST
                    await self._relay(conn, wake)
            except psycopg.OperationalError as exc:
                if down:
                    logger.debug("PostgreSQL LISTEN reconnect failed: %s", exc)
                else:
                    logger.warning(
                        "PostgreSQL LISTEN connection failed (%s); reconnecting with "
                        "backoff, workers poll meanwhile",
                        first_line(exc),
                    )
                    down = True
            finally:
                self.connected.clear()
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, _BACKOFF_MAX)

    async def _relay(
        self, conn: psycopg.AsyncConnection[object], wake: Callable[[str | None], None]
    ) -> None:
        while True:
            async for notify in conn.notifies(timeout=self._ping_interval):
                wake(notify.payload or None)
            # A quiet spell: make sure the connection is still there.
            await conn.execute("SELECT 1")
