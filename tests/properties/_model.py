"""What the state machine test expects of each job: the state, attempt count and leases
that DESIGN.md's transitions predict, independently of any backend, and how the end of
a job settles the workflow parts that wait for it (``NewWorkflow`` in the backend
interface)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from workhorse.backends.base import Lease
from workhorse.jobs import JobState

WAITING = frozenset({JobState.QUEUED, JobState.SCHEDULED})
CANCELLABLE_AT_ONCE = frozenset({JobState.QUEUED, JobState.SCHEDULED, JobState.BLOCKED})
RETRYABLE = frozenset({JobState.FAILED, JobState.CANCELLED})
FORGED_TOKEN = "forged-token-never-handed-out"


@dataclass
class Expected:
    """One job as the model sees it."""

    id: int
    state: JobState
    max_attempts: int
    unique_key: str | None
    attempt: int = 0
    cancel_requested: bool = False
    tokens: list[str] = field(default_factory=list)
    """Every lease token a claim handed out for this job, oldest first."""
    deps: tuple[int, ...] = ()
    """The jobs this workflow part waits for, in the order given."""
    run_at: datetime | None = None
    """A part's ``run_at`` from its insertion: whether it is due once unblocked."""
    policy: str = "fail"
    """Its workflow's ``on_failure``: what a failed or cancelled dependency makes of it."""

    def lease(self, fresh: bool) -> Lease:
        """The newest lease of the job when ``fresh``, else a stale (or forged) one."""
        if fresh and self.tokens:
            return Lease(job_id=self.id, token=self.tokens[-1])
        stale = self.tokens[0] if len(self.tokens) > 1 else FORGED_TOKEN
        return Lease(job_id=self.id, token=stale)

    def honours(self, lease: Lease) -> bool:
        """A worker write under ``lease`` must apply: the job runs under exactly that
        lease. Any other write is fenced off."""
        return (
            self.state is JobState.RUNNING and bool(self.tokens) and lease.token == self.tokens[-1]
        )


@dataclass
class Model:
    """Every job the store should hold."""

    jobs: dict[int, Expected] = field(default_factory=dict)

    def pick(self, n: int, *, running: bool = False) -> Expected:
        """A job chosen by the number ``n`` (the store must not be empty): a running
        one when ``running`` and there is one, since most writes only apply to those."""
        ids = sorted(self.jobs)
        if running:
            ids = [i for i in ids if self.jobs[i].state is JobState.RUNNING] or ids
        return self.jobs[ids[n % len(ids)]]

    def dependents(self, job_id: int) -> list[Expected]:
        """The parts that wait for ``job_id``."""
        return [job for job in self.jobs.values() if job_id in job.deps]

    def waits_on(self, job: Expected) -> list[Expected]:
        """The dependencies of ``job`` that exist and have not completed (a deleted
        dependency holds nobody back)."""
        return [
            self.jobs[dep]
            for dep in job.deps
            if dep in self.jobs and self.jobs[dep].state is not JobState.COMPLETED
        ]

    def settle(self, ended: Expected, at: datetime) -> None:
        """``ended`` just reached a final state at ``at``: a completion releases the
        blocked parts whose every dependency has now completed (scheduled if their
        ``run_at`` is still ahead, else queued); a failure or cancellation ends the
        blocked parts behind it, transitively, as their workflow's policy says."""
        if ended.state is JobState.COMPLETED:
            for job in self.dependents(ended.id):
                if job.state is JobState.BLOCKED and not self.waits_on(job):
                    assert job.run_at is not None
                    job.state = JobState.SCHEDULED if job.run_at > at else JobState.QUEUED
            return
        pending = self.dependents(ended.id)
        while pending:
            job = pending.pop()
            if job.state is JobState.BLOCKED:
                job.state = policy_state(job.policy)
                pending.extend(self.dependents(job.id))

    def key_holder(self, key: str | None, *, besides: int | None = None) -> Expected | None:
        """The live job holding unique ``key`` (other than job ``besides``), if any."""
        if key is None:
            return None
        for job in self.jobs.values():
            if job.unique_key == key and job.state.is_live and job.id != besides:
                return job
        return None


def policy_state(policy: str) -> JobState:
    """The state a workflow's ``on_failure`` policy ends a part in."""
    return JobState.CANCELLED if policy == "cancel" else JobState.FAILED
