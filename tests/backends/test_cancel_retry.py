"""Operator actions on one job: cancel, retry and delete, with tenant scoping."""

from __future__ import annotations

from datetime import datetime

import pytest

from workhorse.backends.base import Backend, Outcome, ProgressUpdate
from workhorse.errors import JobStateError
from workhorse.jobs import JobError, JobState

from ._support import (
    STORE_CLOCK,
    assert_time,
    at,
    claim,
    claim_one,
    completed,
    final_job,
    get,
    insert_one,
    lease_of,
    new_job,
)

# -- cancel ----------------------------------------------------------------------------


async def test_cancel_a_queued_job(backend: Backend, now: datetime) -> None:
    job_id = await insert_one(backend, now=now)
    record = await backend.job_cancel(job_id=job_id)
    assert record is not None
    assert record.id == job_id
    assert record.state is JobState.CANCELLED
    assert_time(record.finished_at, now, STORE_CLOCK)
    assert (await get(backend, job_id)).state is JobState.CANCELLED
    assert await claim(backend, now=now) == []


async def test_cancel_a_scheduled_job(backend: Backend, now: datetime) -> None:
    job_id = await insert_one(backend, now=now, delay=60)
    record = await backend.job_cancel(job_id=job_id)
    assert record is not None
    assert record.state is JobState.CANCELLED
    assert record.finished_at is not None
    assert await claim(backend, now=at(now, 120)) == []


async def test_cancel_a_running_job_requests_it(backend: Backend, now: datetime) -> None:
    await insert_one(backend, now=now)
    job = await claim_one(backend, now=now)
    record = await backend.job_cancel(job_id=job.id)
    assert record is not None
    assert record.state is JobState.RUNNING
    assert record.cancel_requested is True
    assert record.finished_at is None
    stored = await get(backend, job.id)
    assert stored.state is JobState.RUNNING
    assert stored.cancel_requested is True
    reply = await backend.job_heartbeat(
        worker_id="worker-1", leases=[lease_of(job)], lease_seconds=30
    )
    assert reply.cancel_requested == frozenset({job.id})

    # The worker stops the task and reports it; the lease still holds.
    outcome = Outcome(job_id=job.id, lease_token=job.lease_token, state=JobState.CANCELLED)
    assert await backend.job_complete_many([outcome], now=at(now, 1)) == [True]
    assert (await get(backend, job.id)).state is JobState.CANCELLED


async def test_cancel_requested_job_may_still_complete(backend: Backend, now: datetime) -> None:
    await insert_one(backend, now=now)
    job = await claim_one(backend, now=now)
    await backend.job_cancel(job_id=job.id)
    assert await backend.job_complete_many([completed(job, result="1")], now=now) == [True]
    assert (await get(backend, job.id)).state is JobState.COMPLETED


@pytest.mark.parametrize("final", [JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED])
async def test_cancel_leaves_final_jobs_alone(
    backend: Backend, now: datetime, final: JobState
) -> None:
    job_id = await final_job(backend, now=now, state=final)
    before = await get(backend, job_id)
    record = await backend.job_cancel(job_id=job_id)
    assert record is not None
    assert record.state is final
    assert record.cancel_requested == before.cancel_requested
    assert await get(backend, job_id) == before


async def test_cancel_unknown_job(backend: Backend) -> None:
    assert await backend.job_cancel(job_id=123456) is None


async def test_cancel_is_tenant_scoped(backend: Backend, now: datetime) -> None:
    job_id = await insert_one(backend, now=now, tenant="acme")
    assert await backend.job_cancel(job_id=job_id, tenant="globex") is None
    assert (await get(backend, job_id)).state is JobState.QUEUED
    record = await backend.job_cancel(job_id=job_id, tenant="acme")
    assert record is not None
    assert record.state is JobState.CANCELLED


# -- retry -----------------------------------------------------------------------------


async def test_retry_a_failed_job(backend: Backend, now: datetime) -> None:
    job_id = await insert_one(backend, now=now, max_attempts=1)
    job = await claim_one(backend, now=now)
    await backend.job_set_progress(
        [ProgressUpdate(job_id=job.id, lease_token=job.lease_token, progress=60.0, message="m")]
    )
    outcome = Outcome(
        job_id=job.id,
        lease_token=job.lease_token,
        state=JobState.FAILED,
        error=JobError(type="E", message="x"),
        ttl=60,
    )
    assert await backend.job_complete_many([outcome], now=at(now, 1)) == [True]

    record = await backend.job_retry(job_id=job_id, now=at(now, 100))
    assert record is not None
    assert record.state is JobState.QUEUED
    assert_time(record.run_at, at(now, 100))
    assert record.error is None
    assert record.result is None
    assert record.finished_at is None
    assert record.expires_at is None
    assert record.cancel_requested is False
    assert record.progress == 0.0
    assert record.progress_message is None
    assert record.attempt == 1
    assert record.max_attempts == 2, "one more attempt is granted"
    assert await get(backend, job_id) == record

    again = await claim_one(backend, now=at(now, 101))
    assert again.id == job_id
    assert (again.attempt, again.max_attempts) == (2, 2)


