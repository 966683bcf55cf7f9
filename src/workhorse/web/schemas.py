"""Pydantic models at the HTTP boundary, and the input rules they enforce: queue names,
JSON that any store accepts (finite numbers, no NUL characters, bounded depth and size).
The core keeps its own dataclasses; these only describe what crosses the wire."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    model_validator,
)

from workhorse.backends.base import QueueStats, WorkerRecord
from workhorse.jobs import JobRecord, JobState

QUEUE_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
TENANT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$"
MAX_JSON_DEPTH = 32
MAX_JSON_ITEMS = 10_000
MAX_LABELS = 32
MAX_PAGE = 1000
MAX_DB_INT = 2**63 - 1


def check_text(value: str) -> str:
    """Refuse text that a store cannot hold: NUL characters (PostgreSQL) and lone
    surrogates (not UTF-8)."""
    if "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid UTF-8") from None
    return value


Text = Annotated[str, AfterValidator(check_text)]
"""A string every store can keep."""


def check_json(value: Any) -> Any:
    """Refuse JSON that would be changed or refused by a store: NaN and infinities
    (JSON has none), NUL characters, nesting deeper than ``MAX_JSON_DEPTH``, more than
    ``MAX_JSON_ITEMS`` values in all."""
    count = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        count += 1
        if count > MAX_JSON_ITEMS:
            raise ValueError(f"arguments hold more than {MAX_JSON_ITEMS} values")
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"arguments are nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError("arguments must not hold NaN or infinite numbers")
        if isinstance(item, str):
            check_text(item)
        elif isinstance(item, dict):
            for key, child in item.items():
                check_text(key)
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return value


def as_utc(moment: datetime | None) -> datetime | None:
    """``moment`` in UTC; a naive datetime is read as UTC."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


QueueName = Annotated[str, Field(pattern=QUEUE_PATTERN)]
TenantName = Annotated[str, Field(pattern=TENANT_PATTERN)]
Labels = dict[
    Annotated[Text, Field(min_length=1, max_length=64)], Annotated[Text, Field(max_length=256)]
]


class JobCreate(BaseModel):
    """``POST /jobs``: a registered task and how to run it."""

    model_config = ConfigDict(extra="forbid")

    task: Annotated[Text, Field(min_length=1, max_length=255)]
    """The task's registered name."""
    args: Annotated[list[JsonValue], AfterValidator(check_json)] = Field(default_factory=list)
    kwargs: Annotated[dict[Text, JsonValue], AfterValidator(check_json)] = Field(
        default_factory=dict
    )
    queue: QueueName | None = None
    """Overrides the task's queue."""
    priority: Annotated[int, Field(ge=-1_000_000, le=1_000_000)] | None = None
    """Higher runs first; default: the task's."""
    delay: Annotated[float, Field(ge=0, le=10 * 365 * 86400)] | None = None
    """Seconds to wait before the job may run (exclusive with ``run_at``)."""
    run_at: AwareDatetime | None = None
    """When the job may run, with a timezone (exclusive with ``delay``)."""
    unique_key: Annotated[Text, Field(min_length=1, max_length=255)] | None = None
    """While a live job of this tenant holds this key, the existing job is returned."""
    labels: Annotated[Labels, Field(max_length=MAX_LABELS)] = Field(default_factory=dict)
    max_attempts: Annotated[int, Field(ge=1, le=1000)] | None = None
    timeout: Annotated[float, Field(gt=0, le=7 * 86400)] | None = None
    """Seconds per attempt; default: the task's."""
    tenant: TenantName | None = None
    """Admin keys only: the tenant the job belongs to. Other keys' jobs always belong to
    the key's tenant."""

    @model_validator(mode="after")
    def _one_schedule(self) -> JobCreate:
        if self.delay is not None and self.run_at is not None:
            raise ValueError("give either delay or run_at, not both")
        return self


class JobErrorOut(BaseModel):
    """Why the last attempt failed."""

    type: str
    message: str
    traceback: str | None = None


