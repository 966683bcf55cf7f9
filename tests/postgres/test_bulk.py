"""Large batches, written with COPY: the same rows, states and all-or-nothing promise as
the single-statement insert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from workhorse.backends.base import JobFilter, NewJob
from workhorse.backends.postgres import PostgresBackend
from workhorse.backends.postgres.inserting import COPY_THRESHOLD
from workhorse.jobs import JobState

N = COPY_THRESHOLD * 2


def _job(i: int, now: datetime) -> NewJob:
    kinds = [
        NewJob(task="plain", args=f'[{i}, "tab\\there", "quote\\"", "back\\\\slash"]'),
        NewJob(task="later", delay=30 + i, queue="slow"),
        NewJob(task="past", run_at=now - timedelta(seconds=i), tenant="acme", priority=3),
        NewJob(task="future", run_at=(now + timedelta(hours=1)).replace(tzinfo=None)),
        NewJob(task="rich", labels={"k": f"v{i}"}, meta={"n": i}, timeout=2.5, max_attempts=9),
    ]
    return kinds[i % len(kinds)]


async def test_a_large_batch_stores_what_small_ones_do(pg: PostgresBackend) -> None:
    now = datetime.now(UTC)
    jobs = [_job(i, now) for i in range(N)]
    rows = await pg.job_insert_many(jobs, now=now)
    ids = [row.id for row in rows]
    assert ids == sorted(ids)
    assert len(set(ids)) == N
    assert all(row.created for row in rows)
    for i, (job, row) in enumerate(zip(jobs, rows, strict=True)):
        due = job.task in {"plain", "past", "rich"}
        assert row.state is (JobState.QUEUED if due else JobState.SCHEDULED), (i, job)
    for i in range(10):
        record = await pg.job_get(job_id=ids[i])
        assert record is not None
        job = jobs[i]
        assert (record.task, record.queue, record.state) == (job.task, job.queue, rows[i].state)
        assert record.created_at == now
        if job.task == "plain":
            assert record.args == [i, "tab\there", 'quote"', "back\\slash"]
        if job.task == "later":
            assert record.run_at == now + timedelta(seconds=job.delay)
        if job.task == "future":
            assert record.run_at == (now + timedelta(hours=1))
        if job.task == "rich":
            assert (record.labels, record.meta) == ({"k": f"v{i}"}, {"n": i})
            assert (record.timeout, record.max_attempts) == (2.5, 9)


async def test_a_large_batch_is_all_or_nothing(pg: PostgresBackend) -> None:
    jobs = [NewJob(task="ok") for _ in range(N)]
    jobs[N // 2] = NewJob(task="bad", args="{not json")
    with pytest.raises(Exception, match="json"):
        await pg.job_insert_many(jobs)
    assert await pg.job_count(filter=JobFilter()) == 0


async def test_a_large_batch_with_unique_keys(pg: PostgresBackend) -> None:
    (held,) = await pg.job_insert_many([NewJob(task="t", unique_key="k7")])
    jobs = [NewJob(task="t", unique_key=f"k{i % (N // 2)}") for i in range(N)]
    rows = await pg.job_insert_many(jobs)
    assert sum(row.created for row in rows) == N // 2 - 1
    assert rows[7].id == held.id
    assert not rows[7].created
    assert rows[N // 2 + 3].id == rows[3].id
    assert await pg.job_count(filter=JobFilter()) == N // 2


async def test_a_large_batch_on_the_store_clock(pg: PostgresBackend) -> None:
    jobs = [NewJob(task="t", queue="bulk") for _ in range(N)] + [NewJob(task="t", delay=60)]
    rows = await pg.job_insert_many(jobs)
    assert [row.state for row in rows[-2:]] == [JobState.QUEUED, JobState.SCHEDULED]
    first, last = await pg.job_get(job_id=rows[0].id), await pg.job_get(job_id=rows[-1].id)
    assert first is not None
    assert last is not None
    assert abs(first.created_at - datetime.now(UTC)) < timedelta(seconds=10)
    assert first.run_at == first.created_at == last.created_at
    assert last.run_at == last.created_at + timedelta(seconds=60)
    assert (first.queue, first.priority, first.max_attempts, first.labels) == ("bulk", 0, 3, {})
