"""Limited claims in the PostgreSQL backend.

A claim runs in one transaction: it reads waiting jobs ``FOR UPDATE SKIP LOCKED``, then
takes an advisory lock on each bucket (queue, task, limit key) of those jobs, counts the
buckets again (a claim that held a lock before has committed by now, so its jobs are
counted), and only then chooses. ``SKIP LOCKED`` alone would not do: two claims would
each lock different jobs of one key and both count the key's running jobs as before.
Bucket locks are only tried, never waited for: a bucket another claim holds is left to
it, so claims never deadlock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg.rows import DictRow

from workhorse.backends.base import ClaimedJob, ClaimLimits
from workhorse.backends.postgres.pool import Connection, Pool
from workhorse.backends.postgres.records import claimed_job
from workhorse.backends.postgres.recovery import claim_recovery, new_claim_token
from workhorse.backends.postgres.sessions import AsyncConnSession
from workhorse.backends.postgres.statements import Statements
from workhorse.limits.admission import Admission, Candidate, Exclusions, run_rounds_async


class PostgresLimits:
    """The limited claim of :class:`~workhorse.backends.postgres.PostgresBackend`."""

    _pool: Pool
    _sql: Statements

    async def job_claim_limited(
        self,
        *,
        worker_id: str,
        queues: Sequence[str] | None,
        limit: int,
        lease_seconds: float,
        limits: ClaimLimits,
        now: datetime | None = None,
    ) -> list[ClaimedJob]:
        """Claim within ``limits`` (see the module doc)."""
        if limit <= 0 or (queues is not None and not queues):
            return []
        token = new_claim_token()
        claim = _LimitedClaim(
            self._sql,
            limits,
            limit,
            {
                "worker_id": worker_id,
                "lease_seconds": float(lease_seconds),
                "now": now,
                "queues": None if queues is None else list(dict.fromkeys(queues)),
                "claim": token,
            },
        )
        rows = await self._pool.run(
            claim.run,
            recover=claim_recovery(
                self._sql, worker_id=worker_id, claim_token=token, claim=claim.run
            ),
        )
        return [claimed_job(row) for row in rows]


class _LimitedClaim:
    """One limited claim's statements, run on one connection in one transaction."""

    def __init__(
        self, sql: Statements, limits: ClaimLimits, limit: int, params: dict[str, Any]
    ) -> None:
        self._sql = sql
        self._limits = limits
        self._limit = limit
        self._params = params
        self._lock_prefix = f"workhorse:{sql.schema}:"
        self._claim = sql.compose("claim_jobs", pick=["pick_ids"])

    async def run(self, conn: Connection) -> list[DictRow]:
        session = AsyncConnSession(conn)
        admission = Admission(self._limits, self._limit)
        locked: set[str] = set()
        claimed: list[DictRow] = []

        async def fetch(excluded: Exclusions, wanted: int) -> list[Candidate]:
            rows = await session.fetch(
                self._sql.picking(
                    "pick_waiting",
                    queues=self._params["queues"],
                    limit=wanted,
                    where=["limit_room"],
                ),
                {
                    **self._params,
                    "limit": wanted,
                    "full_queues": list(excluded.queues),
                    "full_tasks": list(excluded.tasks),
                    "full_keys": list(excluded.keys),
                },
            )
            jobs = [Candidate(r["id"], r["queue"], r["task"], r["limit_key"]) for r in rows]
            new = sorted(admission.buckets_of(jobs) - locked)
            if new:
                taken = await session.fetch(
                    self._sql["limit_lock_buckets"], {"prefix": self._lock_prefix, "buckets": new}
                )
                locked.update(row["bucket"] for row in taken if row["taken"])
                admission.block(row["bucket"] for row in taken if not row["taken"])
                await self._count(session, admission)
            return jobs

        async def take(chosen: Sequence[Candidate]) -> None:
            claimed.extend(
                await session.fetch(self._claim, {**self._params, "picked": [j.id for j in chosen]})
            )
            starts = admission.starts_of(chosen)
            if starts:
                await session.fetch(
                    self._sql["limit_record_starts"],
                    {
                        "now": self._params["now"],
                        "buckets": [start.bucket for start in starts],
                        "periods": [start.period for start in starts],
                    },
                )

        async with conn.transaction():
            await session.fetch(self._sql["limit_prune_starts"], {"now": self._params["now"]})
            await self._count(session, admission)
            await run_rounds_async(admission, fetch, take)
        return claimed

    async def _count(self, session: AsyncConnSession, admission: Admission) -> None:
        running = await session.fetch(
            self._sql["limit_running"],
            {"queues": list(self._limits.queues), "tasks": list(self._limits.tasks)},
        )
        started = await session.fetch(self._sql["limit_started"], {"now": self._params["now"]})
        admission.count(
            {row["bucket"]: row["count"] for row in running},
            {row["bucket"]: row["count"] for row in started},
        )
