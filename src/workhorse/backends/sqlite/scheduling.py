"""Periodic jobs in the SQLite backend: schedule registrations and the ticks they claim."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

from workhorse.backends.base import NewJob, ScheduleState
from workhorse.backends.sqlite import job_writes
from workhorse.backends.sqlite.connection import Database
from workhorse.backends.sqlite.rows import clock, from_epoch, insert_params, to_epoch
from workhorse.backends.sqlite.statements import QUERIES
from workhorse.serialization import dumps


class SQLiteSchedules:
    """The schedule methods of :class:`~workhorse.backends.sqlite.SQLiteBackend`."""

    _db: Database

    async def schedule_states(self, *, names: Sequence[str]) -> dict[str, ScheduleState]:
        """The registered schedules among ``names``."""
        if not names:
            return {}
        rows = await self._db.read(
            lambda conn: conn.execute(
                QUERIES["schedule_states"], {"names": dumps(list(names))}
            ).fetchall()
        )
        return {row[0]: _state(row) for row in rows}

    async def schedule_register(self, *, names: Sequence[str], now: datetime | None = None) -> None:
        """Register the schedules not seen before (a read when they all are)."""
        if not names:
            return
        params = {"names": dumps(list(names)), "now": clock(now)}
        await self._db.write_if(
            QUERIES["schedule_unknown_probe"],
            params,
            lambda conn: conn.execute(QUERIES["schedule_register"], params),
        )

    async def cron_claim_tick(self, *, name: str, tick_at: datetime, job: NewJob) -> int | None:
        """Enqueue ``job`` unless the tick is taken; a taken tick costs a read."""
        at = to_epoch(tick_at)
        return await self._db.write_if(
            QUERIES["cron_tick_free_probe"],
            {"name": name, "tick_at": at},
            partial(_claim_tick, name=name, tick_at=at, job=job),
        )

    async def cron_prune_ticks(self, *, before: datetime) -> int:
        """Forget ticks older than ``before``."""
        params = {"before": to_epoch(before)}
        return await self._db.write(
            lambda conn: conn.execute(QUERIES["cron_prune_ticks"], params).rowcount
        )


def _claim_tick(conn: sqlite3.Connection, *, name: str, tick_at: float, job: NewJob) -> int | None:
    # The probe ran outside the write lock: under it, the tick row decides.
    if conn.execute(QUERIES["cron_tick_free_probe"], {"name": name, "tick_at": tick_at}).fetchone():
        now = clock(None)
        (inserted,) = job_writes.insert(conn, batch=[insert_params(job, now)])
        params = {"name": name, "tick_at": tick_at, "job_id": inserted.id, "now": now}
        conn.execute(QUERIES["cron_tick_insert"], params).fetchall()
        conn.execute(QUERIES["cron_schedule_advance"], params)
        return inserted.id
    return None


def _state(row: tuple[Any, ...]) -> ScheduleState:
    return ScheduleState(
        name=row[0],
        registered_at=datetime.fromtimestamp(row[1], UTC),
        last_tick_at=from_epoch(row[2]),
        last_job_id=row[3],
    )
