"""The job writes of the SQLite backend. Each function runs on the connection's thread,
inside the write transaction its caller opened (``Database.write_now``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from itertools import chain
from typing import Any

import orjson

from workhorse.backends._workflows import UniqueRule
from workhorse.backends.base import (
    HeartbeatReply,
    InsertedJob,
    Lease,
    Outcome,
    ProgressUpdate,
    ReclaimedJob,
    ReclaimResult,
)
from workhorse.backends.sqlite.job_reads import get, records
from workhorse.backends.sqlite.rows import InsertParams
from workhorse.backends.sqlite.statements import INSERT_CHUNK, QUERIES, insert_rows_sql
from workhorse.backends.sqlite.unique import insert_unique
from workhorse.backends.sqlite.workflows import check_dependencies_completed
from workhorse.errors import JobStateError, SerializationError
from workhorse.jobs import JobRecord, JobState

_UNIQUE_KEY = 11  # position of unique_key in InsertParams
_DEFAULTS = (None, None, "{}", None, None, "{}")
"""timeout, tenant, labels, unique_key, parent_id and meta (InsertParams[8:14]) of a job
that sets none of them: job_insert_plain leaves them out."""

InsertBatch = list[tuple[InsertParams, JobState, UniqueRule | None]]


def insert(conn: sqlite3.Connection, batch: InsertBatch) -> list[InsertedJob]:
    """Insert ``batch`` in order. Runs of jobs without a unique key go in multi-row
    INSERTs; a job with a key is inserted alone, or answered with the live job that
    holds it (see ``unique.insert_unique``)."""
    try:
        if len(batch) == 1 and batch[0][0][_UNIQUE_KEY] is None:  # the usual enqueue
            params, state, _ = batch[0]
            return [InsertedJob(_insert_one(conn, params), state, True)]
        return _insert_batch(conn, batch)
    except sqlite3.IntegrityError as exc:
        if "_is_json" in str(exc):
            raise SerializationError(
                f"job arguments are not valid JSON text ({exc}); nothing was inserted"
            ) from exc
        raise


def _insert_batch(conn: sqlite3.Connection, batch: InsertBatch) -> list[InsertedJob]:
    """:func:`insert` of several jobs, or of one with a unique key."""
    inserted: list[InsertedJob] = []
    start, end = 0, len(batch)
    while start < end:
        params, state, rule = batch[start]
        if params[_UNIQUE_KEY] is not None:
            inserted.append(insert_unique(conn, params, state, rule))
            start += 1
            continue
        stop = start + 1
        while stop < end and batch[stop][0][_UNIQUE_KEY] is None:
            stop += 1
        run = batch[start:stop]
        # The write lock is held, so this run's ids are consecutive, ending here.
        last = _insert_run(conn, [entry[0] for entry in run])
        first = last - len(run) + 1
        inserted.extend(
            InsertedJob(job_id, entry[1], True)
            for job_id, entry in zip(range(first, last + 1), run, strict=True)
        )
        start = stop
    return inserted


def _insert_one(conn: sqlite3.Connection, params: InsertParams) -> int:
    """Insert one job; its id."""
    if params[8:14] == _DEFAULTS:
        cursor = conn.execute(QUERIES["job_insert_plain"], params[:8] + params[14:])
    else:
        cursor = conn.execute(QUERIES["job_insert"], params)
    job_id = cursor.lastrowid
    assert job_id is not None
    return job_id


def _insert_run(conn: sqlite3.Connection, rows: list[InsertParams]) -> int:
    """Insert ``rows``; the id of the last one."""
    # The first takes the next id (see job_insert); SQLite numbers the others on from it.
    last_id = _insert_one(conn, rows[0])
    if len(rows) == 1:
        return last_id
    # Multi-row VALUES statements take about half the time of one statement per row.
    rest = rows[1:]
    whole = len(rest) - len(rest) % INSERT_CHUNK
    if whole:
        sql = insert_rows_sql(INSERT_CHUNK)
        for start in range(0, whole, INSERT_CHUNK):
            conn.execute(sql, tuple(chain.from_iterable(rest[start : start + INSERT_CHUNK])))
    if whole < len(rest):
        conn.executemany(QUERIES["job_insert_next"], rest[whole:])
    (last_id,) = conn.execute(QUERIES["last_insert_id"]).fetchone()
    return int(last_id)


def claim(conn: sqlite3.Connection, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Run a claim UPDATE (``statements.claim_sql``); its rows, in no particular order."""
    return conn.execute(sql, params).fetchall()


def heartbeat(
    conn: sqlite3.Connection, leases: Sequence[Lease], expires_at: float
) -> HeartbeatReply:
    """Extend the leases still held; report the others as lost."""
    pairs = orjson.dumps([[lease.job_id, lease.token] for lease in leases]).decode()
    rows = conn.execute(
        QUERIES["job_heartbeat"], {"leases": pairs, "lease_expires_at": expires_at}
    ).fetchall()
    held = {row[0] for row in rows}
    return HeartbeatReply(
        lost=frozenset(lease.job_id for lease in leases if lease.job_id not in held),
        cancel_requested=frozenset(row[0] for row in rows if row[1]),
    )


