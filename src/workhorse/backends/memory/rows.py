"""The rows of the memory store: jobs and workers kept as a SQL store keeps them (JSON
as text), and turned into fresh public records on the way out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from workhorse.backends._workflows import LIVE_MASK, holds_key
from workhorse.backends.base import JobFilter, NewJob, WorkerInfo, WorkerRecord
from workhorse.errors import SerializationError
from workhorse.jobs import JobError, JobRecord, JobState
from workhorse.serialization import dumps, loads


def utc(moment: datetime | None) -> datetime:
    """``moment`` in UTC, or the current time; naive datetimes are refused because their
    zone is a guess."""
    if moment is None:
        return datetime.now(UTC)
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: pass a timezone-aware one")
    return moment.astimezone(UTC)


def encode_new_job(job: NewJob) -> tuple[str, str]:
    """Check ``job``'s JSON text and encode its labels and meta, as a SQL store would
    refuse them: ``(labels, meta)``."""
    for what, text in (("args", job.args), ("kwargs", job.kwargs)):
        try:
            loads(text)
        except ValueError as exc:
            raise SerializationError(f"{what} of task {job.task!r} are not JSON: {exc}") from None
    return (
        dumps(job.labels, what=f"labels of task {job.task!r}"),
        dumps(job.meta, what=f"meta of task {job.task!r}"),
    )


def after(moment: datetime, seconds: float | None) -> datetime | None:
    """``seconds`` after ``moment``; None (never) when ``seconds`` is None."""
    return None if seconds is None else moment + timedelta(seconds=seconds)


@dataclass(slots=True)
class StoredJob:
    """A stored job. JSON values stay as text, exactly as a SQL store keeps them."""

    id: int
    task: str
    queue: str
    state: JobState
    priority: int
    args: str
    kwargs: str
    run_at: datetime
    max_attempts: int
    created_at: datetime
    tenant: str | None
    labels: str
    unique_key: str | None
    timeout: float | None
    parent_id: int | None
    meta: str
    attempt: int = 0
    progress: float = 0.0
    progress_message: str | None = None
    result: str | None = None
    error: JobError | None = None
    worker_id: str | None = None
    lease_token: str | None = None
    cancel_requested: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None
    expires_at: datetime | None = None
    lease_expires_at: datetime | None = None
    workflow_id: int | None = None
    has_dependents: bool = False
    """True once another job waits on this one (finishing it settles them)."""
    unique_states: int = LIVE_MASK
    """The ``unique_states`` bits: the states in which the job holds its unique key."""

    def holds(self, token: str) -> bool:
        """True if ``token`` is the lease of this job's current attempt."""
        return self.state is JobState.RUNNING and self.lease_token == token

    def drop_lease(self) -> None:
        """Forget the lease: no token is honoured any more."""
        self.lease_token = None
        self.lease_expires_at = None

    def finish(self, state: JobState, now: datetime, ttl: float | None) -> None:
        """End the job in the final ``state``, kept ``ttl`` seconds (None: forever)."""
        self.state = state
        self.finished_at = now
        self.expires_at = after(now, ttl)
        self.drop_lease()

    def visible_to(self, tenant: str | None) -> bool:
        """True if a caller scoped to ``tenant`` (None: every tenant) may see the job."""
        return tenant is None or self.tenant == tenant

    def matches(self, f: JobFilter) -> bool:
        """True if the job passes every field of ``f``."""
        return (
            self.visible_to(f.tenant)
            and (f.queue is None or self.queue == f.queue)
            and (f.states is None or self.state in f.states)
            and (f.task is None or self.task == f.task)
            and (f.label is None or loads(self.labels).get(f.label[0]) == f.label[1])
            and (f.created_after is None or self.created_at > utc(f.created_after))
            and (f.created_before is None or self.created_at < utc(f.created_before))
            and (f.parent_id is None or self.parent_id == f.parent_id)
        )

    @property
    def waiting(self) -> bool:
        """Queued or scheduled: claimable once due."""
        return self.state in (JobState.QUEUED, JobState.SCHEDULED)

    def due(self, now: datetime) -> bool:
        """True if a claim at ``now`` may take the job."""
        return self.state is JobState.QUEUED or (
            self.state is JobState.SCHEDULED and self.run_at <= now
        )

    def record(self) -> JobRecord:
        """A fresh, decoded copy for the caller."""
        return JobRecord(
            id=self.id,
            task=self.task,
            queue=self.queue,
            state=self.state,
            priority=self.priority,
            args=loads(self.args),
            kwargs=loads(self.kwargs),
            run_at=self.run_at,
            attempt=self.attempt,
            max_attempts=self.max_attempts,
            created_at=self.created_at,
            progress=self.progress,
            progress_message=self.progress_message,
            result=None if self.result is None else loads(self.result),
            error=self.error,
            tenant=self.tenant,
            labels=loads(self.labels),
            unique_key=self.unique_key,
            timeout=self.timeout,
            worker_id=self.worker_id,
            cancel_requested=self.cancel_requested,
            started_at=self.started_at,
            finished_at=self.finished_at,
            expires_at=self.expires_at,
            lease_expires_at=self.lease_expires_at,
            parent_id=self.parent_id,
            meta=loads(self.meta),
            workflow_id=self.workflow_id,
        )

    def holds_key(self) -> bool:
        """True while the job holds its unique key (it has one, in one of its states)."""
        return self.unique_key is not None and holds_key(self.state, self.unique_states)


@dataclass(slots=True)
class StoredWorker:
    """A registered worker; ``seq`` orders workers registered in the same instant."""

    info: WorkerInfo
    meta: str
    seq: int
    started_at: datetime
    heartbeat_at: datetime
    running: int = 0
    stop_requested: bool = False

    def record(self) -> WorkerRecord:
        """A fresh copy for the caller."""
        return WorkerRecord(
            id=self.info.id,
            hostname=self.info.hostname,
            pid=self.info.pid,
            queues=self.info.queues,
            concurrency=self.info.concurrency,
            started_at=self.started_at,
            heartbeat_at=self.heartbeat_at,
            running=self.running,
            stop_requested=self.stop_requested,
            meta=loads(self.meta),
        )
