"""Stored job rows read without trusting them.

SQLite's loose typing lets any value into any column (so does an operator's ``UPDATE``,
and PostgreSQL's ``jsonb`` takes any JSON where a list or an object belongs). A column
whose value is not of its kind must not break a claim or a listing for every other
job, so each value is checked as it is read, and the first bad one is named:

- a claimed row becomes a :class:`ClaimedJob` marked ``corrupt`` (the worker fails that
  job at once, without retry, under its lease; the rest of the claim runs);
- a read row raises :class:`CorruptJobError` naming the job and the column (listings
  leave such a row out, see :func:`listing`).

Both SQL backends build their records here, from a mapping of column names to values;
each passes how it stores times and JSON (``TimeColumn``, ``JsonColumn``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from workhorse.backends.base import ClaimedJob
from workhorse.errors import CorruptJobError
from workhorse.jobs import JobError, JobRecord, JobState

logger = logging.getLogger("workhorse.backends")


class Row(Protocol):
    """A row by column name: a ``dict`` (psycopg) or a ``sqlite3.Row``."""

    def __getitem__(self, column: str, /) -> Any: ...

    def keys(self) -> Iterable[str]: ...


R = TypeVar("R", bound=Row)
TimeColumn = Callable[[Any, str], datetime]
"""A time column's value as a UTC datetime, or ``CorruptColumn``."""
JsonColumn = Callable[[Any, str], Any]
"""A JSON column's value decoded (SQLite stores text), or ``CorruptColumn``."""

_SHOWN = 60
"""Characters of a bad value quoted in an error."""


class CorruptColumn(ValueError):
    """A column whose value is not of its kind."""

    def __init__(self, column: str, value: Any, expected: str) -> None:
        shown = repr(value)
        if len(shown) > _SHOWN:
            shown = shown[:_SHOWN] + "..."
        super().__init__(f"column {column!r} holds {shown}, not {expected}")
        self.column = column


# -- one column ------------------------------------------------------------------------


def integer(value: Any, column: str) -> int:
    """An integer (a bool is not one)."""
    if type(value) is int:
        return value
    raise CorruptColumn(column, value, "an integer")


def optional_integer(value: Any, column: str) -> int | None:
    """An integer or NULL."""
    return None if value is None else integer(value, column)


def number(value: Any, column: str) -> float:
    """A finite number."""
    if type(value) in (int, float) and math.isfinite(value):
        return float(value)
    raise CorruptColumn(column, value, "a number")


def optional_number(value: Any, column: str) -> float | None:
    """A finite number or NULL."""
    return None if value is None else number(value, column)


def text(value: Any, column: str) -> str:
    """Text."""
    if type(value) is str:
        return value
    raise CorruptColumn(column, value, "text")


def optional_text(value: Any, column: str) -> str | None:
    """Text or NULL."""
    return None if value is None else text(value, column)


def flag(value: Any, column: str) -> bool:
    """A boolean (SQLite: 0 or 1)."""
    if value is True or value is False or (type(value) is int and value in (0, 1)):
        return bool(value)
    raise CorruptColumn(column, value, "a boolean")


def state(value: Any, column: str = "state") -> JobState:
    """A job state."""
    try:
        return JobState(value)
    except ValueError:
        raise CorruptColumn(column, value, "a job state") from None


def timeout(value: Any, column: str = "timeout") -> float | None:
    """Seconds per attempt, positive, or NULL."""
    if value is None or (type(value) in (int, float) and 0 < value < math.inf):
        return None if value is None else float(value)
    raise CorruptColumn(column, value, "a positive number of seconds")


def json_list(value: Any, column: str) -> list[Any]:
    """A decoded JSON list."""
    if type(value) is list:
        return value
    raise CorruptColumn(column, value, "a JSON list")


def json_object(value: Any, column: str) -> dict[str, Any]:
    """A decoded JSON object."""
    if type(value) is dict:
        return value
    raise CorruptColumn(column, value, "a JSON object")


# -- whole rows ------------------------------------------------------------------------


def job_record(row: Row, *, when: TimeColumn, json: JsonColumn) -> JobRecord:
    """The JobRecord of a ``workhorse_jobs`` row; ``CorruptJobError`` naming the first
    column whose value is not of its kind."""
    try:
        return _job_record(row, when, json)
    except CorruptColumn as exc:
        raise CorruptJobError(f"job {row['id']} is corrupt: {exc}") from None


