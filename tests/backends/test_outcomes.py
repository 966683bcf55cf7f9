"""Ending attempts: completion, retry (scheduled), failure, cancellation, and the fence
that stops a write under a lease that is no longer held."""

from __future__ import annotations

from datetime import UTC, datetime

from workhorse.backends.base import Backend, Outcome, ProgressUpdate
from workhorse.jobs import JobError, JobState

from ._support import (
    STORE_CLOCK,
    assert_time,
    at,
    claim,
    claim_one,
    completed,
    failed,
    get,
    insert,
    insert_one,
    new_job,
)


async def test_completed_stores_result_and_times(backend: Backend, now: datetime) -> None:
    job_id = await insert_one(backend, now=now)
    job = await claim_one(backend, now=now)
    outcome = completed(job, result='{"total": 3, "items": [1, 2, null]}', ttl=3600)
    assert await backend.job_complete_many([outcome], now=at(now, 5)) == [True]
    record = await get(backend, job_id)
    assert record.state is JobState.COMPLETED
    assert record.result == {"total": 3, "items": [1, 2, None]}
    assert record.error is None
    assert record.attempt == 1
    assert_time(record.finished_at, at(now, 5))
    assert_time(record.expires_at, at(now, 3605))


async def test_completed_without_ttl_never_expires(backend: Backend, now: datetime) -> None:
    await insert_one(backend, now=now)
    job = await claim_one(backend, now=now)
    assert await backend.job_complete_many([completed(job, result="42")], now=now) == [True]
    record = await get(backend, job.id)
    assert record.result == 42
    assert record.expires_at is None


async def test_completed_with_no_result(backend: Backend, now: datetime) -> None:
    await insert_one(backend, now=now)
    job = await claim_one(backend, now=now)
    outcome = Outcome(job_id=job.id, lease_token=job.lease_token, state=JobState.COMPLETED)
    assert await backend.job_complete_many([outcome], now=now) == [True]
    record = await get(backend, job.id)
    assert record.state is JobState.COMPLETED
    assert record.result is None


async def test_complete_without_now_uses_the_store_clock(backend: Backend, now: datetime) -> None:
    await insert_one(backend, now=now)
    job = await claim_one(backend, now=now)
    assert await backend.job_complete_many([completed(job, ttl=60)]) == [True]
    record = await get(backend, job.id)
    assert_time(record.finished_at, datetime.now(UTC), STORE_CLOCK)
    assert record.finished_at is not None
    assert_time(record.expires_at, at(record.finished_at, 60))


async def test_scheduled_outcome_is_a_retry(backend: Backend, now: datetime) -> None:
    job_id = await insert_one(backend, now=now)
    job = await claim_one(backend, now=now)
    error = JobError(type="TimeoutError", message="slow upstream", traceback="tb text")
    outcome = Outcome(
        job_id=job.id,
        lease_token=job.lease_token,
        state=JobState.SCHEDULED,
        error=error,
        retry_delay=30,
    )
    assert await backend.job_complete_many([outcome], now=at(now, 2)) == [True]
    record = await get(backend, job_id)
    assert record.state is JobState.SCHEDULED
    assert_time(record.run_at, at(now, 32))
    assert record.error == error
    assert record.attempt == 1
    assert record.lease_expires_at is None
    assert record.finished_at is None
    assert record.expires_at is None

    assert await claim(backend, now=at(now, 31)) == []
    again = await claim_one(backend, now=at(now, 33))
    assert again.id == job_id
    assert again.attempt == 2
    assert again.lease_token != job.lease_token


async def test_failed_stores_the_error(backend: Backend, now: datetime) -> None:
    job_id = await insert_one(backend, now=now)
    job = await claim_one(backend, now=now)
    assert await backend.job_complete_many([failed(job, ttl=10)], now=at(now, 3)) == [True]
    record = await get(backend, job_id)
    assert record.state is JobState.FAILED
    assert record.error == JobError(type="ValueError", message="boom", traceback="Traceback ...")
    assert record.result is None
    assert_time(record.finished_at, at(now, 3))
    assert_time(record.expires_at, at(now, 13))
    assert await claim(backend, now=at(now, 100)) == []


async def test_error_without_traceback(backend: Backend, now: datetime) -> None:
    await insert_one(backend, now=now)
    job = await claim_one(backend, now=now)
    error = JobError(type="KeyError", message="'x'")
    outcome = Outcome(
        job_id=job.id, lease_token=job.lease_token, state=JobState.FAILED, error=error
    )
    assert await backend.job_complete_many([outcome], now=now) == [True]
    assert (await get(backend, job.id)).error == error


async def test_cancelled_outcome(backend: Backend, now: datetime) -> None:
    await insert_one(backend, now=now)
    job = await claim_one(backend, now=now)
    error = JobError(type="Cancelled", message="stopped by user")
    outcome = Outcome(
        job_id=job.id, lease_token=job.lease_token, state=JobState.CANCELLED, error=error, ttl=5
    )
    assert await backend.job_complete_many([outcome], now=at(now, 1)) == [True]
    record = await get(backend, job.id)
    assert record.state is JobState.CANCELLED
    assert record.error == error
    assert_time(record.finished_at, at(now, 1))
    assert_time(record.expires_at, at(now, 6))


