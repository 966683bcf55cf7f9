"""The job reads of the SQLite backend, run on the connection's thread."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from workhorse.backends.base import JobFilter, QueueStats
from workhorse.backends.sqlite.rows import clock, from_epoch, job_record
from workhorse.backends.sqlite.statements import QUERIES, compose, job_filter, queue_filter
from workhorse.jobs import JobRecord, JobState


def rows(conn: sqlite3.Connection, sql: str, params: dict[str, Any]) -> list[sqlite3.Row]:
    """The rows of a ``SELECT *`` (or ``RETURNING *``) over workhorse_jobs, by name."""
    cursor = conn.cursor()
    cursor.row_factory = sqlite3.Row
    return cursor.execute(sql, params).fetchall()


def records(conn: sqlite3.Connection, sql: str, params: dict[str, Any]) -> list[JobRecord]:
    """The JobRecords of a ``SELECT *`` (or ``RETURNING *``) over workhorse_jobs
    (``CorruptJobError`` for a row that does not decode)."""
    return [job_record(row) for row in rows(conn, sql, params)]


_STATES = frozenset(JobState)


def get(conn: sqlite3.Connection, job_id: int, tenant: str | None) -> JobRecord | None:
    """One job, or None (also when it belongs to another tenant)."""
    rows = records(conn, QUERIES["job_get"], {"job_id": job_id, "tenant": tenant})
    return rows[0] if rows else None


def list_rows(
    conn: sqlite3.Connection, flt: JobFilter, limit: int, before_id: int | None
) -> list[sqlite3.Row]:
    """The rows of matching jobs, newest first (decoded by the caller, row by row)."""
    sql, params = job_filter("job_list", flt, before_id=before_id)
    params["limit"] = limit
    return rows(conn, sql, params)


def count(conn: sqlite3.Connection, flt: JobFilter) -> int:
    """How many jobs match."""
    sql, params = job_filter("job_count", flt)
    (total,) = conn.execute(sql, params).fetchone()
    return int(total)


def next_due_in(
    conn: sqlite3.Connection, queues: Sequence[str] | None, now: datetime | None
) -> float | None:
    """Seconds until the earliest scheduled job in ``queues`` is due (0.0: already)."""
    if queues is not None and not queues:
        return None
    fragments, params = queue_filter(queues)
    (earliest,) = conn.execute(compose("job_next_run_at", fragments), params).fetchone()
    if not isinstance(earliest, int | float):  # none, or a corrupted run_at: never due
        return None
    return max(0.0, earliest - clock(now))


def queue_stats(conn: sqlite3.Connection, tenant: str | None, now: float) -> list[QueueStats]:
    """Counts per state (every state, zeros included) of each queue that has jobs, due
    scheduled jobs counted as queued."""
    sql, params = job_filter("queue_stats", JobFilter(tenant=tenant))
    params["now"] = now
    counts: dict[str, dict[JobState, int]] = {}
    oldest: dict[str, float] = {}
    for queue, state, n, oldest_queued in conn.execute(sql, params).fetchall():
        if state not in _STATES:  # a corrupted row: job_list names it
            continue
        counts.setdefault(queue, dict.fromkeys(JobState, 0))[JobState(state)] = n
        if oldest_queued is not None:
            oldest[queue] = oldest_queued
    return [
        QueueStats(
            queue=queue, counts=counts[queue], oldest_queued_at=from_epoch(oldest.get(queue))
        )
        for queue in sorted(counts)
    ]
