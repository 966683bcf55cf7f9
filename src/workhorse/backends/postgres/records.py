"""Rows of the PostgreSQL tables as workhorse's typed records."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from workhorse.backends._records import CorruptColumn
from workhorse.backends._records import claimed_job as checked_claim
from workhorse.backends._records import job_record as checked_record
from workhorse.backends.base import ClaimedJob, WorkerRecord
from workhorse.jobs import JobRecord


def job_record(row: Mapping[str, Any]) -> JobRecord:
    """A ``workhorse_jobs`` row (jsonb columns already decoded); ``CorruptJobError``
    naming a column whose value is not of its kind (a jsonb ``args`` that is not a
    list, a ``meta`` that is not an object, a NaN timeout)."""
    return checked_record(row, when=_timestamp, json=_decoded)


def claimed_job(row: Mapping[str, Any]) -> ClaimedJob:
    """A row returned by a claim (args and kwargs kept as JSON text); marked corrupt,
    rather than raising, when a column is not of its kind."""
    return checked_claim(row, when=_timestamp, json=_decoded)


def _timestamp(value: Any, column: str) -> datetime:
    if isinstance(value, datetime):
        return value
    raise CorruptColumn(column, value, "a timestamp")


def _decoded(value: Any, column: str) -> Any:
    return value  # psycopg decoded the jsonb already


def worker_record(row: Mapping[str, Any]) -> WorkerRecord:
    """A ``workhorse_workers`` row."""
    queues = row["queues"]
    return WorkerRecord(
        id=row["id"],
        hostname=row["hostname"],
        pid=row["pid"],
        queues=None if queues is None else tuple(queues),
        concurrency=row["concurrency"],
        started_at=row["started_at"],
        heartbeat_at=row["heartbeat_at"],
        running=row["running"],
        stop_requested=row["stop_requested"],
        meta=row["meta"],
    )