async def test_completing_twice_is_fenced(backend: Backend, now: datetime) -> None:
    await insert_one(backend, now=now)
    job = await claim_one(backend, now=now)
    assert await backend.job_complete_many([completed(job, result="1")], now=now) == [True]
    assert await backend.job_complete_many([failed(job)], now=at(now, 1)) == [False]
    record = await get(backend, job.id)
    assert record.state is JobState.COMPLETED
    assert record.result == 1
    assert record.error is None


async def test_wrong_token_is_fenced(backend: Backend, now: datetime) -> None:
    await insert_one(backend, now=now)
    job = await claim_one(backend, now=now)
    forged = Outcome(job_id=job.id, lease_token="not-the-token", state=JobState.COMPLETED)
    assert await backend.job_complete_many([forged], now=now) == [False]
    assert (await get(backend, job.id)).state is JobState.RUNNING


async def test_completing_a_job_that_is_not_running_is_fenced(
    backend: Backend, now: datetime
) -> None:
    job_id = await insert_one(backend, now=now)
    outcome = Outcome(job_id=job_id, lease_token="anything", state=JobState.COMPLETED)
    assert await backend.job_complete_many([outcome], now=now) == [False]
    assert (await get(backend, job_id)).state is JobState.QUEUED


async def test_completing_an_unknown_job_is_fenced(backend: Backend, now: datetime) -> None:
    outcome = Outcome(job_id=987654, lease_token="x", state=JobState.COMPLETED)
    assert await backend.job_complete_many([outcome], now=now) == [False]


async def test_a_batch_reports_each_outcome_in_order(backend: Backend, now: datetime) -> None:
    await insert(backend, *[new_job() for _ in range(4)], now=now)
    jobs = await claim(backend, now=now, limit=4)
    assert len(jobs) == 4
    outcomes = [
        completed(jobs[0], result='"a"'),
        Outcome(job_id=jobs[1].id, lease_token="stale", state=JobState.COMPLETED),
        failed(jobs[2]),
        Outcome(
            job_id=jobs[3].id,
            lease_token=jobs[3].lease_token,
            state=JobState.SCHEDULED,
            error=JobError(type="E", message="m"),
            retry_delay=5,
        ),
    ]
    assert await backend.job_complete_many(outcomes, now=now) == [True, False, True, True]
    states = [(await get(backend, job.id)).state for job in jobs]
    assert states == [JobState.COMPLETED, JobState.RUNNING, JobState.FAILED, JobState.SCHEDULED]


async def test_empty_batch(backend: Backend, now: datetime) -> None:
    assert await backend.job_complete_many([], now=now) == []


async def test_a_retried_attempt_fences_the_earlier_token(backend: Backend, now: datetime) -> None:
    await insert_one(backend, now=now)
    first = await claim_one(backend, now=now)
    retry = Outcome(
        job_id=first.id,
        lease_token=first.lease_token,
        state=JobState.SCHEDULED,
        error=JobError(type="E", message="again"),
    )
    assert await backend.job_complete_many([retry], now=now) == [True]
    second = await claim_one(backend, now=at(now, 1))
    assert second.id == first.id
    assert await backend.job_complete_many([completed(first, result='"old"')], now=now) == [False]
    assert await backend.job_complete_many([completed(second, result='"new"')], now=now) == [True]
    assert (await get(backend, first.id)).result == "new"


async def test_a_retry_of_a_cancel_requested_job_cancels_it(
    backend: Backend, now: datetime
) -> None:
    job_id = await insert_one(backend, now=now, max_attempts=5)
    job = await claim_one(backend, now=now)
    await backend.job_cancel(job_id=job_id)
    error = JobError(type="OSError", message="flaky")
    retry = Outcome(
        job_id=job.id,
        lease_token=job.lease_token,
        state=JobState.SCHEDULED,
        error=error,
        retry_delay=1,
    )
    assert await backend.job_complete_many([retry], now=at(now, 1)) == [True]
    record = await get(backend, job_id)
    assert record.state is JobState.CANCELLED
    assert_time(record.finished_at, at(now, 1))
    assert await claim(backend, now=at(now, 100)) == []


async def test_outcome_carries_the_attempts_last_progress(backend: Backend, now: datetime) -> None:
    first, second = await insert(backend, new_job(), new_job(), now=now)
    jobs = await claim(backend, now=now, limit=2)
    held = {job.id: job for job in jobs}
    await backend.job_set_progress(
        [ProgressUpdate(job_id=second, lease_token=held[second].lease_token, progress=40)]
    )
    done = Outcome(
        job_id=first,
        lease_token=held[first].lease_token,
        state=JobState.COMPLETED,
        progress=100,
        progress_message="all pages",
    )
    silent = Outcome(job_id=second, lease_token=held[second].lease_token, state=JobState.FAILED)
    assert await backend.job_complete_many([done, silent], now=now) == [True, True]
    record = await get(backend, first)
    assert (record.progress, record.progress_message) == (100, "all pages")
    assert (await get(backend, second)).progress == 40  # no progress in the outcome: kept
