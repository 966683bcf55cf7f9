"""Job statistics in the SQLite backend (tables of migration 0005)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime

from workhorse.backends import _stats
from workhorse.backends.base import EventCount, JobTotals, MinuteCount, RunTimeCount
from workhorse.backends.sqlite.connection import Database
from workhorse.backends.sqlite.statements import QUERIES


class SQLiteStats:
    """The statistics methods of :class:`~workhorse.backends.sqlite.SQLiteBackend`."""

    _db: Database

    async def stats_add(
        self, *, counts: Sequence[EventCount], run_times: Sequence[RunTimeCount]
    ) -> None:
        """Upsert every row in one transaction, without an fsync of its own (a power
        loss may take the last second of counts, never a job)."""
        rows = _stats.count_rows(counts)
        buckets = _stats.run_time_rows(run_times)
        if not rows and not buckets:
            return

        def add(conn: sqlite3.Connection) -> None:
            conn.executemany(QUERIES["stats_count_add"], rows)
            conn.executemany(QUERIES["stats_run_time_add"], buckets)

        await self._db.write(add, durable=False)

    async def stats_totals(self) -> JobTotals:
        """The totals per queue, task and event, and the histograms."""

        def read(conn: sqlite3.Connection) -> JobTotals:
            sums = conn.execute(QUERIES["stats_totals"]).fetchall()
            buckets = conn.execute(QUERIES["stats_run_times"]).fetchall()
            return _stats.job_totals(sums, buckets)

        return await self._db.read(read)

    async def stats_timeline(
        self, *, since: datetime, tenant: str | None = None
    ) -> list[MinuteCount]:
        """Counts per minute and event since ``since``."""
        params = {"since": _stats.minute_of(since), "tenant": tenant}
        rows = await self._db.read(
            lambda conn: conn.execute(QUERIES["stats_timeline"], params).fetchall()
        )
        return _stats.timeline(rows)

    async def stats_prune(self, *, before: datetime) -> int:
        """Delete the minutes before ``before``; the totals stay. With nothing to
        delete, no write lock is taken."""
        params = {"before": _stats.minute_of(before)}
        pruned = await self._db.write_if(
            QUERIES["stats_prune_probe"],
            params,
            lambda conn: conn.execute(QUERIES["stats_prune"], params).rowcount,
            durable=False,
        )
        return pruned or 0
