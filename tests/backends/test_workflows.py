"""Workflows: parts that wait for other jobs, released when those complete and ended (as
the workflow's policy says, transitively) when they fail or are cancelled, whichever
statement ends them; never left blocked."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from workhorse.backends.base import (
    Backend,
    JobFilter,
    Lease,
    NewWorkflow,
    Outcome,
    StoredJobRef,
    WorkflowPart,
)
from workhorse.errors import JobNotFoundError, JobStateError
from workhorse.jobs import JobError, JobState, WorkflowState

from ._support import (
    assert_time,
    at,
    claim,
    claim_one,
    completed,
    failed,
    finish,
    get,
    insert_one,
    lease_of,
    new_job,
)

Q, B, S = JobState.QUEUED, JobState.BLOCKED, JobState.SCHEDULED
POLICIES = [("fail", JobState.FAILED), ("cancel", JobState.CANCELLED)]


def part(task: str, *after: int | StoredJobRef, **fields: object) -> WorkflowPart:
    """A part running ``task`` that waits on ``after``."""
    return WorkflowPart(job=new_job(task, **fields), after=after)


async def states(backend: Backend, *job_ids: int) -> list[JobState]:
    """The current state of each job."""
    return [(await get(backend, job_id)).state for job_id in job_ids]


async def run_one(backend: Backend, now: datetime, job_id: int, *, fail: bool = False) -> None:
    """Claim the one due job, which must be ``job_id``, and end it."""
    job = await claim_one(backend, now=now)
    assert job.id == job_id
    outcome = failed(job) if fail else completed(job, result=f'"r{job_id}"')
    assert await backend.job_complete_many([outcome], now=now) == [True]


async def test_parts_with_dependencies_start_blocked(backend: Backend, now: datetime) -> None:
    workflow = NewWorkflow(
        parts=[part("t.a"), part("t.b", 0), part("t.c", 0, 1)], name="abc", tenant="acme"
    )
    inserted = await backend.workflow_insert(workflow, now=now)
    a, b, c = (job.id for job in inserted.jobs)
    assert [job.state for job in inserted.jobs] == [Q, B, B]
    assert all(job.created for job in inserted.jobs)
    record = await backend.workflow_get(workflow_id=inserted.id)
    assert record is not None
    assert (record.name, record.tenant, record.on_failure) == ("abc", "acme", "fail")
    assert [p.id for p in record.parts] == [a, b, c]
    assert {p.workflow_id for p in record.parts} == {inserted.id}
    assert record.edges == [(b, a), (c, a), (c, b)]
    assert record.dependencies_of(c) == [a, b]
    assert record.state is WorkflowState.ACTIVE
    assert record.cancelled_at is None
    assert [job.id for job in await claim(backend, now=now)] == [a]


async def test_dependents_are_released_once_all_their_dependencies_completed(
    backend: Backend, now: datetime
) -> None:
    inserted = await backend.workflow_insert(
        NewWorkflow(parts=[part("t.a"), part("t.b", 0), part("t.c", 0, 1)]), now=now
    )
    a, b, c = (job.id for job in inserted.jobs)
    await run_one(backend, now, a)
    assert await states(backend, b, c) == [Q, B]
    await run_one(backend, now, b)
    assert await states(backend, c) == [Q]
    await run_one(backend, now, c)
    record = await backend.workflow_get(workflow_id=inserted.id)
    assert record is not None
    assert record.state is WorkflowState.COMPLETED


async def test_a_released_dependent_with_a_later_run_at_is_scheduled(
    backend: Backend, now: datetime
) -> None:
    inserted = await backend.workflow_insert(
        NewWorkflow(parts=[part("t.a"), part("t.b", 0, run_at=at(now, 3600))]), now=now
    )
    a, b = (job.id for job in inserted.jobs)
    await run_one(backend, now, a)
    assert await states(backend, b) == [JobState.SCHEDULED]
    assert await claim(backend, now=now) == []


# The statement that ends a job stamps the end with its own clock, which may be behind
# the clock of a workflow inserted meanwhile: on PostgreSQL it waited for that insert's
# lock on the job, on SQLite another process wrote between its call and its write.
@pytest.mark.parametrize(
    ("ended", "released"),
    [(0.5, [Q, S, S]), (30.0, [Q, Q, S])],
    ids=["end-stamped-before-the-insert", "end-stamped-after-the-insert"],
)
async def test_a_release_queues_the_parts_that_are_due_and_schedules_the_others(
    backend: Backend, now: datetime, ended: float, released: list[JobState]
) -> None:
    stored = await insert_one(backend, now=now, task="t.stored")
    job = await claim_one(backend, now=now)
    inserted_at = at(now, 1)
    inserted = await backend.workflow_insert(
        NewWorkflow(
            parts=[
                part("t.now", StoredJobRef(stored)),
                part("t.soon", StoredJobRef(stored), run_at=at(now, 10)),
                part("t.later", StoredJobRef(stored), delay=60),
            ]
        ),
        now=inserted_at,
    )
    parts = [job.id for job in inserted.jobs]
    assert [job.state for job in inserted.jobs] == [B, B, B]
    await finish(backend, job, now=at(now, ended))
    assert await states(backend, *parts) == released
    # A part is never released before it existed: one without a delay is due at once.
    claimed_at = at(now, max(ended, 1))
    due = [part_id for part_id, state in zip(parts, released, strict=True) if state is Q]
    assert sorted(job.id for job in await claim(backend, now=claimed_at)) == due
    # A release keeps each part's run_at: the scheduled ones start when it comes.
    for part_id, run_at in zip(parts[1:], [at(now, 10), at(inserted_at, 60)], strict=True):
        assert_time((await get(backend, part_id)).run_at, run_at)
    later = [job.id for job in await claim(backend, now=at(inserted_at, 60))]
    assert sorted(later) == [p for p in parts if p not in due]


async def test_a_part_ended_by_its_dependency_never_ends_before_it_existed(
    backend: Backend, now: datetime
) -> None:
    stored = await insert_one(backend, now=now, task="t.stored")
    job = await claim_one(backend, now=now)
    inserted_at = at(now, 1)
    inserted = await backend.workflow_insert(
        NewWorkflow(parts=[part("t.x", StoredJobRef(stored)), part("t.y", 0)]), now=inserted_at
    )
    parts = [job.id for job in inserted.jobs]
    assert await backend.job_complete_many([failed(job)], now=at(now, 0.5)) == [True]
    for part_id in parts:
        record = await get(backend, part_id)
        assert record.state is JobState.FAILED
        assert_time(record.finished_at, inserted_at)


@pytest.mark.parametrize(
    ("policy", "ended"), [("fail", JobState.FAILED), ("cancel", JobState.CANCELLED)]
)
async def test_a_failed_dependency_ends_its_dependents_transitively(
    backend: Backend, now: datetime, policy: str, ended: JobState
) -> None:
    workflow = NewWorkflow(
        parts=[part("t.a"), part("t.b", 0), part("t.c", 1), part("t.d")],
        on_failure=policy,  # type: ignore[arg-type]
    )
    inserted = await backend.workflow_insert(workflow, now=now)
    a, b, c, d = (job.id for job in inserted.jobs)
    await run_one(backend, now, a, fail=True)
    assert await states(backend, a, b, c, d) == [JobState.FAILED, ended, ended, Q]
    b_error = (await get(backend, b)).error
    c_error = (await get(backend, c)).error
    assert b_error is not None
    assert c_error is not None
    assert b_error.type == c_error.type == "DependencyFailedError"
    assert b_error.message == f"dependency job {a} (t.a) ended failed"
    assert c_error.message == f"dependency job {b} did not run: upstream job {a} (t.a) ended failed"
    assert (await get(backend, c)).finished_at is not None
    assert await claim(backend, now=now, limit=10) != []  # d still runs
    record = await backend.workflow_get(workflow_id=inserted.id)
    assert record is not None
    assert record.state is WorkflowState.ACTIVE


async def test_a_cancelled_dependency_ends_its_dependents(backend: Backend, now: datetime) -> None:
    inserted = await backend.workflow_insert(
        NewWorkflow(parts=[part("t.a", delay=60), part("t.b", 0)]), now=now
    )
    a, b = (job.id for job in inserted.jobs)
    assert await backend.job_cancel(job_id=a) is not None
    assert await states(backend, a, b) == [JobState.CANCELLED, JobState.FAILED]
    error = (await get(backend, b)).error
    assert error is not None
    assert error.message == f"dependency job {a} (t.a) ended cancelled"


async def test_a_lease_lost_on_the_last_attempt_ends_dependents(
    backend: Backend, now: datetime
) -> None:
    inserted = await backend.workflow_insert(
        NewWorkflow(parts=[part("t.a", max_attempts=1), part("t.b", 0)], on_failure="cancel"),
        now=now,
    )
    a, b = (job.id for job in inserted.jobs)
    await claim_one(backend, now=now, lease_seconds=1)
    result = await backend.job_reclaim_expired(now=at(now, 5))
    assert result.failed == (a,)
    assert await states(backend, b) == [JobState.CANCELLED]


async def test_a_retry_that_ends_cancelled_ends_dependents(backend: Backend, now: datetime) -> None:
    inserted = await backend.workflow_insert(
        NewWorkflow(parts=[part("t.a"), part("t.b", 0)]), now=now
    )
    a, b = (job.id for job in inserted.jobs)
    job = await claim_one(backend, now=now)
    await backend.job_cancel(job_id=a)
    retry = Outcome(
        job_id=job.id,
        lease_token=job.lease_token,
        state=JobState.SCHEDULED,
        error=JobError("ValueError", "boom"),
        retry_delay=1,
    )
    assert await backend.job_complete_many([retry], now=now) == [True]
    assert await states(backend, a, b) == [JobState.CANCELLED, JobState.FAILED]


async def test_stored_dependencies_hold_parts_back_until_they_complete(
    backend: Backend, now: datetime
) -> None:
    stored = await insert_one(backend, now=now, task="t.stored")
    inserted = await backend.workflow_insert(
        NewWorkflow(parts=[part("t.after", StoredJobRef(stored))]), now=now
    )
    (waiting,) = (job.id for job in inserted.jobs)
    assert await states(backend, waiting) == [B]
    await run_one(backend, now, stored)
    assert await states(backend, waiting) == [Q]
    (dependency,) = await backend.job_dependencies(job_id=waiting)
    assert (dependency.job_id, dependency.state, dependency.task) == (
        stored,
        JobState.COMPLETED,
        "t.stored",
    )
    assert dependency.result == f"r{stored}"


async def test_a_stored_dependency_already_completed_holds_nothing_back(
    backend: Backend, now: datetime
) -> None:
    stored = await insert_one(backend, now=now)
    await finish(backend, await claim_one(backend, now=now), now=now)
    inserted = await backend.workflow_insert(
        NewWorkflow(parts=[part("t.after", StoredJobRef(stored))]), now=now
    )
    assert [job.state for job in inserted.jobs] == [Q]


@pytest.mark.parametrize(
    ("policy", "ended"), [("fail", JobState.FAILED), ("cancel", JobState.CANCELLED)]
)
async def test_a_stored_dependency_already_failed_ends_parts_at_once(
    backend: Backend, now: datetime, policy: str, ended: JobState
) -> None:
    stored = await insert_one(backend, now=now, task="t.stored")
    job = await claim_one(backend, now=now)
    assert await backend.job_complete_many([failed(job, ttl=600)], now=now) == [True]
    workflow = NewWorkflow(
        parts=[part("t.x", StoredJobRef(stored)), part("t.y", 0), part("t.z")],
        on_failure=policy,  # type: ignore[arg-type]
    )
    inserted = await backend.workflow_insert(workflow, now=now)
    x, y, z = (job.id for job in inserted.jobs)
    assert [job.state for job in inserted.jobs] == [ended, ended, Q]
    x_record, y_record = await get(backend, x), await get(backend, y)
    assert x_record.error is not None
    assert y_record.error is not None
    assert x_record.error.message == f"dependency job {stored} (t.stored) ended failed"
    assert f"upstream job {stored} (t.stored) ended failed" in y_record.error.message
    assert x_record.finished_at is not None
    # Kept as long as the job that ended them.
    assert x_record.expires_at == (await get(backend, stored)).expires_at is not None
    assert [job.id for job in await claim(backend, now=now)] == [z]


async def test_an_unknown_stored_dependency_is_refused_and_nothing_is_stored(
    backend: Backend, now: datetime
) -> None:
    with pytest.raises(JobNotFoundError, match="9999"):
        await backend.workflow_insert(
            NewWorkflow(parts=[part("t.a"), part("t.b", StoredJobRef(9999))]), now=now
        )
    assert await backend.job_count(filter=JobFilter()) == 0


@pytest.mark.parametrize(
    ("parts", "match"),
    [
        ([], "at least one part"),
        ([part("t.a", 0)], "earlier parts"),
        ([part("t.a"), part("t.b", 2), part("t.c")], "earlier parts"),
        ([part("t.a"), part("t.b", 0, 0)], "twice"),
        ([part("t.a", unique_key="k")], "unique"),
    ],
)
async def test_malformed_workflows_are_refused(
    backend: Backend, now: datetime, parts: list[WorkflowPart], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        await backend.workflow_insert(NewWorkflow(parts=parts), now=now)
    assert await backend.job_count(filter=JobFilter()) == 0


async def test_a_deleted_dependency_holds_nobody_back(backend: Backend, now: datetime) -> None:
    first = await insert_one(backend, now=now, task="t.first")
    second = await insert_one(backend, now=now, task="t.second", delay=60)
    inserted = await backend.workflow_insert(
        NewWorkflow(parts=[part("t.w", StoredJobRef(first), StoredJobRef(second))]), now=now
    )
    (waiting,) = (job.id for job in inserted.jobs)
    await run_one(backend, now, first)
    assert await backend.job_delete(job_id=first)
    later = at(now, 120)
    job = await claim_one(backend, now=later)
    assert job.id == second
    await finish(backend, job, now=later)
    assert await states(backend, waiting) == [Q]
    deps = await backend.job_dependencies(job_id=waiting)
    assert [(d.job_id, d.state) for d in deps] == [(first, None), (second, JobState.COMPLETED)]


async def test_dependencies_are_listed_in_the_order_given(backend: Backend, now: datetime) -> None:
    inserted = await backend.workflow_insert(
        NewWorkflow(parts=[part("t.a"), part("t.b"), part("t.c", 1, 0)]), now=now
    )
    a, b, c = (job.id for job in inserted.jobs)
    await run_one(backend, now, a)
    deps = await backend.job_dependencies(job_id=c)
    assert [(d.job_id, d.state, d.result) for d in deps] == [
        (b, Q, None),
        (a, JobState.COMPLETED, f"r{a}"),
    ]
    assert await backend.job_dependencies(job_id=a) == []


async def test_cancelling_a_workflow_cancels_its_live_parts(
    backend: Backend, now: datetime
) -> None:
    inserted = await backend.workflow_insert(
        NewWorkflow(
            parts=[part("t.done"), part("t.run"), part("t.wait", 1), part("t.other", delay=60)],
            on_failure="fail",
        ),
        now=now,
    )
    done, run, wait, other = (job.id for job in inserted.jobs)
    outsider = await backend.workflow_insert(
        NewWorkflow(parts=[part("t.outside", StoredJobRef(wait))]), now=now
    )
    await run_one(backend, now, done)
    running = await claim_one(backend, now=now)
    assert running.id == run
    record = await backend.workflow_cancel(workflow_id=inserted.id, now=now)
    assert record is not None
    assert record.cancelled_at is not None
    by_id = {p.id: p for p in record.parts}
    assert by_id[done].state is JobState.COMPLETED
    assert by_id[run].state is JobState.RUNNING
    assert by_id[run].cancel_requested
    assert by_id[wait].state is by_id[other].state is JobState.CANCELLED
    assert by_id[wait].error is None  # ended by the cancel, not as a dependent
    assert record.state is WorkflowState.ACTIVE
    # A job of another workflow that waited on a cancelled part follows its own policy.
    (outside,) = (job.id for job in outsider.jobs)
    outside_record = await get(backend, outside)
    assert outside_record.state is JobState.FAILED
    assert outside_record.error is not None
    assert outside_record.error.message == f"dependency job {wait} (t.wait) ended cancelled"
    # The running part stops; then the whole workflow is cancelled.
    stop = Outcome(job_id=run, lease_token=running.lease_token, state=JobState.CANCELLED)
    assert await backend.job_complete_many([stop], now=now) == [True]
    after = await backend.workflow_get(workflow_id=inserted.id)
    assert after is not None
    assert after.state is WorkflowState.CANCELLED
    assert await backend.workflow_cancel(workflow_id=10**9) is None


async def test_workflows_are_scoped_by_tenant(backend: Backend, now: datetime) -> None:
    inserted = await backend.workflow_insert(
        NewWorkflow(parts=[part("t.a", tenant="acme")], tenant="acme"), now=now
    )
    assert await backend.workflow_get(workflow_id=inserted.id, tenant="other") is None
    assert await backend.workflow_cancel(workflow_id=inserted.id, tenant="other") is None
    assert await states(backend, inserted.jobs[0].id) == [Q]
    assert await backend.workflow_get(workflow_id=inserted.id, tenant="acme") is not None


async def test_a_workflow_is_forgotten_with_its_last_part(backend: Backend, now: datetime) -> None:
    inserted = await backend.workflow_insert(
        NewWorkflow(parts=[part("t.a"), part("t.b", 0)]), now=now
    )
    a, b = (job.id for job in inserted.jobs)
    await run_one(backend, now, a)
    await run_one(backend, now, b)
    assert await backend.job_delete(job_id=a)
    assert await backend.workflow_get(workflow_id=inserted.id) is not None
    assert await backend.job_purge(filter=JobFilter()) == 1
    assert await backend.workflow_get(workflow_id=inserted.id) is None


async def test_dependencies_completing_together_on_two_instances_release_the_dependent(
    backend: Backend, twin: Backend, now: datetime
) -> None:
    for _ in range(5):
        inserted = await backend.workflow_insert(
            NewWorkflow(parts=[part("t.a"), part("t.b"), part("t.c", 0, 1)]), now=now
        )
        a, b, c = (job.id for job in inserted.jobs)
        first = await claim_one(backend, now=now)
        second = await claim_one(twin, now=now, worker_id="worker-2")
        assert {first.id, second.id} == {a, b}
        await asyncio.gather(
            backend.job_complete_many([completed(first)], now=now),
            twin.job_complete_many([completed(second)], now=now),
        )
        assert await states(backend, c) == [Q]
        await run_one(backend, now, c)


async def test_set_meta_of_a_running_job(backend: Backend, now: datetime) -> None:
    job_id = await insert_one(backend, now=now, meta={"keep": 1})
    job = await claim_one(backend, now=now)
    assert await backend.job_set_meta(lease=lease_of(job), key="stage", value='{"at": 2}')
    assert await backend.job_set_meta(lease=lease_of(job), key="stage", value='{"at": 3}')
    assert (await get(backend, job_id)).meta == {"keep": 1, "stage": {"at": 3}}
    stale = Lease(job_id=job_id, token="not-the-lease")
    assert not await backend.job_set_meta(lease=stale, key="stage", value="1")
    with pytest.raises(ValueError, match="meta key"):
        await backend.job_set_meta(lease=lease_of(job), key="a.b", value="1")
    await finish(backend, job, now=now)
    assert not await backend.job_set_meta(lease=lease_of(job), key="stage", value="1")


async def test_a_part_is_retried_only_once_its_dependencies_completed(
    backend: Backend, now: datetime
) -> None:
    inserted = await backend.workflow_insert(
        NewWorkflow(parts=[part("t.a", max_attempts=1), part("t.b", 0)]), now=now
    )
    a, b = (job.id for job in inserted.jobs)
    await run_one(backend, now, a, fail=True)
    assert await states(backend, b) == [JobState.FAILED]
    with pytest.raises(JobStateError, match=f"waits for job {a}, which is failed"):
        await backend.job_retry(job_id=b, now=now)
    assert await states(backend, b) == [JobState.FAILED]
    retried = await backend.job_retry(job_id=a, now=now)
    assert retried is not None
    assert retried.state is Q
    with pytest.raises(JobStateError, match="which is queued"):
        await backend.job_retry(job_id=b, now=now)
    await run_one(backend, now, a)
    again = await backend.job_retry(job_id=b, now=now)
    assert again is not None
    assert again.state is Q
    assert again.error is None
    await run_one(backend, now, b)
