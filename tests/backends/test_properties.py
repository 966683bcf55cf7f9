"""Properties over generated workloads: whatever jobs are waiting, claims hand them out in
the documented order, each exactly once."""

from __future__ import annotations

import os
import uuid
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workhorse.backends.base import Backend, JobFilter, Lease, NewJob, Outcome
from workhorse.errors import JobStateError
from workhorse.jobs import JobError, JobRecord, JobState

from ._support import at, claim, insert, new_job

# (priority, seconds from now to run_at); negative offsets are already due.
_JOB = st.tuples(st.integers(-5, 5), st.integers(-300, 300))
_PROPERTY = settings(
    max_examples=int(os.environ.get("WORKHORSE_PROPERTY_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@_PROPERTY
@given(specs=st.lists(_JOB, max_size=25), batch=st.integers(1, 7))
async def test_claims_follow_priority_run_at_id(
    backend: Backend, now: datetime, specs: list[tuple[int, int]], batch: int
) -> None:
    # One store serves every example: a fresh queue keeps examples apart.
    queue = f"q-{uuid.uuid4().hex}"
    jobs: list[NewJob] = [
        new_job(queue=queue, priority=priority, run_at=at(now, offset))
        for priority, offset in specs
    ]
    ids = await insert(backend, *jobs, now=now)
    due = [
        (-priority, offset, job_id)
        for job_id, (priority, offset) in zip(ids, specs, strict=True)
        if offset <= 0
    ]
    expected = [job_id for *_, job_id in sorted(due)]
    order: list[int] = []
    while taken := await claim(backend, now=now, queues=[queue], limit=batch):
        assert len(taken) <= batch
        order.extend(job.id for job in taken)
    assert order == expected


# One step of a random job lifecycle: (operation, a small number for it to use).
_STEP = st.tuples(
    st.sampled_from(
        [
            "insert",
            "claim",
            "complete",
            "retry_later",
            "fail",
            "release",
            "heartbeat",
            "cancel",
            "retry",
            "reclaim",
            "promote",
            "tick",
        ]
    ),
    st.integers(0, 6),
)


@_PROPERTY
@given(steps=st.lists(_STEP, min_size=1, max_size=40))
async def test_random_lifecycles_keep_the_invariants(
    backend: Backend, now: datetime, steps: list[tuple[str, int]]
) -> None:
    """Drive jobs through random operations, predicting each result from the stored state,
    and check what must hold of every job after every step."""
    run = _Lifecycle(backend, now, queue=f"q-{uuid.uuid4().hex}")
    for operation, n in steps:
        await run.step(operation, n)
        await run.check_invariants()


class _Lifecycle:
    """The driver of ``test_random_lifecycles_keep_the_invariants``: it remembers every
    lease handed out and asserts that only the newest one of a running job is honoured."""

    def __init__(self, backend: Backend, now: datetime, queue: str) -> None:
        self.backend = backend
        self.clock = now
        self.queue = queue
        self.ids: list[int] = []
        self.tokens: dict[int, list[str]] = {}

    async def record(self, job_id: int) -> JobRecord:
        record = await self.backend.job_get(job_id=job_id)
        assert record is not None
        return record

    def pick(self, n: int) -> int | None:
        return self.ids[n % len(self.ids)] if self.ids else None

    def lease(self, job_id: int, n: int) -> Lease:
        """The newest lease of the job for even ``n``, an older (or forged) one for odd."""
        tokens = self.tokens.get(job_id, [])
        if n % 2 == 0 and tokens:
            return Lease(job_id=job_id, token=tokens[-1])
        return Lease(job_id=job_id, token=tokens[0] if len(tokens) > 1 else "forged")

    def is_newest(self, lease: Lease) -> bool:
        tokens = self.tokens.get(lease.job_id, [])
        return bool(tokens) and lease.token == tokens[-1]

    async def step(self, operation: str, n: int) -> None:
        if operation == "insert":
            self.ids += await insert(
                self.backend,
                new_job(
                    queue=self.queue,
                    priority=n % 3,
                    delay=[0, 0, 30][n % 3],
                    max_attempts=1 + n % 3,
                ),
                now=self.clock,
            )
        elif operation == "tick":
            self.clock = at(self.clock, [1, 10, 45][n % 3])
        elif operation == "claim":
            await self.claim(limit=1 + n % 3)
        elif operation == "reclaim":
            await self.reclaim()
        elif operation == "promote":
            await self.backend.job_promote_scheduled(now=self.clock)
        elif (job_id := self.pick(n)) is not None:
            await self.act_on(operation, job_id, n)

    async def claim(self, limit: int) -> None:
        before = {job_id: await self.record(job_id) for job_id in self.ids}
        claimed = await self.backend.job_claim(
            worker_id="w", queues=[self.queue], limit=limit, lease_seconds=30, now=self.clock
        )
        assert len(claimed) <= limit
        due = [
            r
            for r in before.values()
            if r.state is JobState.QUEUED
            or (r.state is JobState.SCHEDULED and r.run_at <= self.clock)
        ]
        assert len(claimed) == min(limit, len(due))
        for job in claimed:
            assert before[job.id] in due
            assert job.attempt == before[job.id].attempt + 1
            assert job.lease_token not in self.tokens.get(job.id, [])
            self.tokens.setdefault(job.id, []).append(job.lease_token)

    async def reclaim(self) -> None:
        before = {job_id: await self.record(job_id) for job_id in self.ids}
        expired = {
            job_id
            for job_id, r in before.items()
            if r.state is JobState.RUNNING
            and r.lease_expires_at is not None
            and r.lease_expires_at < self.clock
        }
        result = await self.backend.job_reclaim_expired(now=self.clock)
        mine = set(self.ids)
        requeued = set(result.requeued) & mine
        failed = set(result.failed) & mine
        assert requeued | failed <= expired
        for job_id in expired:
            was, after = before[job_id], await self.record(job_id)
            if was.cancel_requested:
                assert after.state is JobState.CANCELLED
            elif was.attempt >= was.max_attempts:
                assert after.state is JobState.FAILED
                assert job_id in failed
            else:
                assert after.state is JobState.QUEUED
                assert job_id in requeued
                assert after.attempt == was.attempt

    async def act_on(self, operation: str, job_id: int, n: int) -> None:
        was = await self.record(job_id)
        if operation == "cancel":
            await self.cancel(was)
        elif operation == "retry":
            await self.retry(was)
        else:
            await self.write_under_lease(operation, was, self.lease(job_id, n), n)

    async def write_under_lease(self, operation: str, was: JobRecord, lease: Lease, n: int) -> None:
        """A worker's write: it applies if and only if the lease is the job's newest one
        and the job is still running."""
        honoured = was.state is JobState.RUNNING and self.is_newest(lease)
        if operation == "heartbeat":
            reply = await self.backend.job_heartbeat(
                worker_id="w", leases=[lease], lease_seconds=30
            )
            assert (was.id in reply.lost) is not honoured
            assert (was.id in reply.cancel_requested) is (honoured and was.cancel_requested)
            return
        if operation == "release":
            assert await self.backend.job_release([lease]) == int(honoured)
            expected = JobState.CANCELLED if was.cancel_requested else JobState.QUEUED
            after = await self.record(was.id)
            assert after.state is (expected if honoured else was.state)
            assert after.attempt == was.attempt - int(honoured)
            return
        state = {
            "complete": JobState.COMPLETED,
            # Like the worker: a retry only while attempts are left.
            "retry_later": (
                JobState.SCHEDULED if was.attempt < was.max_attempts else JobState.FAILED
            ),
            "fail": JobState.FAILED,
        }[operation]
        outcome = Outcome(
            job_id=was.id,
            lease_token=lease.token,
            state=state,
            result=str(n),
            error=JobError(type="E", message=operation),
            retry_delay=n,
        )
        assert await self.backend.job_complete_many([outcome], now=self.clock) == [honoured]
        if state is JobState.SCHEDULED and was.cancel_requested:
            state = JobState.CANCELLED
        assert (await self.record(was.id)).state is (state if honoured else was.state)

    async def cancel(self, was: JobRecord) -> None:
        after = await self.backend.job_cancel(job_id=was.id)
        assert after is not None
        if was.state in {JobState.QUEUED, JobState.SCHEDULED}:
            assert after.state is JobState.CANCELLED
        elif was.state is JobState.RUNNING:
            assert (after.state, after.cancel_requested) == (JobState.RUNNING, True)
        else:
            assert after == was

    async def retry(self, was: JobRecord) -> None:
        if was.state not in {JobState.FAILED, JobState.CANCELLED}:
            with pytest.raises(JobStateError):
                await self.backend.job_retry(job_id=was.id, now=self.clock)
            return
        after = await self.backend.job_retry(job_id=was.id, now=self.clock)
        assert after is not None
        assert after.state is JobState.QUEUED
        assert after.attempt < after.max_attempts

    async def check_invariants(self) -> None:
        records = await self.backend.job_list(filter=JobFilter(queue=self.queue), limit=1000)
        assert sorted(r.id for r in records) == sorted(self.ids)
        for r in records:
            assert 0 <= r.attempt <= r.max_attempts, r
            if r.state is JobState.RUNNING:
                assert r.lease_expires_at is not None, r
                assert r.started_at is not None, r
                assert r.worker_id == "w"
            if r.state in {JobState.QUEUED, JobState.SCHEDULED}:
                assert r.lease_expires_at is None, r
                assert r.finished_at is None, r
                assert not r.cancel_requested, r
            if r.state.is_final:
                assert r.finished_at is not None, r
        stats = {s.queue: s for s in await self.backend.queue_stats()}
        if records:
            counts = {state: n for state, n in stats[self.queue].counts.items() if n}
            expected: dict[JobState, int] = {}
            for r in records:
                expected[r.state] = expected.get(r.state, 0) + 1
            assert counts == expected
        else:
            assert self.queue not in stats
