"""Rows of the PostgreSQL tables as workhorse's typed records."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson

from workhorse.backends._records import CorruptColumn
from workhorse.backends._records import claimed_job as checked_claim
from workhorse.backends._records import job_record as checked_record
from workhorse.backends.base import ClaimedJob, Outcome, WorkerRecord
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


def outcomes_json(outcomes: Sequence[Outcome]) -> str:
    """The outcomes as the JSON array ``complete_jobs`` reads with ``json_to_recordset``:
    one object each, without the keys whose value is null. ``ValueError`` for what
    PostgreSQL could not keep: a NaN or infinite number, a NUL character in text."""
    encoded = []
    for o in outcomes:
        item: dict[str, Any] = {
            "id": o.job_id,
            "token": o.lease_token,
            "state": str(o.state),
            "retry_delay": _finite(o.retry_delay),
        }
        if o.result is not None:
            item["result"] = o.result
        if o.error is not None:
            item["error_type"] = o.error.type
            item["error_message"] = o.error.message
            item["error_traceback"] = o.error.traceback
        if o.ttl is not None:
            item["ttl"] = _finite(o.ttl)
        if o.progress is not None:
            item["progress"] = _finite(o.progress)
        if o.progress_message is not None:
            item["progress_message"] = o.progress_message
        encoded.append(item)
    text = orjson.dumps(encoded).decode()
    if "\\u0000" in text and any(_has_nul(item) for item in encoded):
        raise ValueError("PostgreSQL text cannot contain NUL (0x00) characters")
    return text


def _finite(value: float) -> float:
    # orjson writes NaN and the infinities as null: refuse them, as json.dumps would.
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"Out of range float values are not JSON compliant: {number!r}")
    return number


def _has_nul(item: Mapping[str, Any]) -> bool:
    return any(isinstance(value, str) and "\x00" in value for value in item.values())