def _job_record(row: Row, when: TimeColumn, json: JsonColumn) -> JobRecord:
    def optional_time(column: str) -> datetime | None:
        value = row[column]
        return None if value is None else when(value, column)

    error_type = optional_text(row["error_type"], "error_type")
    error = None
    if error_type is not None:
        error = JobError(
            type=error_type,
            message=optional_text(row["error_message"], "error_message") or "",
            traceback=optional_text(row["error_traceback"], "error_traceback"),
        )
    result = row["result"]
    return JobRecord(
        id=row["id"],
        task=text(row["task"], "task"),
        queue=text(row["queue"], "queue"),
        state=state(row["state"]),
        priority=integer(row["priority"], "priority"),
        args=json_list(json(row["args"], "args"), "args"),
        kwargs=json_object(json(row["kwargs"], "kwargs"), "kwargs"),
        run_at=when(row["run_at"], "run_at"),
        attempt=integer(row["attempt"], "attempt"),
        max_attempts=integer(row["max_attempts"], "max_attempts"),
        created_at=when(row["created_at"], "created_at"),
        progress=number(row["progress"], "progress"),
        progress_message=optional_text(row["progress_message"], "progress_message"),
        result=None if result is None else json(result, "result"),
        error=error,
        tenant=optional_text(row["tenant"], "tenant"),
        labels=json_object(json(row["labels"], "labels"), "labels"),
        unique_key=optional_text(row["unique_key"], "unique_key"),
        timeout=timeout(row["timeout"]),
        worker_id=optional_text(row["worker_id"], "worker_id"),
        cancel_requested=flag(row["cancel_requested"], "cancel_requested"),
        started_at=optional_time("started_at"),
        finished_at=optional_time("finished_at"),
        expires_at=optional_time("expires_at"),
        lease_expires_at=optional_time("lease_expires_at"),
        parent_id=optional_integer(row["parent_id"], "parent_id"),
        meta=json_object(json(row["meta"], "meta"), "meta"),
        # keys(): "in" looks through a sqlite3.Row's values, not its column names.
        workflow_id=optional_integer(
            row["workflow_id"] if "workflow_id" in row.keys() else None,  # noqa: SIM118
            "workflow_id",
        ),
    )


def claimed_job(row: Row, *, when: TimeColumn, json: JsonColumn) -> ClaimedJob:
    """The ClaimedJob of a claimed row (args and kwargs stay JSON text: the executor
    decodes them). A column whose value is not of its kind makes the job ``corrupt``,
    named, with harmless stand-ins for what could not be read."""
    try:
        when(row["run_at"], "run_at")  # not kept, but a job with no valid time is broken
        return ClaimedJob(
            id=row["id"],
            task=text(row["task"], "task"),
            queue=text(row["queue"], "queue"),
            args=text(row["args"], "args"),
            kwargs=text(row["kwargs"], "kwargs"),
            attempt=integer(row["attempt"], "attempt"),
            max_attempts=integer(row["max_attempts"], "max_attempts"),
            lease_token=row["lease_token"],
            priority=integer(row["priority"], "priority"),
            timeout=timeout(row["timeout"]),
            tenant=optional_text(row["tenant"], "tenant"),
            meta=json_object(json(row["meta"], "meta"), "meta"),
            previous_attempt_lost=bool(row["previous_attempt_lost"]),
        )
    except CorruptColumn as exc:
        attempt = row["attempt"] if type(row["attempt"]) is int else 1
        return ClaimedJob(
            id=row["id"],
            task=str(row["task"]),
            queue=str(row["queue"]),
            args="[]",
            kwargs="{}",
            attempt=attempt,
            max_attempts=attempt,
            lease_token=row["lease_token"],
            corrupt=str(exc),
        )


async def listing(
    fetch: Callable[[int, int | None], Awaitable[Sequence[R]]],
    decode: Callable[[R], JobRecord],
    *,
    limit: int,
    before_id: int | None,
) -> list[JobRecord]:
    """Up to ``limit`` records, newest first, from ``fetch(limit, before_id)`` (rows in
    id order, descending). A row that does not decode is left out with a WARNING
    naming its id and column (one corrupted job must not break the listing of all the
    others), and rows further on take its place, so a page is short only at the end."""
    records: list[JobRecord] = []
    cursor = before_id
    while True:
        wanted = limit - len(records)
        rows = await fetch(wanted, cursor)
        skipped = False
        for row in rows:
            try:
                records.append(decode(row))
            except CorruptJobError as exc:
                skipped = True
                logger.warning("%s; it is left out of the listing", exc)
        if not skipped or len(rows) < wanted:
            return records
        cursor = rows[-1]["id"]
