"""Unique keys on PostgreSQL: instances racing for one key, and a retry that would make
a second live holder."""

from __future__ import annotations

import asyncio

import pytest

from workhorse.backends.base import NewJob, Outcome
from workhorse.backends.postgres import PostgresBackend
from workhorse.errors import JobStateError
from workhorse.jobs import JobError, JobState


async def test_instances_racing_for_one_key_agree(pg: PostgresBackend) -> None:
    others = [PostgresBackend(pg.url) for _ in range(3)]
    await asyncio.gather(*(other.connect() for other in others))
    try:
        for round_ in range(20):
            key = f"race:{round_}"
            results = await asyncio.gather(
                *(
                    store.job_insert_many([NewJob(task="t", unique_key=key)])
                    for store in (pg, *others)
                    for _ in range(2)
                )
            )
            rows = [row for (row,) in results]
            assert sum(row.created for row in rows) == 1
            assert len({row.id for row in rows}) == 1
    finally:
        await asyncio.gather(*(other.close() for other in others))


async def test_a_key_freed_while_racing_is_taken_once(pg: PostgresBackend) -> None:
    for round_ in range(10):
        key = f"free:{round_}"
        (held,) = await pg.job_insert_many([NewJob(task="t", unique_key=key)])
        (job,) = await pg.job_claim(
            worker_id="w", queues=None, limit=1, lease_seconds=30, job_ids=[held.id]
        )
        done = Outcome(job.id, job.lease_token, JobState.COMPLETED)
        completing = asyncio.create_task(pg.job_complete_many([done]))
        results = await asyncio.gather(
            *(pg.job_insert_many([NewJob(task="t", unique_key=key)]) for _ in range(4))
        )
        assert await completing == [True]
        rows = [row for (row,) in results]
        fresh = {row.id for row in rows if row.id != job.id}
        assert len(fresh) <= 1, "at most one new holder"
        assert sum(row.created for row in rows) == len(fresh)


async def test_retry_refuses_while_another_job_holds_the_key(pg: PostgresBackend) -> None:
    (first,) = await pg.job_insert_many([NewJob(task="t", unique_key="k", max_attempts=1)])
    (job,) = await pg.job_claim(worker_id="w", queues=None, limit=1, lease_seconds=30)
    failure = Outcome(job.id, job.lease_token, JobState.FAILED, error=JobError("E", "m"))
    assert await pg.job_complete_many([failure]) == [True]
    (second,) = await pg.job_insert_many([NewJob(task="t", unique_key="k")])
    assert second.created
    with pytest.raises(JobStateError, match="unique key"):
        await pg.job_retry(job_id=first.id)
    record = await pg.job_get(job_id=first.id)
    assert record is not None
    assert record.state is JobState.FAILED