class JobOut(BaseModel):
    """A job as the API shows it."""

    model_config = ConfigDict(extra="forbid")

    id: int
    task: str
    queue: str
    state: JobState
    priority: int
    args: list[Any]
    kwargs: dict[str, Any]
    run_at: datetime
    attempt: int
    max_attempts: int
    progress: float
    progress_message: str | None
    result: Any
    error: JobErrorOut | None
    tenant: str | None
    labels: dict[str, str]
    unique_key: str | None
    timeout: float | None
    worker_id: str | None
    cancel_requested: bool
    parent_id: int | None
    workflow_id: int | None
    """The workflow this job is a part of (see ``GET /workflows/{id}``)."""
    stage: str | None
    """A pipeline job's current stage: running, next, or where it failed."""
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime | None

    @classmethod
    def of(cls, record: JobRecord) -> JobOut:
        """The API view of a stored job."""
        error = record.error
        return cls(
            id=record.id,
            task=record.task,
            queue=record.queue,
            state=record.state,
            priority=record.priority,
            args=record.args,
            kwargs=record.kwargs,
            run_at=record.run_at,
            attempt=record.attempt,
            max_attempts=record.max_attempts,
            progress=record.progress,
            progress_message=record.progress_message,
            result=record.result,
            error=None
            if error is None
            else JobErrorOut(type=error.type, message=error.message, traceback=error.traceback),
            tenant=record.tenant,
            labels=record.labels,
            unique_key=record.unique_key,
            timeout=record.timeout,
            worker_id=record.worker_id,
            cancel_requested=record.cancel_requested,
            parent_id=record.parent_id,
            workflow_id=record.workflow_id,
            stage=record.stage,
            created_at=record.created_at,
            started_at=record.started_at,
            finished_at=record.finished_at,
            expires_at=record.expires_at,
        )


class JobPage(BaseModel):
    """One page of ``GET /jobs``, newest first."""

    jobs: list[JobOut]
    next_cursor: int | None
    """Pass as ``before_id`` for the next (older) page; null on the last page."""


class QueueOut(BaseModel):
    """Job counts per state for one queue."""

    queue: str
    counts: dict[JobState, int]
    total: int
    oldest_queued_at: datetime | None
    oldest_queued_age_seconds: float | None
    """How long the oldest ready job has waited to be claimed."""

    @classmethod
    def of(cls, stats: QueueStats, now: datetime) -> QueueOut:
        """The API view of a queue's stats at ``now``."""
        counts = {state: stats.counts.get(state, 0) for state in JobState}
        oldest = stats.oldest_queued_at
        return cls(
            queue=stats.queue,
            counts=counts,
            total=sum(counts.values()),
            oldest_queued_at=oldest,
            oldest_queued_age_seconds=None
            if oldest is None
            else max(0.0, (now - oldest).total_seconds()),
        )


class WorkerOut(BaseModel):
    """A registered worker and its last heartbeat."""

    id: str
    hostname: str
    pid: int
    queues: list[str] | None
    concurrency: int
    running: int
    started_at: datetime
    heartbeat_at: datetime
    heartbeat_age_seconds: float
    stop_requested: bool

    @classmethod
    def of(cls, worker: WorkerRecord, now: datetime) -> WorkerOut:
        """The API view of a worker at ``now``."""
        return cls(
            id=worker.id,
            hostname=worker.hostname,
            pid=worker.pid,
            queues=None if worker.queues is None else list(worker.queues),
            concurrency=worker.concurrency,
            running=worker.running,
            started_at=worker.started_at,
            heartbeat_at=worker.heartbeat_at,
            heartbeat_age_seconds=max(0.0, (now - worker.heartbeat_at).total_seconds()),
            stop_requested=worker.stop_requested,
        )


class ThroughputBucket(BaseModel):
    """Attempts that ended in one time slice."""

    start: datetime
    completed: int
    failed: int
    """Jobs that failed for good."""
    retried: int = 0
    """Attempts that failed with another one to come."""


class Throughput(BaseModel):
    """Attempts ended per time slice over the last minutes, oldest slice first (slices
    are whole minutes)."""

    bucket_seconds: int
    buckets: list[ThroughputBucket]


class Health(BaseModel):
    """``/healthz`` and ``/readyz``."""

    status: str
    checks: dict[str, str] = Field(default_factory=dict)


class ErrorDetail(BaseModel):
    """What went wrong."""

    type: str
    message: str
    details: list[dict[str, Any]] | None = None


class ErrorOut(BaseModel):
    """Every error response: ``{"error": {"type": ..., "message": ...}}``."""

    error: ErrorDetail
