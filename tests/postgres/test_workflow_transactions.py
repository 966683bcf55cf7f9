"""PostgreSQL specifics of workflows: a workflow enqueued in the caller's transaction
exists if and only if it commits, and a dependency that ends while a workflow waiting on
it is being inserted is never missed (the insert locks it first)."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from workhorse.backends.base import (
    JobFilter,
    NewJob,
    NewWorkflow,
    Outcome,
    StoredJobRef,
    WorkflowPart,
)
from workhorse.backends.postgres import PostgresBackend
from workhorse.backends.postgres.config import parse_config
from workhorse.jobs import JobState


def _workflow(*after: int) -> NewWorkflow:
    refs = tuple(StoredJobRef(job_id) for job_id in after)
    return NewWorkflow(
        parts=[WorkflowPart(NewJob(task="t.a"), after=refs), WorkflowPart(NewJob("t.b"), (0,))]
    )


@pytest.mark.parametrize("commit", [True, False])
async def test_a_workflow_joins_the_callers_transaction(
    pg: PostgresBackend, store_url: str, commit: bool
) -> None:
    conninfo = parse_config(store_url, {}).conninfo
    async with await psycopg.AsyncConnection.connect(conninfo) as conn:
        inserted = await pg.workflow_insert(_workflow(), connection=conn)
        assert await pg.workflow_get(workflow_id=inserted.id) is None  # not committed yet
        if commit:
            await conn.commit()
        else:
            await conn.rollback()
    record = await pg.workflow_get(workflow_id=inserted.id)
    assert (record is not None) is commit
    assert await pg.job_count(filter=JobFilter()) == (2 if commit else 0)


async def test_a_dependency_ending_during_the_insert_is_never_missed(
    pg: PostgresBackend,
) -> None:
    other = PostgresBackend(pg.url)
    await other.connect()
    try:
        for _ in range(10):
            (stored,) = await pg.job_insert_many([NewJob(task="t.stored")])
            (job,) = await pg.job_claim(
                worker_id="w", queues=None, limit=1, lease_seconds=30, job_ids=[stored.id]
            )
            done = Outcome(job_id=job.id, lease_token=job.lease_token, state=JobState.COMPLETED)
            inserted, _ = await asyncio.gather(
                other.workflow_insert(_workflow(stored.id)),
                pg.job_complete_many([done]),
            )
            first = await pg.job_get(job_id=inserted.jobs[0].id)
            assert first is not None
            assert first.state is JobState.QUEUED
    finally:
        await other.close()
