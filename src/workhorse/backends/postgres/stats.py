"""Job statistics in the PostgreSQL backend (tables of migration 0005)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from workhorse.backends import _stats
from workhorse.backends.base import EventCount, JobTotals, MinuteCount, RunTimeCount
from workhorse.backends.postgres.pool import Connection, Pool
from workhorse.backends.postgres.sessions import AsyncConnSession
from workhorse.backends.postgres.statements import Statements


class PostgresStats:
    """The statistics methods of :class:`~workhorse.backends.postgres.PostgresBackend`."""

    _pool: Pool
    _sql: Statements

    async def stats_add(
        self, *, counts: Sequence[EventCount], run_times: Sequence[RunTimeCount]
    ) -> None:
        """Upsert every row in one transaction (two statements, counts first)."""
        rows = _stats.count_rows(counts)
        buckets = _stats.run_time_rows(run_times)
        if not rows and not buckets:
            return

        async def add(conn: Connection) -> None:
            session = AsyncConnSession(conn)
            async with session.atomic():
                if rows:
                    await session.fetch(
                        self._sql["stats_count_add"], _columns(rows, _COUNT_COLUMNS)
                    )
                if buckets:
                    await session.fetch(
                        self._sql["stats_run_time_add"], _columns(buckets, _RUN_TIME_COLUMNS)
                    )

        # Not repeated on a dropped connection: the commit may have happened.
        await self._pool.run(add, idempotent=False)

    async def stats_totals(self) -> JobTotals:
        """The totals per queue, task and event, and the histograms."""
        sums = await self._pool.fetch(self._sql["stats_totals"], {}, idempotent=True)
        buckets = await self._pool.fetch(self._sql["stats_run_times"], {}, idempotent=True)
        return _stats.job_totals(
            [(r["queue"], r["task"], r["event"], r["count"]) for r in sums],
            [(r["queue"], r["task"], r["le"], r["count"], r["seconds"]) for r in buckets],
        )

    async def stats_timeline(
        self, *, since: datetime, tenant: str | None = None
    ) -> list[MinuteCount]:
        """Counts per minute and event since ``since``."""
        rows = await self._pool.fetch(
            self._sql["stats_timeline"],
            {"since": _stats.minute_of(since), "tenant": tenant},
            idempotent=True,
        )
        return _stats.timeline((r["minute"], r["event"], r["count"]) for r in rows)

    async def stats_prune(self, *, before: datetime) -> int:
        """Delete the minutes before ``before``; the totals stay."""
        rows = await self._pool.fetch(
            self._sql["stats_prune"], {"before": _stats.minute_of(before)}, idempotent=True
        )
        return int(rows[0]["pruned"])


_COUNT_COLUMNS = ("minutes", "tenants", "queues", "tasks", "events", "counts")
_RUN_TIME_COLUMNS = ("queues", "tasks", "les", "counts", "seconds")


def _columns(rows: Sequence[tuple[object, ...]], names: tuple[str, ...]) -> dict[str, list[object]]:
    """Rows as one array parameter per column (for ``unnest``)."""
    return {name: [row[i] for row in rows] for i, name in enumerate(names)}
