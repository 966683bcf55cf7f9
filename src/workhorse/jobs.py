"""Job states and the stored job record: one vocabulary for the database, API, CLI and UI."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal


class JobState(enum.StrEnum):
    """Where a job is in its life. ``completed``, ``failed`` and ``cancelled`` are final."""

    SCHEDULED = "scheduled"
    """Waiting for its ``run_at`` (a delay, or a retry's backoff)."""
    QUEUED = "queued"
    """Ready to be claimed by a worker."""
    BLOCKED = "blocked"
    """Waiting for the jobs it depends on."""
    RUNNING = "running"
    """Claimed by a worker that holds a lease on it."""
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        """True for the states a job never leaves by itself."""
        return self in FINAL_STATES

    @property
    def is_live(self) -> bool:
        """True while the job may still run (the states a unique key is held in)."""
        return self not in FINAL_STATES


FINAL_STATES: frozenset[JobState] = frozenset(
    {JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED}
)
LIVE_STATES: frozenset[JobState] = frozenset(JobState) - FINAL_STATES

OnDuplicate = Literal["return", "replace", "raise"]
"""What enqueuing a job whose unique key is held does: return the holder (the default),
replace the holder's arguments, priority and run time while it waits, or raise
:class:`~workhorse.errors.DuplicateJobError`."""

DependencyPolicy = Literal["fail", "cancel"]
"""What a workflow does to the parts waiting on a dependency that failed or was
cancelled: fail them, or cancel them (transitively, either way)."""


class WorkflowState(enum.StrEnum):
    """Where a workflow is, derived from its parts."""

    ACTIVE = "active"
    """Some part is still waiting or running."""
    COMPLETED = "completed"
    """Every part completed."""
    FAILED = "failed"
    """Every part is final and at least one failed."""
    CANCELLED = "cancelled"
    """Every part is final, none failed, at least one was cancelled."""

    @classmethod
    def of(cls, states: Iterable[JobState]) -> WorkflowState:
        """The state of a workflow whose parts are in ``states``."""
        seen = set(states)
        if seen & LIVE_STATES:
            return cls.ACTIVE
        if JobState.FAILED in seen:
            return cls.FAILED
        if JobState.CANCELLED in seen:
            return cls.CANCELLED
        return cls.COMPLETED


@dataclass(frozen=True, slots=True)
class JobError:
    """Why a job's last attempt failed."""

    type: str
    message: str
    traceback: str | None = None


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A job as stored: every field a user, the API or the dashboard can see.

    Timestamps are timezone-aware UTC datetimes.
    """

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
    created_at: datetime
    progress: float = 0.0
    progress_message: str | None = None
    result: Any = None
    error: JobError | None = None
    tenant: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    unique_key: str | None = None
    timeout: float | None = None
    worker_id: str | None = None
    cancel_requested: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None
    expires_at: datetime | None = None
    lease_expires_at: datetime | None = None
    parent_id: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    workflow_id: int | None = None
    """The workflow this job is a part of, if any."""

    @property
    def stage(self) -> str | None:
        """The current stage of a pipeline job (the one running, next, or where it
        failed); None for other jobs."""
        pipeline = self.meta.get("pipeline")
        stage = pipeline.get("stage") if isinstance(pipeline, dict) else None
        return stage if isinstance(stage, str) else None
