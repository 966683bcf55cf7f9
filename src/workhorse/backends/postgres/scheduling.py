"""Periodic jobs in the PostgreSQL backend: schedule registrations and the ticks they
claim."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from workhorse.backends.base import NewJob, ScheduleState
from workhorse.backends.postgres.inserting import insert_jobs
from workhorse.backends.postgres.pool import Connection, Pool
from workhorse.backends.postgres.sessions import AsyncConnSession
from workhorse.backends.postgres.statements import Statements


class PostgresSchedules:
    """The schedule methods of :class:`~workhorse.backends.postgres.PostgresBackend`."""

    _pool: Pool
    _sql: Statements

    async def schedule_states(self, *, names: Sequence[str]) -> dict[str, ScheduleState]:
        """The registered schedules among ``names``."""
        rows = await self._pool.fetch(
            self._sql["schedule_states"], {"names": list(names)}, idempotent=True
        )
        return {
            row["name"]: ScheduleState(
                name=row["name"],
                registered_at=row["registered_at"],
                last_tick_at=row["last_tick_at"],
                last_job_id=row["last_job_id"],
            )
            for row in rows
        }

    async def schedule_register(self, *, names: Sequence[str], now: datetime | None = None) -> None:
        """Register the schedules not seen before."""
        if names:
            await self._pool.fetch(
                self._sql["schedule_register"], {"names": list(names), "now": now}, idempotent=True
            )

    async def cron_claim_tick(self, *, name: str, tick_at: datetime, job: NewJob) -> int | None:
        """Reserve the tick and enqueue its job in one transaction. Safe to repeat: a
        repeat after a lost commit finds the tick taken."""

        async def claim(conn: Connection) -> int | None:
            params = {"name": name, "tick_at": tick_at}
            async with conn.transaction():
                session = AsyncConnSession(conn)
                if not await session.fetch(self._sql["cron_tick_reserve"], params):
                    return None
                (inserted,) = await insert_jobs(session, self._sql, [job], None)
                await session.fetch(
                    self._sql["cron_tick_enqueued"], {**params, "job_id": inserted.id}
                )
                return inserted.id

        return await self._pool.run(claim, idempotent=True)

    async def cron_prune_ticks(self, *, before: datetime) -> int:
        """Forget ticks older than ``before``."""
        rows = await self._pool.fetch(self._sql["cron_prune_ticks"], {"before": before})
        return int(rows[0]["pruned"])
