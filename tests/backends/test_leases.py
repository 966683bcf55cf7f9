"""Leases: renewal by heartbeat, progress, release on shutdown, reclaiming expired leases,
and the fence that keeps a worker whose lease was reclaimed from touching the job."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

from workhorse.backends.base import (
    Backend,
    ClaimedJob,
    Lease,
    Outcome,
    ProgressUpdate,
    ReclaimedJob,
    ReclaimResult,
)
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
    lease_of,
    new_job,
)

# -- heartbeat -------------------------------------------------------------------------


async def test_heartbeat_extends_held_leases(backend: Backend, now: datetime) -> None:
    await insert(backend, new_job(), new_job(), now=now)
    jobs = await claim(backend, now=now, lease_seconds=5)
    reply = await backend.job_heartbeat(
        worker_id="worker-1", leases=[lease_of(job) for job in jobs], lease_seconds=600
    )
    assert reply.lost == frozenset()
    assert reply.cancel_requested == frozenset()
    for job in jobs:
        record = await get(backend, job.id)
        assert_time(record.lease_expires_at, at(datetime.now(UTC), 600), STORE_CLOCK)
    reclaimed = await backend.job_reclaim_expired(now=at(now, 60))
    assert reclaimed.requeued == ()
    assert reclaimed.failed == ()


async def test_heartbeat_reports_lost_leases(backend: Backend, now: datetime) -> None:
    await insert(backend, new_job(), new_job(), new_job(), now=now)
    held, done, _ = await claim(backend, now=now, limit=3)
    await backend.job_complete_many([completed(done)], now=now)
    leases = [
        lease_of(held),
        lease_of(done),
        Lease(job_id=424242, token="nope"),
    ]
    reply = await backend.job_heartbeat(worker_id="worker-1", leases=leases, lease_seconds=60)
    assert reply.lost == frozenset({done.id, 424242})
    assert reply.cancel_requested == frozenset()


async def test_heartbeat_with_a_wrong_token_does_not_extend(
    backend: Backend, now: datetime
) -> None:
    await insert_one(backend, now=now)
    job = await claim_one(backend, now=now, lease_seconds=10)
    before = (await get(backend, job.id)).lease_expires_at
    reply = await backend.job_heartbeat(
        worker_id="worker-1", leases=[Lease(job_id=job.id, token="forged")], lease_seconds=3600
    )
    assert reply.lost == frozenset({job.id})
    assert (await get(backend, job.id)).lease_expires_at == before


async def test_heartbeat_reports_cancel_requests(backend: Backend, now: datetime) -> None:
    await insert(backend, new_job(), new_job(), now=now)
    keep, stop = await claim(backend, now=now, limit=2, lease_seconds=5)
    await backend.job_cancel(job_id=stop.id)
    reply = await backend.job_heartbeat(
        worker_id="worker-1", leases=[lease_of(keep), lease_of(stop)], lease_seconds=600
    )
    assert reply.cancel_requested == frozenset({stop.id})
    assert reply.lost == frozenset()
    record = await get(backend, stop.id)
    assert record.state is JobState.RUNNING
    assert_time(record.lease_expires_at, at(datetime.now(UTC), 600), STORE_CLOCK)


async def test_heartbeat_with_no_leases(backend: Backend) -> None:
    reply = await backend.job_heartbeat(worker_id="worker-1", leases=[], lease_seconds=30)
    assert (reply.lost, reply.cancel_requested) == (frozenset(), frozenset())


# -- progress --------------------------------------------------------------------------


async def test_progress_is_recorded(backend: Backend, now: datetime) -> None:
    await insert_one(backend, now=now)
    job = await claim_one(backend, now=now)
    await backend.job_set_progress(
        [ProgressUpdate(job_id=job.id, lease_token=job.lease_token, progress=42.5, message="half")]
    )
    record = await get(backend, job.id)
    assert record.progress == 42.5
    assert record.progress_message == "half"
    await backend.job_set_progress(
        [ProgressUpdate(job_id=job.id, lease_token=job.lease_token, progress=100.0)]
    )
    record = await get(backend, job.id)
    assert record.progress == 100.0
    assert record.progress_message is None


async def test_progress_in_a_batch(backend: Backend, now: datetime) -> None:
    await insert(backend, new_job(), new_job(), now=now)
    a, b = await claim(backend, now=now, limit=2)
    await backend.job_set_progress(
        [
            ProgressUpdate(job_id=a.id, lease_token=a.lease_token, progress=10.0, message="a"),
            ProgressUpdate(job_id=b.id, lease_token="stale", progress=90.0, message="b"),
        ]
    )
    record_a, record_b = await get(backend, a.id), await get(backend, b.id)
    assert (record_a.progress, record_a.progress_message) == (10.0, "a")
    assert (record_b.progress, record_b.progress_message) == (0.0, None)


async def test_progress_of_a_finished_job_is_ignored(backend: Backend, now: datetime) -> None:
    await insert_one(backend, now=now)
    job = await claim_one(backend, now=now)
    await backend.job_set_progress(
        [ProgressUpdate(job_id=job.id, lease_token=job.lease_token, progress=50.0, message="m")]
    )
    await backend.job_complete_many([completed(job)], now=now)
    await backend.job_set_progress(
        [ProgressUpdate(job_id=job.id, lease_token=job.lease_token, progress=75.0, message="late")]
    )
    record = await get(backend, job.id)
    assert (record.progress, record.progress_message) == (50.0, "m")


async def test_progress_for_an_unknown_job_is_ignored(backend: Backend) -> None:
    await backend.job_set_progress([ProgressUpdate(job_id=31337, lease_token="x", progress=1.0)])
    assert await backend.job_get(job_id=31337) is None


# -- release ---------------------------------------------------------------------------


async def test_release_requeues_without_counting_the_attempt(
    backend: Backend, now: datetime
) -> None:
    job_id = await insert_one(backend, now=now)
    job = await claim_one(backend, now=now)
    assert await backend.job_release([lease_of(job)]) == 1
    record = await get(backend, job_id)
    assert record.state is JobState.QUEUED
    assert record.attempt == 0
    assert record.lease_expires_at is None
    again = await claim_one(backend, now=at(now, 1))
    assert again.id == job_id
    assert again.attempt == 1
    assert again.lease_token != job.lease_token


async def test_release_is_fenced(backend: Backend, now: datetime) -> None:
    await insert(backend, new_job(), new_job(), now=now)
    a, b = await claim(backend, now=now, limit=2)
    released = await backend.job_release(
        [lease_of(a), Lease(job_id=b.id, token="forged"), Lease(job_id=999999, token="x")]
    )
    assert released == 1
    assert (await get(backend, a.id)).state is JobState.QUEUED
    assert (await get(backend, b.id)).state is JobState.RUNNING
    assert await backend.job_release([lease_of(a)]) == 0, "a released lease is gone"


async def test_release_of_a_finished_job_does_nothing(backend: Backend, now: datetime) -> None:
    await insert_one(backend, now=now)
    job = await claim_one(backend, now=now)
    await backend.job_complete_many([completed(job, result="7")], now=now)
    assert await backend.job_release([lease_of(job)]) == 0
    record = await get(backend, job.id)
    assert record.state is JobState.COMPLETED
    assert record.result == 7


async def test_release_nothing(backend: Backend) -> None:
    assert await backend.job_release([]) == 0


# -- reclaiming expired leases ---------------------------------------------------------


async def test_expired_lease_goes_back_to_the_queue(backend: Backend, now: datetime) -> None:
    job_id = await insert_one(backend, now=now, max_attempts=3)
    run_at = (await get(backend, job_id)).run_at
    await claim_one(backend, now=now, worker_id="crashed-worker", lease_seconds=30)
    # Enqueued while the crashed worker held the first job: due later, same priority.
    newer = await insert_one(backend, now=at(now, 10))
    assert await backend.job_reclaim_expired(now=at(now, 29)) == ReclaimResult()
    result = await backend.job_reclaim_expired(now=at(now, 31))
    assert result.requeued == (job_id,)
    assert result.failed == ()
    record = await get(backend, job_id)
    assert record.state is JobState.QUEUED
    assert record.attempt == 1, "the lost attempt stays counted"
    assert record.lease_expires_at is None
    assert record.error is not None
    assert record.error.type == "LeaseExpiredError"
    assert "crashed-worker" in record.error.message
    assert record.finished_at is None
    assert record.run_at == run_at, "a reclaimed job keeps its place: its run_at"

    again = await claim_one(backend, now=at(now, 32), worker_id="healthy-worker")
    assert again.id == job_id, "it runs before the jobs enqueued since"
    assert again.attempt == 2
    assert (await claim_one(backend, now=at(now, 32))).id == newer


async def test_a_claim_says_when_the_previous_attempt_was_lost(
    backend: Backend, now: datetime
) -> None:
    job_id = await insert_one(backend, now=now, max_attempts=5)
    first = await claim_one(backend, now=now, lease_seconds=10)
    assert first.previous_attempt_lost is False
    await backend.job_reclaim_expired(now=at(now, 20))
    second = await claim_one(backend, now=at(now, 21))
    assert second.previous_attempt_lost is True
    # Released unstarted, it is still the job whose last attempt was lost.
    assert await backend.job_release([lease_of(second)]) == 1
    third = await claim_one(backend, now=at(now, 22))
    assert third.previous_attempt_lost is True
    # An attempt that ends by itself, even failing, clears it.
    retry = Outcome(
        job_id=job_id,
        lease_token=third.lease_token,
        state=JobState.SCHEDULED,
        error=JobError(type="ValueError", message="no"),
    )
    assert await backend.job_complete_many([retry], now=at(now, 23)) == [True]
    fourth = await claim_one(backend, now=at(now, 24))
    assert fourth.previous_attempt_lost is False


async def test_unexpired_leases_are_left_alone(backend: Backend, now: datetime) -> None:
    await insert(backend, new_job(), new_job(), now=now)
    short = await claim_one(backend, now=now, lease_seconds=10)
    long = await claim_one(backend, now=now, lease_seconds=1000)
    result = await backend.job_reclaim_expired(now=at(now, 60))
    assert result.requeued == (short.id,)
    assert (await get(backend, long.id)).state is JobState.RUNNING


async def test_expired_lease_without_attempts_left_fails(backend: Backend, now: datetime) -> None:
    job_id = await insert_one(backend, now=now, max_attempts=1)
    await claim_one(backend, now=now, worker_id="w-dead", lease_seconds=10)
    result = await backend.job_reclaim_expired(now=at(now, 20), ttl=100)
    assert result.failed == (job_id,)
    assert result.requeued == ()
    record = await get(backend, job_id)
    assert record.state is JobState.FAILED
    assert record.attempt == 1
    assert record.error is not None
    assert record.error.type == "LeaseExpiredError"
    assert "w-dead" in record.error.message
    assert_time(record.finished_at, at(now, 20))
    assert_time(record.expires_at, at(now, 120))
    assert await claim(backend, now=at(now, 30)) == []


async def test_expired_lease_failure_without_ttl_never_expires(
    backend: Backend, now: datetime
) -> None:
    job_id = await insert_one(backend, now=now, max_attempts=1)
    await claim_one(backend, now=now, lease_seconds=10)
    assert (await backend.job_reclaim_expired(now=at(now, 20))).failed == (job_id,)
    assert (await get(backend, job_id)).expires_at is None


async def test_last_attempt_fails_after_earlier_reclaims(backend: Backend, now: datetime) -> None:
    job_id = await insert_one(backend, now=now, max_attempts=2)
    await claim_one(backend, now=now, lease_seconds=10)
    assert (await backend.job_reclaim_expired(now=at(now, 11))).requeued == (job_id,)
    await claim_one(backend, now=at(now, 12), lease_seconds=10)
    result = await backend.job_reclaim_expired(now=at(now, 23))
    assert (result.requeued, result.failed) == ((), (job_id,))
    assert (await get(backend, job_id)).state is JobState.FAILED


async def test_expired_lease_of_a_cancel_requested_job_cancels_it(
    backend: Backend, now: datetime
) -> None:
    job_id = await insert_one(backend, now=now, max_attempts=5)
    await claim_one(backend, now=now, lease_seconds=10)
    await backend.job_cancel(job_id=job_id)
    result = await backend.job_reclaim_expired(now=at(now, 20))
    assert (result.requeued, result.failed, result.cancelled) == ((), (), (job_id,))
    record = await get(backend, job_id)
    assert record.state is JobState.CANCELLED
    assert_time(record.finished_at, at(now, 20))
    assert await claim(backend, now=at(now, 30)) == []


async def test_reclaim_handles_many_jobs(backend: Backend, now: datetime) -> None:
    ids = await insert(backend, *[new_job(max_attempts=2) for _ in range(6)], now=now)
    await claim(backend, now=now, limit=6, lease_seconds=10)
    result = await backend.job_reclaim_expired(now=at(now, 11))
    assert sorted(result.requeued) == ids
    assert len(await claim(backend, now=at(now, 12), limit=10)) == 6


async def test_a_reclaim_tells_what_each_job_is_counted_under(
    backend: Backend, now: datetime
) -> None:
    # What the job statistics need to count the lost attempts' ends.
    requeued = await insert_one(backend, now=now, task="t.again", queue="mail", max_attempts=2)
    failed = await insert_one(backend, now=now, task="t.last", tenant="acme", max_attempts=1)
    cancelled = await insert_one(backend, now=now, task="t.stop", queue="q2", tenant="acme")
    running = await insert_one(backend, now=now, task="t.alive")
    await claim(backend, now=now, limit=3, lease_seconds=10)
    await claim_one(backend, now=now, lease_seconds=1000)
    await backend.job_cancel(job_id=cancelled)
    result = await backend.job_reclaim_expired(now=at(now, 20))
    assert result.jobs == (
        ReclaimedJob(id=requeued, state=JobState.QUEUED, queue="mail", task="t.again"),
        ReclaimedJob(
            id=failed, state=JobState.FAILED, queue="default", task="t.last", tenant="acme"
        ),
        ReclaimedJob(
            id=cancelled, state=JobState.CANCELLED, queue="q2", task="t.stop", tenant="acme"
        ),
    )
    assert (result.requeued, result.failed, result.cancelled) == (
        (requeued,),
        (failed,),
        (cancelled,),
    )
    assert running not in {job.id for job in result.jobs}
    assert await backend.job_reclaim_expired(now=at(now, 21)) == ReclaimResult()


# -- the fencing scenario --------------------------------------------------------------


async def _reclaimed_and_reclaimed_again(
    backend: Backend, now: datetime
) -> tuple[ClaimedJob, ClaimedJob]:
    """A job that stale worker A held until its lease expired, now claimed by B."""
    await insert_one(backend, now=now, max_attempts=5)
    stale = await claim_one(backend, now=now, worker_id="worker-a", lease_seconds=30)
    assert (await backend.job_reclaim_expired(now=at(now, 60))).requeued == (stale.id,)
    fresh = await claim_one(backend, now=at(now, 61), worker_id="worker-b", lease_seconds=30)
    assert fresh.id == stale.id
    assert fresh.lease_token != stale.lease_token
    assert fresh.attempt == 2
    return stale, fresh


async def test_stale_worker_heartbeat_is_lost(backend: Backend, now: datetime) -> None:
    stale, fresh = await _reclaimed_and_reclaimed_again(backend, now)
    reply = await backend.job_heartbeat(
        worker_id="worker-a", leases=[lease_of(stale)], lease_seconds=3600
    )
    assert reply.lost == frozenset({stale.id})
    record = await get(backend, fresh.id)
    assert record.worker_id == "worker-b"
    assert_time(record.lease_expires_at, at(now, 91))
    reply = await backend.job_heartbeat(
        worker_id="worker-b", leases=[lease_of(fresh)], lease_seconds=3600
    )
    assert reply.lost == frozenset()


async def test_stale_worker_progress_is_ignored(backend: Backend, now: datetime) -> None:
    stale, fresh = await _reclaimed_and_reclaimed_again(backend, now)
    await backend.job_set_progress(
        [ProgressUpdate(job_id=stale.id, lease_token=stale.lease_token, progress=99.0, message="a")]
    )
    record = await get(backend, fresh.id)
    assert (record.progress, record.progress_message) == (0.0, None)
    await backend.job_set_progress(
        [ProgressUpdate(job_id=fresh.id, lease_token=fresh.lease_token, progress=20.0, message="b")]
    )
    record = await get(backend, fresh.id)
    assert (record.progress, record.progress_message) == (20.0, "b")


async def test_stale_worker_completion_is_fenced(backend: Backend, now: datetime) -> None:
    stale, fresh = await _reclaimed_and_reclaimed_again(backend, now)
    assert await backend.job_complete_many([completed(stale, result='"A"')], now=at(now, 70)) == [
        False
    ]
    assert await backend.job_complete_many([failed(stale)], now=at(now, 70)) == [False]
    record = await get(backend, fresh.id)
    assert record.state is JobState.RUNNING
    assert record.worker_id == "worker-b"
    assert await backend.job_complete_many([completed(fresh, result='"B"')], now=at(now, 71)) == [
        True
    ]
    record = await get(backend, fresh.id)
    assert record.state is JobState.COMPLETED
    assert record.result == "B"
    assert record.attempt == 2


async def test_stale_worker_release_is_fenced(backend: Backend, now: datetime) -> None:
    stale, fresh = await _reclaimed_and_reclaimed_again(backend, now)
    assert await backend.job_release([lease_of(stale)]) == 0
    record = await get(backend, fresh.id)
    assert record.state is JobState.RUNNING
    assert record.attempt == 2
    assert await backend.job_release([lease_of(fresh)]) == 1
    assert (await get(backend, fresh.id)).attempt == 1


async def test_stale_worker_is_fenced_before_anyone_reclaims(
    backend: Backend, now: datetime
) -> None:
    job_id = await insert_one(backend, now=now)
    stale = await claim_one(backend, now=now, worker_id="worker-a", lease_seconds=30)
    await backend.job_reclaim_expired(now=at(now, 60))
    assert await backend.job_complete_many([completed(stale)], now=at(now, 61)) == [False]
    assert await backend.job_release([lease_of(stale)]) == 0
    reply = await backend.job_heartbeat(
        worker_id="worker-a", leases=[lease_of(stale)], lease_seconds=30
    )
    assert reply.lost == frozenset({job_id})
    record = await get(backend, job_id)
    assert record.state is JobState.QUEUED
    assert record.attempt == 1


async def test_release_of_a_cancel_requested_job_cancels_it(
    backend: Backend, now: datetime
) -> None:
    job_id = await insert_one(backend, now=now)
    job = await claim_one(backend, now=now)
    await backend.job_cancel(job_id=job_id)
    assert await backend.job_release([lease_of(job)]) == 1
    record = await get(backend, job_id)
    assert record.state is JobState.CANCELLED
    assert record.finished_at is not None
    assert await claim(backend, now=at(now, 1)) == []


async def test_stale_and_fresh_outcomes_in_one_batch(backend: Backend, now: datetime) -> None:
    stale, fresh = await _reclaimed_and_reclaimed_again(backend, now)
    outcomes = [completed(stale, result='"A"'), completed(fresh, result='"B"')]
    assert await backend.job_complete_many(outcomes, now=at(now, 70)) == [False, True]
    assert (await get(backend, fresh.id)).result == "B"


async def test_fencing_holds_across_instances(
    backend: Backend, twin: Backend, now: datetime
) -> None:
    job_id = await insert_one(backend, now=now, max_attempts=5)
    stale = await claim_one(backend, now=now, worker_id="worker-a", lease_seconds=30)
    assert (await twin.job_reclaim_expired(now=at(now, 60))).requeued == (job_id,)
    fresh = await claim_one(twin, now=at(now, 61), worker_id="worker-b", lease_seconds=30)
    assert fresh.id == job_id
    reply = await backend.job_heartbeat(
        worker_id="worker-a", leases=[lease_of(stale)], lease_seconds=30
    )
    assert reply.lost == frozenset({job_id})
    assert await backend.job_complete_many([failed(stale)], now=at(now, 62)) == [False]
    assert await backend.job_release([lease_of(stale)]) == 0
    assert await twin.job_complete_many([completed(fresh, result="2")], now=at(now, 63)) == [True]
    record = await get(backend, job_id)
    assert (record.state, record.result, record.attempt) == (JobState.COMPLETED, 2, 2)


# -- many writers on the same leases ----------------------------------------------------


async def test_bookkeeping_on_shared_leases_in_any_order_neither_deadlocks_nor_loses_one(
    backend: Backend, twin: Backend, now: datetime
) -> None:
    # Heartbeats, progress and outcomes of one batch arrive at once, through two
    # instances, each naming the leases in its own order: every statement locks its
    # rows in one order (by id), so none waits on another in a cycle.
    await insert(backend, *(new_job() for _ in range(40)), now=now)
    jobs = await claim(backend, now=now, limit=40, lease_seconds=60)
    assert len(jobs) == 40
    leases = [lease_of(job) for job in jobs]
    shuffled = random.Random(7).sample(jobs, len(jobs))

    async def beat(store: Backend, order: list[Lease]) -> None:
        for _ in range(10):
            reply = await store.job_heartbeat(worker_id="worker-1", leases=order, lease_seconds=60)
            assert not reply.lost

    async def report(store: Backend, order: list[ClaimedJob]) -> None:
        for step in range(10):
            await store.job_set_progress(
                [
                    ProgressUpdate(job_id=j.id, lease_token=j.lease_token, progress=step)
                    for j in order
                ]
            )

    await asyncio.gather(
        beat(backend, leases),
        beat(twin, leases[::-1]),
        report(twin, shuffled),
        report(backend, jobs[::-1]),
    )
    first, second, _ = await asyncio.gather(
        backend.job_complete_many([completed(job) for job in shuffled[:20]]),
        twin.job_complete_many([completed(job) for job in jobs[::-1] if job in shuffled[20:]]),
        twin.job_heartbeat(worker_id="worker-1", leases=leases[::-1], lease_seconds=60),
    )
    assert first == [True] * 20
    assert second == [True] * 20
    for job in jobs:
        assert (await get(backend, job.id)).state is JobState.COMPLETED
