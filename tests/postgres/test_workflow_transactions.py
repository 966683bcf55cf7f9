"""PostgreSQL specifics of workflows: a workflow enqueued in the caller's transaction
exists if and only if it commits, and a dependency that ends while a workflow waiting on
it is being inserted is never missed (the insert locks it first)."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import TupleRow

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

from ._support import eventually


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


async def _lock_waits(admin: psycopg.AsyncConnection[TupleRow], app_name: str) -> int:
    """How many of the backend's connections (named ``app_name``) wait for a lock."""
    cur = await admin.execute(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE application_name = %s AND wait_event_type = 'Lock'",
        [app_name],
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def _until_waiting(
    admin: psycopg.AsyncConnection[TupleRow], app_name: str, count: int, what: str
) -> None:
    async def waiting() -> bool:
        return await _lock_waits(admin, app_name) == count

    await eventually(waiting, what=what)


@pytest.mark.parametrize("locks_first", ["insert", "end"])
async def test_a_dependency_ending_during_the_insert_is_never_missed(
    pg: PostgresBackend,
    admin: psycopg.AsyncConnection[TupleRow],
    store_url: str,
    app_name: str,
    locks_first: str,
) -> None:
    """The insert of a workflow and the statement that ends the job it waits on meet on
    that job's row lock, in either order, and the part is queued either way. The ending
    statement starts first (so its clock is behind the insert's) and is held up by a
    lock on another job it ends: rows are locked in id order, so that job comes before
    the dependency when the insert must get the lock first, and after it otherwise."""
    ids: dict[str, int] = {}
    for name in ("held", "dependency") if locks_first == "insert" else ("dependency", "held"):
        (job,) = await pg.job_insert_many([NewJob(task=f"t.{name}")])
        ids[name] = job.id
    claimed = await pg.job_claim(
        worker_id="w", queues=None, limit=2, lease_seconds=30, job_ids=list(ids.values())
    )
    ends = [Outcome(job.id, job.lease_token, JobState.COMPLETED) for job in claimed]
    other = PostgresBackend(pg.url)
    await other.connect()
    blocker_info = parse_config(store_url, {"application_name": "wh-test-blocker"}).conninfo
    try:
        async with await psycopg.AsyncConnection.connect(blocker_info) as blocker:
            await blocker.execute(
                sql.SQL("SELECT 1 FROM {}.workhorse_jobs WHERE id = %s FOR UPDATE").format(
                    sql.Identifier(pg.schema)
                ),
                [ids["held"]],
            )
            ending = asyncio.create_task(pg.job_complete_many(ends))
            await _until_waiting(admin, app_name, 1, "the end to wait for the held job")
            inserting = asyncio.create_task(other.workflow_insert(_workflow(ids["dependency"])))
            if locks_first == "insert":
                await inserting  # the dependency was free: the insert locked it, committed
            else:
                await _until_waiting(admin, app_name, 2, "the insert to wait for the end")
            await blocker.rollback()
            assert await ending == [True, True]
            inserted = await inserting
    finally:
        await other.close()
    part = await pg.job_get(job_id=inserted.jobs[0].id)
    dependency = await pg.job_get(job_id=ids["dependency"])
    assert part is not None
    assert dependency is not None
    assert dependency.state is JobState.COMPLETED
    assert part.state is JobState.QUEUED
    if locks_first == "insert":
        # The end released the part, and was stamped before the part existed.
        assert inserted.jobs[0].state is JobState.BLOCKED
        assert dependency.finished_at is not None
        assert dependency.finished_at < part.created_at
    else:
        assert inserted.jobs[0].state is JobState.QUEUED  # the insert saw the end
