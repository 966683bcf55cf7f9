"""Between Python values and SQLite columns: epoch seconds, JSON text, and the typed rows
of the backend interface."""

from __future__ import annotations

import math
import sqlite3
import time
from datetime import UTC, datetime
from typing import Any

import orjson

from workhorse.backends._records import CorruptColumn, claimed_job, number
from workhorse.backends._records import job_record as checked_record
from workhorse.backends._workflows import UniqueRule, unique_rule
from workhorse.backends.base import ClaimedJob, NewJob, WorkerInfo, WorkerRecord
from workhorse.jobs import JobRecord, JobState
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
    not valid JSON (for worker rows and dependency results; job rows are checked
    column by column, see ``job_record``)."""
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
        state.value,  # plain text: see binding.py
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


_CLAIMED = (
    "id", "task", "queue", "args", "kwargs", "attempt", "max_attempts", "lease_token",
    "priority", "timeout", "tenant", "meta", "run_at", "previous_attempt_lost",
)  # fmt: skip
"""The columns the job_claim query returns, in order."""


def claimed_jobs(rows: list[tuple[Any, ...]]) -> list[ClaimedJob]:
    """ClaimedJobs from the job_claim query's rows, in claim order (priority first, then
    oldest run_at, then id): RETURNING gives rows in no particular order. A row with a
    column not of its kind comes first, marked corrupt (see ``_records``)."""
    rows.sort(key=_claim_order)
    return [_claimed_job(row) for row in rows]


def _claimed_job(row: tuple[Any, ...]) -> ClaimedJob:
    # Claims are the hot path: a row whose every value is plainly of its kind (nearly
    # all of them) is built at once; anything else goes through the column checks.
    (job_id, task, queue, args, kwargs, attempt, max_attempts, token,
     priority, timeout, tenant, meta, run_at, lost) = row  # fmt: skip
    if (
        meta == "{}"
        and type(task) is str
        and type(queue) is str
        and type(args) is str
        and type(kwargs) is str
        and type(attempt) is int
        and type(max_attempts) is int
        and type(priority) is int
        and type(run_at) is float
        and _EPOCHS[0] <= run_at < _EPOCHS[1]
        and (timeout is None or (type(timeout) is float and 0 < timeout < math.inf))
        and (tenant is None or type(tenant) is str)
    ):
        return ClaimedJob(
            id=job_id,
            task=task,
            queue=queue,
            args=args,
            kwargs=kwargs,
            attempt=attempt,
            max_attempts=max_attempts,
            lease_token=token,
            priority=priority,
            timeout=timeout,
            tenant=tenant,
            previous_attempt_lost=bool(lost),
        )
    return claimed_job(dict(zip(_CLAIMED, row, strict=True)), when=epoch_time, json=json_text)


_EPOCHS = (-62_135_596_800.0, 253_402_300_800.0)
"""Epoch seconds a datetime can hold: years 1 to 9999."""


def _claim_order(row: tuple[Any, ...]) -> tuple[int, int | float, int | float, int]:
    priority, run_at = row[8], row[12]
    if type(priority) is int and type(run_at) in (int, float):
        return (1, -priority, run_at, row[0])
    return (0, 0, 0, row[0])  # a corrupted row: it is failed at once, first


def json_text(value: Any, column: str) -> Any:
    """The JSON value of a text column; ``CorruptColumn`` if it holds anything else."""
    if value == "{}":  # nearly every meta and labels column
        return {}
    if type(value) is str:
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            pass
    raise CorruptColumn(column, value, "JSON text")


def epoch_time(value: Any, column: str) -> datetime:
    """A UTC datetime from epoch seconds; ``CorruptColumn`` for anything else."""
    try:
        return datetime.fromtimestamp(number(value, column), UTC)
    except (OverflowError, OSError, ValueError):
        raise CorruptColumn(column, value, "a time (epoch seconds)") from None


def job_record(row: sqlite3.Row) -> JobRecord:
    """A JobRecord from a ``SELECT *`` row of workhorse_jobs; ``CorruptJobError`` naming
    the first column not of its kind."""
    return checked_record(row, when=epoch_time, json=json_text)


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
