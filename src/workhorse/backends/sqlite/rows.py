"""Between Python values and SQLite columns: epoch seconds, JSON text, and the typed rows
of the backend interface."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from typing import Any

import orjson

from workhorse.backends._workflows import UniqueRule, unique_rule
from workhorse.backends.base import ClaimedJob, NewJob, WorkerInfo, WorkerRecord
from workhorse.jobs import JobError, JobRecord, JobState
from workhorse.serialization import dumps

# Positional parameters of the job_insert query, in its column order.
InsertParams = tuple[
    str, str, str, int, str, str, float, int, float | None,
    str | None, str, str | None, int | None, str, float,
]  # fmt: skip


def to_epoch(value: datetime) -> float:
    """Unix epoch seconds of ``value`` (a naive datetime is taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def clock(now: datetime | None) -> float:
    """``now`` in epoch seconds, or the current time when None (the store's clock)."""
    return time.time() if now is None else to_epoch(now)


def from_epoch(value: float | None) -> datetime | None:
    """A timezone-aware UTC datetime, or None."""
    return None if value is None else datetime.fromtimestamp(value, UTC)


def decoded(text: str | None, default: Any) -> Any:
    """The JSON value of ``text``; ``default`` for NULL; the raw text itself when it is
    not valid JSON, so one corrupted row cannot break a listing."""
    if text is None:
        return default
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def insert_params(job: NewJob, now: float) -> tuple[InsertParams, JobState, UniqueRule | None]:
    """The job_insert parameters of ``job``, the state it starts in, and the rule of its
    unique key."""
    run_at = now + job.delay if job.run_at is None else to_epoch(job.run_at)
    state = JobState.SCHEDULED if run_at > now else JobState.QUEUED
    # JobState is a str: it binds as its value. Empty mappings skip the serializer.
    params: InsertParams = (
        job.task,
        job.queue,
        state,
        job.priority,
        job.args,
        job.kwargs,
        run_at,
        job.max_attempts,
        job.timeout,
        job.tenant,
        dumps(job.labels, what=f"labels of a {job.task!r} job") if job.labels else "{}",
        job.unique_key,
        job.parent_id,
        dumps(job.meta, what=f"meta of a {job.task!r} job") if job.meta else "{}",
        now,
    )
    return params, state, unique_rule(job)


def claimed_jobs(rows: list[tuple[Any, ...]]) -> list[ClaimedJob]:
    """ClaimedJobs from the job_claim query's rows, in claim order (priority first, then
    oldest run_at, then id): RETURNING gives rows in no particular order."""
    rows.sort(key=_claim_order)
    return [_claimed_job(row) for row in rows]


def _claim_order(row: tuple[Any, ...]) -> tuple[int, float, int]:
    return (-row[8], row[12], row[0])


def _claimed_job(row: tuple[Any, ...]) -> ClaimedJob:
    meta = row[11]
    return ClaimedJob(
        id=row[0],
        task=row[1],
        queue=row[2],
        args=row[3],
        kwargs=row[4],
        attempt=row[5],
        max_attempts=row[6],
        lease_token=row[7],
        priority=row[8],
        timeout=row[9],
        tenant=row[10],
        meta={} if meta == "{}" else decoded(meta, {}),
        previous_attempt_lost=bool(row[13]),
    )


def job_record(row: sqlite3.Row) -> JobRecord:
    """A JobRecord from a ``SELECT *`` row of workhorse_jobs."""
    error_type = row["error_type"]
    error = (
        None
        if error_type is None
        else JobError(
            type=error_type,
            message=row["error_message"] or "",
            traceback=row["error_traceback"],
        )
    )
    return JobRecord(
        id=row["id"],
        task=row["task"],
        queue=row["queue"],
        state=JobState(row["state"]),
        priority=row["priority"],
        args=decoded(row["args"], []),
        kwargs=decoded(row["kwargs"], {}),
        run_at=datetime.fromtimestamp(row["run_at"], UTC),
        attempt=row["attempt"],
        max_attempts=row["max_attempts"],
        created_at=datetime.fromtimestamp(row["created_at"], UTC),
        progress=row["progress"],
        progress_message=row["progress_message"],
        result=decoded(row["result"], None),
        error=error,
        tenant=row["tenant"],
        labels=decoded(row["labels"], {}),
        unique_key=row["unique_key"],
        timeout=row["timeout"],
        worker_id=row["worker_id"],
        cancel_requested=bool(row["cancel_requested"]),
        started_at=from_epoch(row["started_at"]),
        finished_at=from_epoch(row["finished_at"]),
        expires_at=from_epoch(row["expires_at"]),
        lease_expires_at=from_epoch(row["lease_expires_at"]),
        parent_id=row["parent_id"],
        meta=decoded(row["meta"], {}),
        workflow_id=row["workflow_id"],
    )


def worker_params(worker: WorkerInfo, now: float) -> dict[str, Any]:
    """The worker_register parameters of ``worker``."""
    return {
        "id": worker.id,
        "hostname": worker.hostname,
        "pid": worker.pid,
        "queues": None if worker.queues is None else dumps(list(worker.queues)),
        "concurrency": worker.concurrency,
        "now": now,
        "meta": dumps(worker.meta, what=f"meta of worker {worker.id!r}"),
    }


def worker_record(row: tuple[Any, ...]) -> WorkerRecord:
    """A WorkerRecord from a row of the worker_list query."""
    queues = decoded(row[3], None)
    return WorkerRecord(
        id=row[0],
        hostname=row[1],
        pid=row[2],
        queues=None if queues is None else tuple(queues),
        concurrency=row[4],
        started_at=datetime.fromtimestamp(row[5], UTC),
        heartbeat_at=datetime.fromtimestamp(row[6], UTC),
        running=row[7],
        stop_requested=bool(row[8]),
        meta=decoded(row[9], {}),
    )
