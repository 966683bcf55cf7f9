"""Time: every method that takes ``now`` falls back to the store's own clock (the database
clock on PostgreSQL), and a ``now`` in any timezone means the same instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from workhorse.backends.base import Backend, JobFilter
from workhorse.jobs import JobState

from ._support import (
    STORE_CLOCK,
    assert_time,
    at,
    claim,
    completed,
    final_job,
    get,
    insert,
    insert_one,
    new_job,
)

HOUR = 3600.0


async def test_claim_without_now(backend: Backend) -> None:
    ready, later = await insert(backend, new_job(), new_job(delay=HOUR))
    claimed = await backend.job_claim(worker_id="w", queues=None, limit=10, lease_seconds=60)
    assert [job.id for job in claimed] == [ready]
    record = await get(backend, ready)
    assert_time(record.started_at, datetime.now(UTC), STORE_CLOCK)
    assert record.started_at is not None
    assert_time(record.lease_expires_at, at(record.started_at, 60))
    assert (await get(backend, later)).state is JobState.SCHEDULED


async def test_reclaim_without_now(backend: Backend, now: datetime) -> None:
    expired, alive = await insert(backend, new_job(), new_job(), now=at(now, -HOUR))
    await claim(backend, now=at(now, -HOUR), limit=1, lease_seconds=60)
    await claim(backend, now=at(now, -HOUR), limit=1, lease_seconds=2 * HOUR)
    result = await backend.job_reclaim_expired()
    assert result.requeued == (expired,)
    assert (await get(backend, alive)).state is JobState.RUNNING


async def test_promote_without_now(backend: Backend, now: datetime) -> None:
    due, later = await insert(
        backend, new_job(delay=60), new_job(delay=2 * HOUR), now=at(now, -HOUR)
    )
    assert await backend.job_promote_scheduled() == 1
    assert (await get(backend, due)).state is JobState.QUEUED
    assert (await get(backend, later)).state is JobState.SCHEDULED


async def test_prune_without_now(backend: Backend, now: datetime) -> None:
    await final_job(backend, now=at(now, -HOUR), ttl=60)
    kept = await final_job(backend, now=at(now, -HOUR), ttl=2 * HOUR)
    assert await backend.job_prune() == 1
    assert await backend.job_count(filter=JobFilter()) == 1
    assert await backend.job_get(job_id=kept) is not None


async def test_leader_and_worker_prune_without_now(backend: Backend, now: datetime) -> None:
    assert await backend.leader_attempt_elect(worker_id="old", ttl=60, now=at(now, -HOUR))
    assert await backend.leader_attempt_elect(worker_id="new", ttl=60) is True
    assert await backend.worker_prune(older_than=60) == 0


async def test_now_in_any_timezone_is_the_same_instant(backend: Backend, now: datetime) -> None:
    elsewhere = now.astimezone(timezone(timedelta(hours=-7)))
    job_id = await insert_one(backend, now=elsewhere, delay=10)
    record = await get(backend, job_id)
    assert_time(record.created_at, now)
    assert_time(record.run_at, at(now, 10))
    assert await claim(backend, now=at(elsewhere, 9)) == []
    (job,) = await claim(backend, now=at(elsewhere, 11), lease_seconds=5)
    assert await backend.job_complete_many([completed(job, ttl=1)], now=at(elsewhere, 12)) == [True]
    record = await get(backend, job_id)
    assert_time(record.started_at, at(now, 11))
    assert_time(record.finished_at, at(now, 12))
    assert_time(record.expires_at, at(now, 13))
    assert await backend.job_prune(now=at(elsewhere, 14)) == 1
