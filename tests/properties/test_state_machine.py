"""The job state machine of DESIGN.md, driven by Hypothesis (``RuleBasedStateMachine``)
against every backend: memory, a SQLite file and a PostgreSQL schema, a fresh store per
example.

Rules are the operations of the backend interface that change jobs: enqueue (with unique
keys), small workflows whose parts wait for stored jobs and for each other, claim,
heartbeat, progress, complete, fail, retry later, release, cancel, retry, delete, lease
expiry (time travel through the ``now=`` parameters, by steps or straight to the next
moment something falls due, then a reclaim sweep), promotion of due jobs and pruning.
Each rule predicts its result from the model of ``_model.py`` (settling the parts that
wait for a job that ended) and asserts it; a write under a stale or forged lease must be
refused and change nothing. After every step these invariants hold:

- every job is in exactly one state (the listing, the per-state counts and the queue
  statistics agree, and each job's state is the predicted one);
- ``attempt <= max_attempts``, and a waiting job has an attempt left;
- a final job never changes, except by an explicit retry, delete or prune;
- a running job has a lease (expiry and worker), no other job has one;
- a unique key is held by at most one live job;
- a blocked job waits for at least one dependency that has not completed, and for none
  that failed or was cancelled (that ends it, as its workflow's policy says);
- a job with dependencies is queued, scheduled, running or completed only once every
  dependency completed (or was deleted).

Examples are bounded (``EXAMPLES``, up to 40 steps each) so that the three stores take
well under a minute together; ``WORKHORSE_STATE_MACHINE_EXAMPLES`` (per store) and
``WORKHORSE_STATE_MACHINE_STEPS`` raise them for a longer hunt.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from conftest import BACKEND_KINDS, require_postgres
from workhorse.backends.base import (
    JobFilter,
    Lease,
    NewJob,
    NewWorkflow,
    Outcome,
    ProgressUpdate,
    StoredJobRef,
    WorkflowPart,
)
from workhorse.errors import JobStateError
from workhorse.jobs import (
    FINAL_STATES,
    LIVE_STATES,
    DependencyPolicy,
    JobError,
    JobRecord,
    JobState,
)

from ._model import CANCELLABLE_AT_ONCE, RETRYABLE, WAITING, Expected, Model, policy_state
from ._stores import FreshStores, OpenStore

T = TypeVar("T")
LEASE = 30.0
WORKER = "worker-under-test"
TOLERANCE = timedelta(milliseconds=5)
"""Stores may round timestamps to micro- or milliseconds."""

EXAMPLES = {"memory": 150, "sqlite": 60, "postgres": 40}
"""Examples per store: what fits in about 10 s each on a loaded 2-core machine."""


def _settings(kind: str) -> settings:
    examples = os.environ.get("WORKHORSE_STATE_MACHINE_EXAMPLES")
    return settings(
        max_examples=int(examples) if examples else EXAMPLES[kind],
        stateful_step_count=int(os.environ.get("WORKHORSE_STATE_MACHINE_STEPS", "40")),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


# (priority, delay in seconds, max_attempts, unique key)
_NEW_JOB = st.tuples(
    st.integers(0, 2),
    st.sampled_from([0, 0, 30]),
    st.integers(1, 3),
    st.sampled_from([None, None, "key-a", "key-b"]),
)
_PICK = st.integers(0, 10**6)
_RUNNING = st.sampled_from([True, True, True, False])
"""Whether a worker's write targets a running job (else any job)."""
_FRESH = st.sampled_from([True, True, False])
"""Whether a worker's write carries the job's newest lease (else a stale or forged one)."""
_TTL = st.sampled_from([None, 10, 60])
# A workflow part: (stored jobs it waits for, earlier parts it waits for, delay, attempts,
# priority)
_PART = st.tuples(
    st.lists(_PICK, max_size=2),
    st.lists(st.integers(0, 2), max_size=2),
    st.sampled_from([0, 0, 30]),
    st.integers(1, 3),
    st.integers(0, 2),
)
_BEGUN = frozenset({JobState.QUEUED, JobState.SCHEDULED, JobState.RUNNING, JobState.COMPLETED})
"""States a job with dependencies reaches only once every dependency completed."""


