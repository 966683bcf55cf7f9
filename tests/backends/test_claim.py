"""Claiming: which jobs are due, in what order, what a claim records, and that no job is
ever handed out twice."""

from __future__ import annotations

import asyncio
from datetime import datetime

from workhorse.backends.base import Backend
from workhorse.jobs import JobState
from workhorse.serialization import loads

from ._support import (
    assert_time,
    at,
    claim,
    claim_one,
    finish,
    get,
    insert,
    insert_one,
    new_job,
)


async def test_claim_marks_the_job_running(backend: Backend, now: datetime) -> None:
    job_id = await insert_one(backend, now=now)
    job = await claim_one(backend, now=at(now, 1), worker_id="w-a", lease_seconds=45)
    assert job.id == job_id
    assert job.attempt == 1
    record = await get(backend, job_id)
    assert record.state is JobState.RUNNING
    assert record.attempt == 1
    assert record.worker_id == "w-a"
    assert_time(record.started_at, at(now, 1))
    assert_time(record.lease_expires_at, at(now, 46))


async def test_claimed_job_carries_what_the_worker_needs(backend: Backend, now: datetime) -> None:
    await insert_one(
        backend,
        now=now,
        task="reports.build",
        args='[1, {"a": [2, 3]}]',
        kwargs='{"fmt": "pdf"}',
        queue="reports",
        priority=4,
        max_attempts=9,
        timeout=2.5,
        tenant="t1",
        meta={"trace": "x"},
    )
    job = await claim_one(backend, now=now)
    assert job.task == "reports.build"
    assert job.queue == "reports"
    assert loads(job.args) == [1, {"a": [2, 3]}]
    assert loads(job.kwargs) == {"fmt": "pdf"}
    assert job.priority == 4
    assert job.max_attempts == 9
    assert job.timeout == 2.5
    assert job.tenant == "t1"
    assert job.meta == {"trace": "x"}
    assert isinstance(job.lease_token, str)
    assert job.lease_token


async def test_claim_on_an_empty_store(backend: Backend, now: datetime) -> None:
    assert await claim(backend, now=now) == []


async def test_claim_respects_limit(backend: Backend, now: datetime) -> None:
    ids = await insert(backend, *[new_job() for _ in range(5)], now=now)
    first = await claim(backend, now=now, limit=2)
    second = await claim(backend, now=now, limit=2)
    third = await claim(backend, now=now, limit=2)
    fourth = await claim(backend, now=now, limit=2)
    assert [len(batch) for batch in (first, second, third, fourth)] == [2, 2, 1, 0]
    assert sorted(job.id for job in first + second + third) == ids


async def test_claim_order_is_priority_then_run_at_then_id(backend: Backend, now: datetime) -> None:
    await insert(
        backend,
        new_job("low-old", priority=0, run_at=at(now, -100)),
        new_job("high-new", priority=5, run_at=at(now, -1)),
        new_job("high-old", priority=5, run_at=at(now, -50)),
        new_job("mid", priority=2, run_at=at(now, -10)),
        new_job("low-new-a", priority=0, run_at=at(now, -5)),
        new_job("low-new-b", priority=0, run_at=at(now, -5)),
        new_job("negative", priority=-3, run_at=at(now, -1000)),
        now=now,
    )
    order = [job.task for job in await claim(backend, now=now, limit=100)]
    assert order == ["high-old", "high-new", "mid", "low-old", "low-new-a", "low-new-b", "negative"]


async def test_claim_order_holds_across_claims(backend: Backend, now: datetime) -> None:
    low, high = await insert(backend, new_job(priority=1), new_job(priority=10), now=now)
    assert (await claim_one(backend, now=now)).id == high
    assert (await claim_one(backend, now=now)).id == low


async def test_scheduled_jobs_wait_for_run_at(backend: Backend, now: datetime) -> None:
    later = await insert_one(backend, now=now, delay=60)
    assert await claim(backend, now=now) == []
    assert await claim(backend, now=at(now, 59)) == []
    job = await claim_one(backend, now=at(now, 61))
    assert job.id == later
    record = await get(backend, later)
    assert record.state is JobState.RUNNING
    assert_time(record.started_at, at(now, 61))


async def test_due_scheduled_jobs_compete_with_queued_ones(backend: Backend, now: datetime) -> None:
    scheduled = await insert_one(backend, now=now, delay=10, priority=1)
    queued = await insert_one(backend, now=now, priority=0)
    claimed = await claim(backend, now=at(now, 20), limit=2)
    assert [job.id for job in claimed] == [scheduled, queued]


