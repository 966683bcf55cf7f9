"""Small helpers shared by the conformance tests: building, inserting and claiming jobs,
and comparing store timestamps."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from workhorse.backends.base import Backend, ClaimedJob, Lease, NewJob, Outcome
from workhorse.jobs import JobError, JobRecord, JobState

EXACT = timedelta(milliseconds=5)
"""Tolerance for a timestamp the test passed in: stores may round to micro/milliseconds."""
STORE_CLOCK = timedelta(seconds=10)
"""Tolerance for a timestamp taken from the store's own clock."""


def at(base: datetime, seconds: float) -> datetime:
    """``base`` shifted by ``seconds``."""
    return base + timedelta(seconds=seconds)


def assert_time(actual: datetime | None, expected: datetime, tolerance: timedelta = EXACT) -> None:
    """``actual`` is a timezone-aware timestamp within ``tolerance`` of ``expected``."""
    assert actual is not None, f"expected a timestamp near {expected}, got None"
    assert actual.tzinfo is not None, f"{actual!r} is not timezone-aware"
    assert actual.utcoffset() == timedelta(0), f"{actual!r} is not UTC"
    assert abs(actual - expected) <= tolerance, f"{actual} is not within {tolerance} of {expected}"


def new_job(task: str = "tests.task", **fields: Any) -> NewJob:
    """A ``NewJob`` with test defaults."""
    return NewJob(task=task, **fields)


async def insert(backend: Backend, *jobs: NewJob, now: datetime | None = None) -> list[int]:
    """Insert ``jobs`` (all expected to be created) and return their ids."""
    inserted = await backend.job_insert_many(list(jobs), now=now)
    assert all(row.created for row in inserted)
    return [row.id for row in inserted]


async def insert_one(backend: Backend, *, now: datetime | None = None, **fields: Any) -> int:
    """Insert one job built from ``fields`` and return its id."""
    (job_id,) = await insert(backend, new_job(**fields), now=now)
    return job_id


async def get(backend: Backend, job_id: int) -> JobRecord:
    """The job, which must exist."""
    record = await backend.job_get(job_id=job_id)
    assert record is not None, f"job {job_id} is missing"
    return record


async def claim(
    backend: Backend,
    *,
    now: datetime,
    worker_id: str = "worker-1",
    limit: int = 10,
    queues: list[str] | None = None,
    lease_seconds: float = 30.0,
) -> list[ClaimedJob]:
    """Claim up to ``limit`` jobs at ``now``."""
    return await backend.job_claim(
        worker_id=worker_id, queues=queues, limit=limit, lease_seconds=lease_seconds, now=now
    )


async def claim_one(
    backend: Backend,
    *,
    now: datetime,
    worker_id: str = "worker-1",
    lease_seconds: float = 30.0,
    queues: list[str] | None = None,
) -> ClaimedJob:
    """Claim exactly one job at ``now``."""
    claimed = await claim(
        backend, now=now, worker_id=worker_id, limit=1, queues=queues, lease_seconds=lease_seconds
    )
    assert len(claimed) == 1, f"expected one job to claim, got {claimed}"
    return claimed[0]


def lease_of(job: ClaimedJob) -> Lease:
    """The lease a claim handed out."""
    return Lease(job_id=job.id, token=job.lease_token)


def completed(job: ClaimedJob, result: str = "null", ttl: float | None = None) -> Outcome:
    """A successful outcome for ``job``."""
    return Outcome(
        job_id=job.id, lease_token=job.lease_token, state=JobState.COMPLETED, result=result, ttl=ttl
    )


def failed(job: ClaimedJob, ttl: float | None = None) -> Outcome:
    """A final failure for ``job``."""
    return Outcome(
        job_id=job.id,
        lease_token=job.lease_token,
        state=JobState.FAILED,
        error=JobError(type="ValueError", message="boom", traceback="Traceback ..."),
        ttl=ttl,
    )


async def finish(
    backend: Backend, job: ClaimedJob, *, now: datetime, ttl: float | None = None
) -> None:
    """Complete ``job`` successfully, which must apply."""
    assert await backend.job_complete_many([completed(job, ttl=ttl)], now=now) == [True]


async def final_job(
    backend: Backend,
    *,
    now: datetime,
    state: JobState = JobState.COMPLETED,
    ttl: float | None = None,
    **fields: Any,
) -> int:
    """Insert, claim and end a job in the final ``state``; returns its id."""
    job_id = await insert_one(backend, now=now, **fields)
    if state is JobState.CANCELLED:
        assert await backend.job_cancel(job_id=job_id) is not None
        return job_id
    job = await claim_one(backend, now=now, queues=[fields.get("queue", "default")])
    assert job.id == job_id, "another job was claimed first"
    outcome = failed(job, ttl=ttl) if state is JobState.FAILED else completed(job, ttl=ttl)
    assert await backend.job_complete_many([outcome], now=now) == [True]
    return job_id