async def test_retry_keeps_attempts_that_are_left(backend: Backend, now: datetime) -> None:
    job_id = await final_job(backend, now=now, state=JobState.FAILED, max_attempts=5)
    record = await backend.job_retry(job_id=job_id, now=now)
    assert record is not None
    assert (record.attempt, record.max_attempts) == (1, 5)


async def test_retry_a_cancelled_job(backend: Backend, now: datetime) -> None:
    job_id = await final_job(backend, now=now, state=JobState.CANCELLED, delay=500)
    record = await backend.job_retry(job_id=job_id, now=at(now, 10))
    assert record is not None
    assert record.state is JobState.QUEUED
    assert record.finished_at is None
    assert record.attempt == 0
    assert record.max_attempts == 3
    assert (await claim_one(backend, now=at(now, 11))).id == job_id


async def test_retry_a_cancel_requested_job_clears_the_request(
    backend: Backend, now: datetime
) -> None:
    await insert_one(backend, now=now)
    job = await claim_one(backend, now=now)
    await backend.job_cancel(job_id=job.id)
    outcome = Outcome(job_id=job.id, lease_token=job.lease_token, state=JobState.CANCELLED)
    await backend.job_complete_many([outcome], now=now)
    record = await backend.job_retry(job_id=job.id, now=now)
    assert record is not None
    assert record.cancel_requested is False
    assert record.state is JobState.QUEUED


async def test_retry_without_now(backend: Backend, now: datetime) -> None:
    job_id = await final_job(backend, now=at(now, -3600), state=JobState.FAILED)
    record = await backend.job_retry(job_id=job_id)
    assert record is not None
    assert_time(record.run_at, now, STORE_CLOCK)


async def test_retry_refuses_live_and_completed_jobs(backend: Backend, now: datetime) -> None:
    queued = await insert_one(backend, now=now, queue="q")
    scheduled = await insert_one(backend, now=now, delay=100, queue="s")
    await insert_one(backend, now=now, queue="r")
    running = (await claim_one(backend, now=now, queues=["r"])).id
    done = await final_job(backend, now=now, queue="c")
    for job_id in (queued, scheduled, running, done):
        before = await get(backend, job_id)
        with pytest.raises(JobStateError):
            await backend.job_retry(job_id=job_id, now=now)
        assert await get(backend, job_id) == before


async def test_retry_unknown_job(backend: Backend, now: datetime) -> None:
    assert await backend.job_retry(job_id=55555, now=now) is None


async def test_retry_is_tenant_scoped(backend: Backend, now: datetime) -> None:
    job_id = await final_job(backend, now=now, state=JobState.FAILED, tenant="acme")
    assert await backend.job_retry(job_id=job_id, tenant="globex", now=now) is None
    assert (await get(backend, job_id)).state is JobState.FAILED
    record = await backend.job_retry(job_id=job_id, tenant="acme", now=now)
    assert record is not None
    assert record.state is JobState.QUEUED


# -- delete ----------------------------------------------------------------------------


@pytest.mark.parametrize("final", [JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED])
async def test_delete_a_final_job(backend: Backend, now: datetime, final: JobState) -> None:
    job_id = await final_job(backend, now=now, state=final)
    assert await backend.job_delete(job_id=job_id) is True
    assert await backend.job_get(job_id=job_id) is None
    assert await backend.job_delete(job_id=job_id) is False


async def test_delete_refuses_live_jobs(backend: Backend, now: datetime) -> None:
    queued = await insert_one(backend, now=now, queue="q")
    scheduled = await insert_one(backend, now=now, delay=100, queue="s")
    await insert_one(backend, now=now, queue="r")
    running = (await claim_one(backend, now=now, queues=["r"])).id
    for job_id in (queued, scheduled, running):
        with pytest.raises(JobStateError):
            await backend.job_delete(job_id=job_id)
        assert await backend.job_get(job_id=job_id) is not None


async def test_delete_unknown_job(backend: Backend) -> None:
    assert await backend.job_delete(job_id=77777) is False


async def test_delete_is_tenant_scoped(backend: Backend, now: datetime) -> None:
    job_id = await final_job(backend, now=now, tenant="acme")
    assert await backend.job_delete(job_id=job_id, tenant="globex") is False
    assert await backend.job_get(job_id=job_id) is not None
    assert await backend.job_delete(job_id=job_id, tenant="acme") is True


async def test_retry_takes_the_unique_key_back(backend: Backend, now: datetime) -> None:
    job_id = await final_job(backend, now=now, state=JobState.FAILED, unique_key="k")
    assert await backend.job_retry(job_id=job_id, now=now) is not None
    (row,) = await backend.job_insert_many([new_job(unique_key="k")], now=now)
    assert (row.id, row.created) == (job_id, False)


async def test_retry_refuses_when_another_job_holds_the_unique_key(
    backend: Backend, now: datetime
) -> None:
    old = await final_job(backend, now=now, state=JobState.FAILED, unique_key="k")
    (newer,) = await backend.job_insert_many([new_job(unique_key="k")], now=now)
    assert newer.created is True
    with pytest.raises(JobStateError):
        await backend.job_retry(job_id=old, now=now)
    assert (await get(backend, old)).state is JobState.FAILED
    assert (await get(backend, newer.id)).state is JobState.QUEUED
