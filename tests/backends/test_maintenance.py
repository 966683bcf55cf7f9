"""Leader-only chores (promote, prune, purge, leader election) and the store's lifecycle
(connect, close, migrate)."""

from __future__ import annotations

from datetime import datetime

from workhorse.backends import open_backend
from workhorse.backends.base import Backend, JobFilter
from workhorse.jobs import JobState

from ._support import at, claim_one, final_job, get, insert, insert_one, new_job

# -- promote scheduled -----------------------------------------------------------------


async def test_promote_due_scheduled_jobs(backend: Backend, now: datetime) -> None:
    soon, later, _ = await insert(
        backend, new_job(delay=10), new_job(delay=100), new_job(), now=now
    )
    assert await backend.job_promote_scheduled(now=at(now, 5)) == 0
    assert await backend.job_promote_scheduled(now=at(now, 50)) == 1
    assert (await get(backend, soon)).state is JobState.QUEUED
    assert (await get(backend, later)).state is JobState.SCHEDULED
    assert await backend.job_promote_scheduled(now=at(now, 50)) == 0
    assert await backend.job_promote_scheduled(now=at(now, 500)) == 1
    assert (await get(backend, later)).state is JobState.QUEUED


async def test_promote_leaves_cancelled_jobs(backend: Backend, now: datetime) -> None:
    job_id = await insert_one(backend, now=now, delay=10)
    await backend.job_cancel(job_id=job_id)
    assert await backend.job_promote_scheduled(now=at(now, 50)) == 0
    assert (await get(backend, job_id)).state is JobState.CANCELLED


# -- prune -----------------------------------------------------------------------------


async def test_prune_deletes_expired_final_jobs(backend: Backend, now: datetime) -> None:
    short = await final_job(backend, now=now, ttl=10)
    long = await final_job(backend, now=now, ttl=1000, state=JobState.FAILED)
    forever = await final_job(backend, now=now, ttl=None)
    live = await insert_one(backend, now=now)
    assert await backend.job_prune(now=at(now, 5)) == 0
    assert await backend.job_prune(now=at(now, 20)) == 1
    assert await backend.job_get(job_id=short) is None
    assert await backend.job_get(job_id=long) is not None
    assert await backend.job_prune(now=at(now, 10**6)) == 1
    assert await backend.job_get(job_id=long) is None
    assert await backend.job_get(job_id=forever) is not None
    assert await backend.job_get(job_id=live) is not None


async def test_prune_never_deletes_live_jobs(backend: Backend, now: datetime) -> None:
    await insert(backend, new_job(), new_job(delay=5), now=now)
    await claim_one(backend, now=now)
    assert await backend.job_prune(now=at(now, 10**7)) == 0
    assert await backend.job_count(filter=JobFilter()) == 2


async def test_prune_respects_limit(backend: Backend, now: datetime) -> None:
    for _ in range(5):
        await final_job(backend, now=now, ttl=1)
    assert await backend.job_prune(now=at(now, 10), limit=2) == 2
    assert await backend.job_count(filter=JobFilter()) == 3
    assert await backend.job_prune(now=at(now, 10), limit=2) == 2
    assert await backend.job_prune(now=at(now, 10), limit=2) == 1
    assert await backend.job_prune(now=at(now, 10), limit=2) == 0
    assert await backend.job_count(filter=JobFilter()) == 0


# -- purge -----------------------------------------------------------------------------


async def test_purge_deletes_matching_final_jobs(backend: Backend, now: datetime) -> None:
    done_a = await final_job(backend, now=now, queue="a")
    failed_a = await final_job(backend, now=now, queue="a", state=JobState.FAILED)
    done_b = await final_job(backend, now=now, queue="b")
    live_a = await insert_one(backend, now=now, queue="a")
    assert await backend.job_purge(filter=JobFilter(queue="a", states=(JobState.FAILED,))) == 1
    assert await backend.job_get(job_id=failed_a) is None
    assert await backend.job_purge(filter=JobFilter(queue="a")) == 1
    assert await backend.job_get(job_id=done_a) is None
    assert await backend.job_get(job_id=live_a) is not None
    assert await backend.job_get(job_id=done_b) is not None


async def test_purge_never_deletes_live_jobs(backend: Backend, now: datetime) -> None:
    await insert(backend, new_job(), new_job(delay=100), new_job(queue="r"), now=now)
    await claim_one(backend, now=now, queues=["r"])
    everything = JobFilter(states=tuple(JobState))
    assert await backend.job_purge(filter=everything) == 0
    assert await backend.job_purge(filter=JobFilter()) == 0
    assert await backend.job_count(filter=JobFilter()) == 3