async def test_claim_filters_by_queue(backend: Backend, now: datetime) -> None:
    a, b, c = await insert(
        backend, new_job(queue="a"), new_job(queue="b"), new_job(queue="c"), now=now
    )
    assert [job.id for job in await claim(backend, now=now, queues=["b"])] == [b]
    assert sorted(job.id for job in await claim(backend, now=now, queues=["a", "c", "zz"])) == [
        a,
        c,
    ]
    assert await claim(backend, now=now, queues=["a", "b", "c"]) == []


async def test_claim_with_no_queues_takes_every_queue(backend: Backend, now: datetime) -> None:
    ids = await insert(backend, new_job(queue="x"), new_job(queue="y"), now=now)
    assert sorted(job.id for job in await claim(backend, now=now, queues=None)) == ids


async def test_claim_with_empty_queue_list_takes_nothing(backend: Backend, now: datetime) -> None:
    await insert_one(backend, now=now)
    assert await claim(backend, now=now, queues=[]) == []


async def test_running_and_final_jobs_are_not_claimed(backend: Backend, now: datetime) -> None:
    await insert(backend, new_job(), new_job(), now=now)
    first = await claim_one(backend, now=now)
    second = await claim_one(backend, now=now)
    await finish(backend, second, now=now)
    assert first.id != second.id
    assert await claim(backend, now=at(now, 1)) == []


async def test_each_claim_gets_a_fresh_token(backend: Backend, now: datetime) -> None:
    await insert(backend, *[new_job() for _ in range(10)], now=now)
    tokens = [job.lease_token for job in await claim(backend, now=now, limit=10)]
    assert len(set(tokens)) == 10


async def test_cancelled_jobs_are_not_claimed(backend: Backend, now: datetime) -> None:
    job_id = await insert_one(backend, now=now)
    await backend.job_cancel(job_id=job_id)
    assert await claim(backend, now=now) == []


async def test_concurrent_claims_never_share_a_job(backend: Backend, now: datetime) -> None:
    ids = await insert(backend, *[new_job() for _ in range(40)], now=now)
    batches = await asyncio.gather(
        *(claim(backend, now=now, worker_id=f"w{i}", limit=3) for i in range(20))
    )
    claimed = [job.id for batch in batches for job in batch]
    assert len(claimed) == len(set(claimed)), "a job was handed out twice"
    assert sorted(claimed) == ids


async def test_two_instances_never_share_a_job(
    backend: Backend, twin: Backend, now: datetime
) -> None:
    ids = await insert(backend, *[new_job() for _ in range(30)], now=now)
    batches = await asyncio.gather(
        *(
            claim(store, now=now, worker_id=f"w{i}", limit=2)
            for i in range(10)
            for store in (backend, twin)
        )
    )
    claimed = [job.id for batch in batches for job in batch]
    assert len(claimed) == len(set(claimed)), "a job was handed out twice"
    assert sorted(claimed) == ids


async def test_a_job_inserted_by_one_instance_is_claimed_by_another(
    backend: Backend, twin: Backend, now: datetime
) -> None:
    job_id = await insert_one(backend, now=now)
    assert (await claim_one(twin, now=now)).id == job_id
    assert (await get(backend, job_id)).state is JobState.RUNNING


async def test_claim_named_jobs_due_or_not(backend: Backend, now: datetime) -> None:
    early, later, other = await insert(
        backend, new_job(priority=9), new_job(delay=3600), new_job(), now=now
    )
    claimed = await backend.job_claim(
        worker_id="eager",
        queues=None,
        limit=10,
        lease_seconds=30,
        now=now,
        job_ids=[later, other],
    )
    assert sorted(job.id for job in claimed) == [later, other]
    assert (await get(backend, later)).state is JobState.RUNNING
    assert (await get(backend, early)).state is JobState.QUEUED


async def test_claim_named_jobs_skips_taken_and_unknown_ones(
    backend: Backend, now: datetime
) -> None:
    taken, free = await insert(backend, new_job(), new_job(), now=now)
    await claim_one(backend, now=now)
    claimed = await backend.job_claim(
        worker_id="eager",
        queues=None,
        limit=10,
        lease_seconds=30,
        now=now,
        job_ids=[taken, free, 10_000],
    )
    assert [job.id for job in claimed] == [free]
    assert (
        await backend.job_claim(
            worker_id="eager", queues=None, limit=10, lease_seconds=30, now=now, job_ids=[]
        )
        == []
    )