def set_progress(conn: sqlite3.Connection, updates: Sequence[ProgressUpdate]) -> None:
    """Record progress under each update's lease."""
    conn.executemany(
        QUERIES["job_set_progress"],
        [
            {
                "job_id": update.job_id,
                "lease_token": update.lease_token,
                "progress": update.progress,
                "message": update.message,
            }
            for update in updates
        ],
    )


_OUTCOME_STATES = frozenset(
    {JobState.COMPLETED, JobState.SCHEDULED, JobState.FAILED, JobState.CANCELLED}
)


def outcome_rows(outcomes: Sequence[Outcome]) -> list[list[Any]]:
    """Each outcome as a row of job_complete's ``:outcomes`` array."""
    rows: list[list[Any]] = []
    for outcome in outcomes:
        state = outcome.state
        if state not in _OUTCOME_STATES:
            raise ValueError(f"an attempt cannot end {state}")
        error = outcome.error
        rows.append(
            [
                outcome.job_id,
                outcome.lease_token,
                state,  # a str enum: JSON takes its value
                outcome.result if state == JobState.COMPLETED else None,
                None if error is None else error.type,
                None if error is None else error.message,
                None if error is None else error.traceback,
                outcome.retry_delay,
                outcome.ttl,
                outcome.progress,
                outcome.progress_message,
            ]
        )
    return rows


def complete(conn: sqlite3.Connection, rows: list[list[Any]], now: float) -> list[bool]:
    """End attempts (``outcome_rows``) in one statement; each flag says whether that
    lease still held."""
    sql = QUERIES["job_complete"]
    job_ids = [row[0] for row in rows]
    if len(set(job_ids)) < len(job_ids):
        # One job twice: only one outcome may apply, so they go one at a time.
        return [_applied(conn, sql, [row], now) == {row[0]} for row in rows]
    applied = _applied(conn, sql, rows, now)
    return [job_id in applied for job_id in job_ids]


def _applied(conn: sqlite3.Connection, sql: str, rows: list[list[Any]], now: float) -> set[int]:
    outcomes = orjson.dumps(rows).decode()
    return {row[0] for row in conn.execute(sql, {"outcomes": outcomes, "now": now}).fetchall()}


def release(conn: sqlite3.Connection, leases: Sequence[Lease], now: float) -> int:
    """Requeue held jobs without counting their attempt; how many were held."""
    cursor = conn.executemany(
        QUERIES["job_release"],
        [{"job_id": lease.job_id, "lease_token": lease.token, "now": now} for lease in leases],
    )
    return cursor.rowcount


def cancel(
    conn: sqlite3.Connection, job_id: int, tenant: str | None, now: float
) -> JobRecord | None:
    """Cancel a waiting job, flag a running one; a final one is returned as it is."""
    rows = records(conn, QUERIES["job_cancel"], {"job_id": job_id, "tenant": tenant, "now": now})
    return rows[0] if rows else get(conn, job_id, tenant)


def retry(
    conn: sqlite3.Connection, job_id: int, tenant: str | None, now: float
) -> JobRecord | None:
    """Requeue a failed or cancelled job with at least one attempt left (a workflow
    part only once everything it waits for has completed)."""
    part = get(conn, job_id, tenant)
    if part is not None and part.workflow_id is not None:
        check_dependencies_completed(conn, job_id)
    try:
        rows = records(conn, QUERIES["job_retry"], {"job_id": job_id, "tenant": tenant, "now": now})
    except sqlite3.IntegrityError as exc:
        raise JobStateError(
            f"job {job_id} cannot be retried: another live job holds its unique key"
        ) from exc
    if rows:
        return rows[0]
    record = get(conn, job_id, tenant)
    if record is None:
        return None
    raise JobStateError(
        f"job {job_id} is {record.state.value}: only failed or cancelled jobs can be retried"
    )


def delete(conn: sqlite3.Connection, job_id: int, tenant: str | None) -> bool:
    """Delete a final job; False if there is none."""
    params = {"job_id": job_id, "tenant": tenant}
    if conn.execute(QUERIES["job_delete"], params).rowcount:
        return True
    record = get(conn, job_id, tenant)
    if record is None:
        return False
    raise JobStateError(
        f"job {job_id} is {record.state.value}: only final jobs can be deleted (cancel it first)"
    )


def reclaim_expired(conn: sqlite3.Connection, now: float, ttl: float | None) -> ReclaimResult:
    """Expired leases: cancel what was asked to cancel, requeue what has attempts left,
    fail the rest."""
    params = {"now": now, "expires_at": None if ttl is None else now + ttl}
    jobs = [
        ReclaimedJob(id=row[0], state=state, queue=row[1], task=row[2], tenant=row[3])
        for state, query in _RECLAIMS
        for row in conn.execute(QUERIES[query], params).fetchall()
    ]
    return ReclaimResult(tuple(sorted(jobs, key=lambda job: job.id)))


_RECLAIMS = (
    (JobState.CANCELLED, "job_reclaim_cancel"),
    (JobState.QUEUED, "job_reclaim_requeue"),
    (JobState.FAILED, "job_reclaim_fail"),
)
"""The reclaim's statements in the order they must run (each takes what the ones before
left running), and the state each leaves its jobs in."""