def _near(actual: datetime | None, expected: datetime) -> bool:
    return actual is not None and abs(actual - expected) <= TOLERANCE


class JobStateMachine(RuleBasedStateMachine):
    """One store and the model of what it must hold."""

    stores: ClassVar[FreshStores]

    def __init__(self) -> None:
        super().__init__()
        self._loop = asyncio.Runner()
        self._opened: OpenStore | None = None
        try:
            self._opened = self.run(self.stores.open())
        except BaseException:
            self._loop.close()  # Hypothesis calls teardown only on a built machine
            raise
        self.store = self._opened.backend
        # Whole seconds: every time the test passes is exact in every store.
        self.clock = datetime.now(UTC).replace(microsecond=0)
        self.model = Model()
        self.finals: dict[int, JobRecord] = {}
        """The record of each final job as first seen final: it must never change."""

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run a store call to its end on this machine's event loop."""
        return self._loop.run(work)

    def teardown(self) -> None:
        try:
            if self._opened is not None:
                self.run(self._opened.close())
        finally:
            self._loop.close()

    def record(self, job_id: int) -> JobRecord:
        found = self.run(self.store.job_get(job_id=job_id))
        assert found is not None, f"job {job_id} vanished"
        return found

    def records(self) -> dict[int, JobRecord]:
        listed = self.run(self.store.job_list(filter=JobFilter(), limit=10_000))
        return {r.id: r for r in listed}

    # -- enqueue and claim ------------------------------------------------------------

    @initialize(batch=st.lists(_NEW_JOB, min_size=1, max_size=6))
    def start_with_jobs(self, batch: list[tuple[int, int, int, str | None]]) -> None:
        """Every example starts with a few jobs, so that most steps have work to do."""
        self.enqueue(batch)

    @rule(batch=st.lists(_NEW_JOB, min_size=1, max_size=3))
    def enqueue(self, batch: list[tuple[int, int, int, str | None]]) -> None:
        jobs = [
            NewJob(task="t", priority=p, delay=d, max_attempts=m, unique_key=k)
            for p, d, m, k in batch
        ]
        inserted = self.run(self.store.job_insert_many(jobs, now=self.clock))
        assert len(inserted) == len(jobs)
        for job, row in zip(jobs, inserted, strict=True):
            holder = self.model.key_holder(job.unique_key)
            if holder is not None:
                assert (row.id, row.created, row.state) == (holder.id, False, holder.state)
                continue
            assert row.created, row
            assert row.id not in self.model.jobs
            state = JobState.SCHEDULED if job.delay > 0 else JobState.QUEUED
            assert row.state is state
            self.model.jobs[row.id] = Expected(row.id, state, job.max_attempts, job.unique_key)

    @precondition(lambda self: self.model.jobs)
    @rule(limit=st.integers(1, 3))
    def claim(self, limit: int) -> None:
        due = sorted(
            (
                r
                for r in self.records().values()
                if r.state is JobState.QUEUED
                or (r.state is JobState.SCHEDULED and r.run_at <= self.clock)
            ),
            key=lambda r: (-r.priority, r.run_at, r.id),
        )
        claimed = self.run(
            self.store.job_claim(
                worker_id=WORKER, queues=None, limit=limit, lease_seconds=LEASE, now=self.clock
            )
        )
        assert {job.id for job in claimed} == {r.id for r in due[:limit]}
        for job in claimed:
            expected = self.model.jobs[job.id]
            assert job.attempt == expected.attempt + 1
            assert job.attempt <= job.max_attempts == expected.max_attempts
            assert job.lease_token not in expected.tokens
            expected.state = JobState.RUNNING
            expected.attempt += 1
            expected.tokens.append(job.lease_token)
            after = self.record(job.id)
            assert _near(after.lease_expires_at, self.clock + timedelta(seconds=LEASE))

    @rule(parts=st.lists(_PART, min_size=1, max_size=3), policy=st.sampled_from(["fail", "cancel"]))
    def insert_workflow(
        self, parts: list[tuple[list[int], list[int], int, int, int]], policy: DependencyPolicy
    ) -> None:
        """A small workflow: each part waits for stored jobs and for earlier parts. A part
        starts blocked while one of them is live, ends at once (as the policy says) if
        one already failed or was cancelled, and is queued or scheduled otherwise."""
        workflow: list[WorkflowPart] = []
        for position, (picks, earlier, delay, attempts, priority) in enumerate(parts):
            # Half of them running jobs, whose end the worker writes soon settle it.
            chosen = [self.model.pick(n, running=n % 2 == 0).id for n in picks if self.model.jobs]
            refs = list(dict.fromkeys(chosen))
            inner = sorted({i for i in earlier if i < position})
            job = NewJob(task="t", priority=priority, delay=delay, max_attempts=attempts)
            after: tuple[int | StoredJobRef, ...] = (*(StoredJobRef(r) for r in refs), *inner)
            workflow.append(WorkflowPart(job=job, after=after))
        inserted = self.run(
            self.store.workflow_insert(
                NewWorkflow(parts=workflow, on_failure=policy), now=self.clock
            )
        )
        assert len(inserted.jobs) == len(parts)
        ids = [row.id for row in inserted.jobs]
        for part, row in zip(workflow, inserted.jobs, strict=True):
            deps = tuple(
                dep.job_id if isinstance(dep, StoredJobRef) else ids[dep] for dep in part.after
            )
            expected = Expected(
                row.id,
                self._part_state(deps, part.job.delay, policy),
                part.job.max_attempts,
                None,
                deps=deps,
                run_at=self.clock + timedelta(seconds=part.job.delay),
                policy=policy,
            )
            assert row.state is expected.state, (row, expected, [self.model.jobs[d] for d in deps])
            self.model.jobs[row.id] = expected

    def _part_state(self, deps: tuple[int, ...], delay: float, policy: str) -> JobState:
        states = [self.model.jobs[dep].state for dep in deps]
        if any(state in (JobState.FAILED, JobState.CANCELLED) for state in states):
            return policy_state(policy)
        if any(state is not JobState.COMPLETED for state in states):
            return JobState.BLOCKED
        return JobState.SCHEDULED if delay > 0 else JobState.QUEUED

    # -- a worker's writes, under a fresh or a stale lease --------------------------------

    @precondition(lambda self: self.model.jobs)
    @rule(
        write=st.sampled_from(
            ["heartbeat", "progress", "complete", "fail", "retry_later", "release"]
        ),
        n=_PICK,
        running=_RUNNING,
        fresh=_FRESH,
        ttl=_TTL,
        delay=st.sampled_from([0, 5, 30]),
    )
    def worker_write(
        self, write: str, n: int, running: bool, fresh: bool, ttl: float | None, delay: int
    ) -> None:
        """A write a worker makes under a lease: it applies if and only if the lease is
        the job's newest and the job still runs; otherwise it changes nothing."""
        job = self.model.pick(n, running=running)
        lease = job.lease(fresh)
        honoured = job.honours(lease)
        before = self.record(job.id)
        if write == "heartbeat":
            self.heartbeat(job, lease)
        elif write == "progress":
            self.progress(job, lease, percent=n % 101)
        elif write == "release":
            self.release(job, lease)
        else:
            end = {
                "complete": JobState.COMPLETED,
                "fail": JobState.FAILED,
                # As the worker does: no retry without an attempt left.
                "retry_later": JobState.SCHEDULED
                if job.attempt < job.max_attempts
                else JobState.FAILED,
            }[write]
            self.end_attempt(job, lease, end, ttl=ttl, delay=delay)
        if not honoured:
            assert self.record(job.id) == before, f"a fenced {write} changed the job"

    def heartbeat(self, job: Expected, lease: Lease) -> None:
        reply = self.run(
            self.store.job_heartbeat(worker_id=WORKER, leases=[lease], lease_seconds=LEASE)
        )
        honoured = job.honours(lease)
        assert (job.id in reply.lost) is not honoured
        assert (job.id in reply.cancel_requested) is (honoured and job.cancel_requested)

    def progress(self, job: Expected, lease: Lease, percent: int) -> None:
        update = ProgressUpdate(job_id=job.id, lease_token=lease.token, progress=percent)
        self.run(self.store.job_set_progress([update]))
        if job.honours(lease):
            assert self.record(job.id).progress == percent

    def end_attempt(
        self, job: Expected, lease: Lease, end: JobState, *, ttl: float | None, delay: int
    ) -> None:
        outcome = Outcome(
            job_id=job.id,
            lease_token=lease.token,
            state=end,
            result=f"[{delay}]" if end is JobState.COMPLETED else None,
            error=None if end is JobState.COMPLETED else JobError(type="E", message="boom"),
            retry_delay=delay,
            ttl=ttl,
        )
        honoured = job.honours(lease)
        assert self.run(self.store.job_complete_many([outcome], now=self.clock)) == [honoured]
        if not honoured:
            return
        if end is JobState.SCHEDULED and job.cancel_requested:
            end = JobState.CANCELLED
        job.state = end
        if end.is_final:
            self.model.settle(job, self.clock)
        after = self.record(job.id)
        if end is JobState.SCHEDULED:
            assert after.run_at == self.clock + timedelta(seconds=delay)
        elif end.is_final:
            assert after.finished_at == self.clock
            if ttl is None:
                assert after.expires_at is None
            else:
                assert _near(after.expires_at, self.clock + timedelta(seconds=ttl))
        if end is JobState.COMPLETED:
            assert after.result == [delay]
        else:
            assert after.error == outcome.error

    def release(self, job: Expected, lease: Lease) -> None:
        honoured = job.honours(lease)
        assert self.run(self.store.job_release([lease])) == int(honoured)
        if honoured:
            job.attempt -= 1
            job.state = JobState.CANCELLED if job.cancel_requested else JobState.QUEUED
            if job.state is JobState.CANCELLED:
                self.model.settle(job, self.clock)

    # -- operator actions ------------------------------------------------------------------

    @precondition(lambda self: self.model.jobs)
    @rule(action=st.sampled_from(["cancel", "retry", "delete"]), n=_PICK)
    def operator(self, action: str, n: int) -> None:
        """What the CLI, the API and the dashboard do to a job."""
        job = self.model.pick(n)
        {"cancel": self.cancel, "retry": self.retry, "delete": self.delete}[action](job)

    def cancel(self, job: Expected) -> None:
        after = self.run(self.store.job_cancel(job_id=job.id))
        assert after is not None
        if job.state in CANCELLABLE_AT_ONCE:
            job.state = JobState.CANCELLED
            self.model.settle(job, self.clock)
        elif job.state is JobState.RUNNING:
            job.cancel_requested = True
        assert (after.state, after.cancel_requested) == (job.state, job.cancel_requested)

    def retry(self, job: Expected) -> None:
        holder = self.model.key_holder(job.unique_key, besides=job.id)
        # A part that waits for a job that did not complete would run without it.
        if job.state not in RETRYABLE or holder is not None or self.model.waits_on(job):
            before = self.record(job.id)
            with pytest.raises(JobStateError):
                self.run(self.store.job_retry(job_id=job.id, now=self.clock))
            assert self.record(job.id) == before
            return
        after = self.run(self.store.job_retry(job_id=job.id, now=self.clock))
        assert after is not None
        job.state = JobState.QUEUED
        job.cancel_requested = False
        job.max_attempts = max(job.max_attempts, job.attempt + 1)
        del self.finals[job.id]
        assert after.run_at == self.clock
        assert (after.result, after.error, after.finished_at, after.expires_at) == (
            None,
            None,
            None,
            None,
        )

    def delete(self, job: Expected) -> None:
        if job.state.is_live:
            with pytest.raises(JobStateError):
                self.run(self.store.job_delete(job_id=job.id))
            return
        assert self.run(self.store.job_delete(job_id=job.id)) is True
        assert self.run(self.store.job_get(job_id=job.id)) is None
        assert self.run(self.store.job_delete(job_id=job.id)) is False
        del self.model.jobs[job.id]
        del self.finals[job.id]

    # -- time and maintenance ----------------------------------------------------------

    @rule(seconds=st.sampled_from([1, 10, 31, 45]))
    def tick(self, seconds: int) -> None:
        """Time travel: every later call passes the new ``now``; 31 s and more let the
        leases of a claim made now expire."""
        self.clock += timedelta(seconds=seconds)

    @rule(past=st.sampled_from([0, 0, 1]))
    def jump_to_deadline(self, past: int) -> None:
        """Time travel to the next moment something falls due (a scheduled run, a lease
        expiry, a finished job's expiry), or one second past it: boundaries are where
        stores disagree. Only whole-second deadlines (leases renewed by a heartbeat
        follow the real clock)."""
        deadlines = [
            moment
            for r in self.records().values()
            for moment in (r.run_at, r.lease_expires_at, r.expires_at)
            if moment is not None and moment > self.clock and moment.microsecond == 0
        ]
        if deadlines:
            self.clock = min(deadlines) + timedelta(seconds=past)

    @rule(chore=st.sampled_from(["reclaim_expired", "promote_scheduled", "prune"]), ttl=_TTL)
    def maintenance(self, chore: str, ttl: float | None) -> None:
        """The leader's chores, at the current (travelled) time."""
        if chore == "reclaim_expired":
            self.reclaim_expired(ttl)
        elif chore == "promote_scheduled":
            self.promote_scheduled()
        else:
            self.prune()

    def reclaim_expired(self, ttl: float | None) -> None:
        expired = {
            r.id
            for r in self.records().values()
            if r.state is JobState.RUNNING
            and r.lease_expires_at is not None
            and r.lease_expires_at < self.clock
        }
        result = self.run(self.store.job_reclaim_expired(now=self.clock, ttl=ttl))
        assert len(set(result.requeued)) == len(result.requeued)
        assert set(result.requeued).isdisjoint(result.failed)
        for job_id in expired:
            job = self.model.jobs[job_id]
            if job.cancel_requested:
                job.state = JobState.CANCELLED
            elif job.attempt >= job.max_attempts:
                job.state = JobState.FAILED
                assert job_id in result.failed
            else:
                job.state = JobState.QUEUED
                assert job_id in result.requeued
            if job.state is not JobState.CANCELLED:
                error = self.record(job_id).error
                assert error is not None
                assert error.type == "LeaseExpiredError"
            if job.state.is_final:
                self.model.settle(job, self.clock)
        assert set(result.requeued) | set(result.failed) <= expired

    def promote_scheduled(self) -> None:
        due = [
            r.id
            for r in self.records().values()
            if r.state is JobState.SCHEDULED and r.run_at <= self.clock
        ]
        assert self.run(self.store.job_promote_scheduled(now=self.clock)) == len(due)
        for job_id in due:
            self.model.jobs[job_id].state = JobState.QUEUED

    def prune(self) -> None:
        doomed = [
            r.id
            for r in self.records().values()
            if r.state.is_final and r.expires_at is not None and r.expires_at <= self.clock
        ]
        assert self.run(self.store.job_prune(now=self.clock)) == len(doomed)
        for job_id in doomed:
            del self.model.jobs[job_id]
            del self.finals[job_id]

    # -- after every step --------------------------------------------------------------

    @invariant()
    def store_matches_the_model(self) -> None:
        records = self.run(self.store.job_list(filter=JobFilter(), limit=10_000))
        ids = [r.id for r in records]
        assert len(ids) == len(set(ids)), "a job is listed twice"
        assert set(ids) == set(self.model.jobs)
        states: Counter[JobState] = Counter()
        ready: Counter[JobState] = Counter()  # queue stats count due scheduled jobs as queued
        live_keys: list[str] = []
        for r in records:
            expected = self.model.jobs[r.id]
            assert (r.state, r.attempt, r.max_attempts, r.cancel_requested) == (
                expected.state,
                expected.attempt,
                expected.max_attempts,
                expected.cancel_requested,
            ), r
            self._check_job(r)
            states[r.state] += 1
            due = r.state is JobState.SCHEDULED and r.run_at <= self.clock
            ready[JobState.QUEUED if due else r.state] += 1
            if r.state.is_live and r.unique_key is not None:
                live_keys.append(r.unique_key)
        assert len(live_keys) == len(set(live_keys)), f"a unique key held twice: {live_keys}"
        self._check_counts(states, ready)
        self._check_dependencies({r.id: r for r in records})

    def _check_job(self, r: JobRecord) -> None:
        assert 0 <= r.attempt <= r.max_attempts, r
        if r.state in WAITING:
            assert r.attempt < r.max_attempts, f"a waiting job without an attempt left: {r}"
            assert r.finished_at is None, r
        if r.state is JobState.RUNNING:
            assert r.lease_expires_at is not None, r
            assert r.worker_id == WORKER, r
            assert r.started_at is not None, r
        else:
            assert r.lease_expires_at is None, f"a lease on a job that is not running: {r}"
        if r.state.is_final:
            assert r.finished_at is not None, r
            first_seen = self.finals.setdefault(r.id, r)
            assert r == first_seen, f"final job {r.id} changed:\n{first_seen}\n{r}"

    def _check_dependencies(self, records: dict[int, JobRecord]) -> None:
        """What the store says each part waits for agrees with its state."""
        for job in self.model.jobs.values():
            if not job.deps:
                continue
            found = self.run(self.store.job_dependencies(job_id=job.id))
            assert [dep.job_id for dep in found] == list(job.deps)
            states = [dep.state for dep in found]  # None: deleted
            all_done = all(state in (None, JobState.COMPLETED) for state in states)
            state = records[job.id].state
            if state is JobState.BLOCKED:
                assert not all_done, f"job {job.id} blocked behind completed jobs: {found}"
                ended = [s for s in states if s in (JobState.FAILED, JobState.CANCELLED)]
                assert not ended, f"job {job.id} left blocked behind an end: {found}"
            elif state in _BEGUN:
                assert all_done, f"job {job.id} is {state} before its dependencies: {found}"

    def _check_counts(self, states: Counter[JobState], ready: Counter[JobState]) -> None:
        live = self.run(self.store.job_count(filter=JobFilter(states=tuple(LIVE_STATES))))
        final = self.run(self.store.job_count(filter=JobFilter(states=tuple(FINAL_STATES))))
        assert (live, final) == (
            sum(states[s] for s in LIVE_STATES),
            sum(states[s] for s in FINAL_STATES),
        )
        stats = self.run(self.store.queue_stats(now=self.clock))
        counted: Counter[JobState] = Counter()
        for queue in stats:
            counted.update({state: n for state, n in queue.counts.items() if n})
        assert counted == ready


@pytest.mark.parametrize(
    "kind",
    [pytest.param(k, marks=pytest.mark.postgres) if k == "postgres" else k for k in BACKEND_KINDS],
)
def test_job_state_machine(kind: str, tmp_path: Path) -> None:
    if kind == "postgres":
        require_postgres()
    machine = type(
        f"JobStateMachine_{kind}", (JobStateMachine,), {"stores": FreshStores(kind, tmp_path)}
    )
    run_state_machine_as_test(machine, settings=_settings(kind))
