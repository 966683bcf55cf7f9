"""Limited claims in the SQLite backend. The whole claim (counting, choosing, claiming,
recording starts) runs in one write transaction, which SQLite grants to one connection
at a time: no other claim can count the same buckets until this one has committed."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache, partial
from typing import Any

from workhorse.backends.base import ClaimedJob, ClaimLimits
from workhorse.backends.sqlite.connection import Database
from workhorse.backends.sqlite.rows import claimed_jobs, clock
from workhorse.backends.sqlite.statements import (
    QUERIES,
    claim_sql,
    compose,
    due_query,
    fill,
    queue_filter,
)
from workhorse.limits.admission import Admission, Candidate, Exclusions, run_rounds
from workhorse.serialization import dumps


class SQLiteLimits:
    """The limited claim of :class:`~workhorse.backends.sqlite.SQLiteBackend`."""

    _db: Database

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
        """Claim within ``limits``; an idle claim costs one read, no lock."""
        if limit <= 0 or (queues is not None and not queues):
            return []
        due, params = due_query(queues, None)
        at = clock(now)
        claim = partial(
            _claim,
            queues=queues,
            limits=limits,
            limit=limit,
            params={"now": at, "worker_id": worker_id, "lease_seconds": lease_seconds},
        )
        rows = await self._db.write_if(due, {**params, "now": at, "limit": 1}, claim, durable=False)
        return claimed_jobs(rows) if rows else []


def _claim(
    conn: sqlite3.Connection,
    *,
    queues: Sequence[str] | None,
    limits: ClaimLimits,
    limit: int,
    params: dict[str, Any],
) -> list[tuple[Any, ...]]:
    now = params["now"]
    conn.execute(QUERIES["limit_prune_starts"], {"now": now})
    admission = Admission(limits, limit)
    admission.count(_running(conn, limits), _started(conn, now))
    scope, scope_params = queue_filter(queues)
    candidates = _candidates_sql(scope)
    claim = claim_sql(QUERIES["limit_picked"])
    claimed: list[tuple[Any, ...]] = []

    def fetch(excluded: Exclusions, wanted: int) -> list[Candidate]:
        rows = conn.execute(
            candidates, {**scope_params, **_excluded(excluded), "now": now, "limit": wanted}
        ).fetchall()
        return [Candidate(*row) for row in rows]

    def take(chosen: Sequence[Candidate]) -> None:
        picked = dumps([job.id for job in chosen])
        claimed.extend(conn.execute(claim, {**params, "picked": picked}).fetchall())
        conn.executemany(
            QUERIES["limit_record_start"],
            [
                {"bucket": start.bucket, "period": start.period, "now": now}
                for start in admission.starts_of(chosen)
            ],
        )

    run_rounds(admission, fetch, take)
    return claimed


@lru_cache(maxsize=8)
def _candidates_sql(scope: tuple[str, ...]) -> str:
    fragments = (*scope, "limit_room")
    arms = (compose("job_due_queued", fragments), compose("job_due_scheduled", fragments))
    return fill("limit_candidates", fill("job_due", "\nUNION ALL\n".join(arms)))


def _running(conn: sqlite3.Connection, limits: ClaimLimits) -> dict[str, int]:
    params = {"queues": dumps(list(limits.queues)), "tasks": dumps(list(limits.tasks))}
    return dict(conn.execute(QUERIES["limit_running"], params).fetchall())


def _started(conn: sqlite3.Connection, now: float) -> dict[str, int]:
    return dict(conn.execute(QUERIES["limit_started"], {"now": now}).fetchall())


def _excluded(excluded: Exclusions) -> dict[str, str]:
    return {
        "full_queues": dumps(list(excluded.queues)),
        "full_tasks": dumps(list(excluded.tasks)),
        "full_keys": dumps(list(excluded.keys)),
    }
