"""Inserting a batch of jobs, all or none, on any session: a pooled connection or the
caller's own transaction.

Small batches and batches with unique keys go through one multi-row ``INSERT ... SELECT
FROM unnest(...)`` statement (``ON CONFLICT DO NOTHING`` against live key holders). Large
batches without unique keys stream through ``COPY``, which costs the client and the
server far less per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from workhorse.backends.base import InsertedJob, NewJob
from workhorse.backends.postgres.sessions import Session
from workhorse.backends.postgres.statements import Statements
from workhorse.backends.postgres.unique import settle_duplicate, unique_masks
from workhorse.errors import WorkhorseError
from workhorse.jobs import JobState
from workhorse.serialization import dumps

COPY_THRESHOLD = 128
"""From this many jobs (without unique keys) on, a batch is written with COPY."""

# Column defaults of workhorse_jobs (0001_initial.sql) that a COPY may leave to the table.
_COLUMN_DEFAULTS: dict[str, Any] = {
    "queue": "default",
    "state": JobState.QUEUED.value,
    "priority": 0,
    "max_attempts": 3,
    "timeout": None,
    "tenant": None,
    "labels": "{}",
    "parent_id": None,
    "meta": "{}",
}

_MAX_ROUNDS = 5
"""How often a unique key may change hands while its batch is being inserted."""


async def insert_jobs(
    session: Session, sql: Statements, jobs: Sequence[NewJob], now: datetime | None
) -> list[InsertedJob]:
    """Insert ``jobs`` and say, for each, which job holds its place (see
    :meth:`~workhorse.backends.base.Backend.job_insert_many`)."""
    if not jobs:
        return []
    if any(job.unique_key is not None for job in jobs):
        if len(jobs) == 1:  # one job is never half-written
            return await _insert_unique(session, sql, jobs, now)
        # Settling unique keys may take more than one statement.
        async with session.atomic():
            return await _insert_unique(session, sql, jobs, now)
    if len(jobs) >= COPY_THRESHOLD:
        async with session.atomic():
            return await _copy(session, sql, jobs, now)
    if len(jobs) == 1:
        rows = await session.fetch(sql["insert_job"], _single(jobs[0], now))
    else:
        rows = await session.fetch(sql["insert_jobs"], _columns(jobs, now))
    return [InsertedJob(id=r["id"], state=JobState(r["state"]), created=True) for r in rows]


async def _insert_unique(
    session: Session, sql: Statements, jobs: Sequence[NewJob], now: datetime | None
) -> list[InsertedJob]:
    # A later job of the batch that repeats an earlier one's key gets the earlier answer.
    first_with_key: dict[str, int] = {}
    repeats: dict[int, int] = {}
    pending: list[int] = []
    for position, job in enumerate(jobs):
        key = job.unique_key
        if key is not None and key in first_with_key:
            repeats[position] = first_with_key[key]
            continue
        if key is not None:
            first_with_key[key] = position
        pending.append(position)

    answers: dict[int, InsertedJob] = {}
    for _ in range(_MAX_ROUNDS):
        rows = await session.fetch(sql["insert_jobs"], _columns([jobs[p] for p in pending], now))
        held: dict[str, int] = {}
        for position, row in zip(pending, rows, strict=True):
            if row["created"]:
                answers[position] = InsertedJob(row["id"], JobState(row["state"]), True)
            else:
                held[str(jobs[position].unique_key)] = position
        if not held:
            break
        holders = await session.fetch(sql["find_unique_holders"], {"keys": list(held)})
        for holder in holders:
            position = held.pop(holder["unique_key"])
            found = InsertedJob(holder["id"], JobState(holder["state"]), False)
            answers[position] = await settle_duplicate(session, sql, jobs[position], found, now)
        # A holder that ended in between left its key free: those rows try again.
        pending = list(held.values())
        if not pending:
            break
    else:
        raise WorkhorseError(
            f"unique keys {sorted(held)} kept changing hands while inserting; nothing was inserted"
        )
    for position, first in repeats.items():
        answers[position] = await settle_duplicate(
            session, sql, jobs[position], answers[first], now
        )
    return [answers[position] for position in range(len(jobs))]


async def _copy(
    session: Session, sql: Statements, jobs: Sequence[NewJob], now: datetime | None
) -> list[InsertedJob]:
    (reserved,) = await session.fetch(sql["reserve_job_ids"], {"now": now, "count": len(jobs)})
    clock: datetime = reserved["now"]
    ids: list[int] = reserved["ids"]
    run_ats = [
        _utc(job.run_at)
        if job.run_at is not None
        else clock + timedelta(seconds=job.delay)
        if job.delay
        else clock
        for job in jobs
    ]
    states = [JobState.SCHEDULED if run_at > clock else JobState.QUEUED for run_at in run_ats]
    columns: dict[str, list[Any]] = {
        "id": ids,
        "task": [job.task for job in jobs],
        "args": [job.args for job in jobs],
        "kwargs": [job.kwargs for job in jobs],
        "queue": [job.queue for job in jobs],
        "state": [state.value for state in states],
        "priority": [job.priority for job in jobs],
        "run_at": run_ats,
        "max_attempts": [job.max_attempts for job in jobs],
        "timeout": [job.timeout for job in jobs],
        "tenant": [job.tenant for job in jobs],
        "labels": [dumps(job.labels, what="job labels") if job.labels else "{}" for job in jobs],
        "parent_id": [job.parent_id for job in jobs],
        "meta": [dumps(job.meta, what="job meta") if job.meta else "{}" for job in jobs],
        "created_at": [clock] * len(jobs),
    }
    # Each value costs the client time to format: leave out the columns whose every
    # value is the table default (the table's now() is the clock, unless the caller
    # passed a now of its own).
    defaults = dict(_COLUMN_DEFAULTS)
    if now is None:
        defaults.update(run_at=clock, created_at=clock)
    kept = [
        name
        for name, values in columns.items()
        if name not in defaults or values.count(defaults[name]) != len(values)
    ]
    statement = sql["copy_jobs"].replace("{columns}", ", ".join(kept))
    await session.copy(statement, zip(*(columns[name] for name in kept), strict=True))
    # One notification per queue, as insert_jobs sends them (announce_inserted).
    due = {job.queue for job, state in zip(jobs, states, strict=True) if state is JobState.QUEUED}
    later = {job.queue for job in jobs} - due
    await session.fetch(sql["notify_queues"], {"due": sorted(due), "later": sorted(later)})
    return [InsertedJob(job_id, state, True) for job_id, state in zip(ids, states, strict=True)]


def _columns(jobs: Sequence[NewJob], now: datetime | None) -> dict[str, Any]:
    return {
        "now": now,
        "task": [job.task for job in jobs],
        "queue": [job.queue for job in jobs],
        "priority": [int(job.priority) for job in jobs],
        "args": [job.args for job in jobs],
        "kwargs": [job.kwargs for job in jobs],
        "run_at": [_utc(job.run_at) if job.run_at else None for job in jobs],
        "delay": [float(job.delay) for job in jobs],
        "max_attempts": [int(job.max_attempts) for job in jobs],
        "timeout": [None if job.timeout is None else float(job.timeout) for job in jobs],
        "tenant": [job.tenant for job in jobs],
        "labels": [dumps(job.labels, what="job labels") for job in jobs],
        "unique_key": [job.unique_key for job in jobs],
        "parent_id": [job.parent_id for job in jobs],
        "meta": [dumps(job.meta, what="job meta") for job in jobs],
        "unique_states": unique_masks(jobs),
    }


def _single(job: NewJob, now: datetime | None) -> dict[str, Any]:
    return {
        "now": now,
        "task": job.task,
        "queue": job.queue,
        "priority": int(job.priority),
        "args": job.args,
        "kwargs": job.kwargs,
        "run_at": _utc(job.run_at) if job.run_at else None,
        "delay": float(job.delay),
        "max_attempts": int(job.max_attempts),
        "timeout": None if job.timeout is None else float(job.timeout),
        "tenant": job.tenant,
        "labels": dumps(job.labels, what="job labels") if job.labels else "{}",
        "parent_id": job.parent_id,
        "meta": dumps(job.meta, what="job meta") if job.meta else "{}",
    }


def _utc(moment: datetime) -> datetime:
    # A naive datetime is taken as UTC, as the database session (TimeZone=UTC) would.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