async def test_purge_is_tenant_scoped(backend: Backend, now: datetime) -> None:
    acme = await final_job(backend, now=now, tenant="acme")
    globex = await final_job(backend, now=now, tenant="globex")
    assert await backend.job_purge(filter=JobFilter(tenant="acme")) == 1
    assert await backend.job_get(job_id=acme) is None
    assert await backend.job_get(job_id=globex) is not None


# -- leader election -------------------------------------------------------------------


async def test_one_leader_at_a_time(backend: Backend, now: datetime) -> None:
    assert await backend.leader_attempt_elect(worker_id="a", ttl=30, now=now) is True
    assert await backend.leader_attempt_elect(worker_id="b", ttl=30, now=at(now, 1)) is False
    assert await backend.leader_attempt_elect(worker_id="b", ttl=30, now=at(now, 29)) is False
    assert await backend.leader_attempt_elect(worker_id="b", ttl=30, now=at(now, 31)) is True
    assert await backend.leader_attempt_elect(worker_id="a", ttl=30, now=at(now, 32)) is False


async def test_leader_re_election_extends(backend: Backend, now: datetime) -> None:
    assert await backend.leader_attempt_elect(worker_id="a", ttl=30, now=now) is True
    assert await backend.leader_attempt_elect(worker_id="a", ttl=30, now=at(now, 20)) is True
    assert await backend.leader_attempt_elect(worker_id="b", ttl=30, now=at(now, 40)) is False
    assert await backend.leader_attempt_elect(worker_id="b", ttl=30, now=at(now, 51)) is True


async def test_leader_resign(backend: Backend, now: datetime) -> None:
    assert await backend.leader_attempt_elect(worker_id="a", ttl=300, now=now) is True
    await backend.leader_resign(worker_id="b")  # not the leader: changes nothing
    assert await backend.leader_attempt_elect(worker_id="b", ttl=300, now=at(now, 1)) is False
    await backend.leader_resign(worker_id="a")
    assert await backend.leader_attempt_elect(worker_id="b", ttl=300, now=at(now, 2)) is True
    await backend.leader_resign(worker_id="a")  # no longer the leader
    assert await backend.leader_attempt_elect(worker_id="a", ttl=300, now=at(now, 3)) is False


async def test_leader_without_now(backend: Backend) -> None:
    assert await backend.leader_attempt_elect(worker_id="a", ttl=60) is True
    assert await backend.leader_attempt_elect(worker_id="b", ttl=60) is False
    assert await backend.leader_attempt_elect(worker_id="a", ttl=60) is True


async def test_leader_is_shared_between_instances(
    backend: Backend, twin: Backend, now: datetime
) -> None:
    assert await backend.leader_attempt_elect(worker_id="a", ttl=30, now=now) is True
    assert await twin.leader_attempt_elect(worker_id="b", ttl=30, now=at(now, 1)) is False
    await backend.leader_resign(worker_id="a")
    assert await twin.leader_attempt_elect(worker_id="b", ttl=30, now=at(now, 2)) is True


# -- lifecycle -------------------------------------------------------------------------


async def test_migrate_is_idempotent(backend: Backend) -> None:
    assert await backend.migrate() == []
    assert isinstance(backend.migration_sql(), str)


async def test_printed_migrations_start_after_the_version_given(backend: Backend) -> None:
    full = backend.migration_sql()
    assert backend.migration_sql(after=0) == full
    later = backend.migration_sql(after=1)
    assert "0001_initial" not in later
    # SQL stores print every migration from scratch; the memory store has none.
    assert ("0001_initial" in full) is ("0002_api_keys" in later) is bool(full)


async def test_fresh_store_migrates_once(store_url: str) -> None:
    store = open_backend(store_url)
    await store.connect()
    try:
        first = await store.migrate()
        assert isinstance(first, list)
        assert all(isinstance(name, str) for name in first)
        assert await store.migrate() == []
    finally:
        await store.close()


async def test_connect_and_close_are_idempotent(backend: Backend, now: datetime) -> None:
    await backend.connect()
    job_id = await insert_one(backend, now=now)
    assert (await get(backend, job_id)).state is JobState.QUEUED
    await backend.close()
    await backend.close()
    await backend.connect()
    assert (await get(backend, job_id)).state is JobState.QUEUED, "reconnecting keeps the jobs"


async def test_a_second_instance_sees_the_same_jobs(
    backend: Backend, twin: Backend, now: datetime
) -> None:
    assert await twin.migrate() == []
    job_id = await insert_one(backend, now=now, task="shared")
    record = await twin.job_get(job_id=job_id)
    assert record is not None
    assert record.task == "shared"
