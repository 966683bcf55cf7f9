"""Workflows in a memory store: their parts, the dependencies between jobs, and settling
the jobs that wait on one that just ended (what the SQL stores do in a trigger)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, cast

from workhorse.backends._workflows import (
    check_meta_key,
    dependency_error,
    plan_parts,
    policy_state,
    retry_refused,
    stored_dependencies,
)
from workhorse.backends.base import (
    Dependency,
    InsertedJob,
    InsertedWorkflow,
    Lease,
    NewWorkflow,
    StoredJobRef,
    WorkflowRecord,
)
from workhorse.backends.memory.rows import StoredJob, encode_new_job, utc
from workhorse.backends.memory.table import JobTable
from workhorse.errors import SerializationError
from workhorse.jobs import JobState
from workhorse.serialization import dumps, loads

_WAITING = frozenset({JobState.SCHEDULED, JobState.QUEUED, JobState.BLOCKED})


class _Table(JobTable, Protocol):
    _ids: Iterator[int]

    def _ended(self, job: StoredJob) -> None: ...


@dataclass(slots=True)
class StoredWorkflow:
    """A workflow's own row; its parts are the jobs with its id."""

    id: int
    name: str | None
    tenant: str | None
    on_failure: str
    created_at: datetime
    cancelled_at: datetime | None = None


class MemoryWorkflows:
    """The workflow methods of :class:`~workhorse.backends.memory.MemoryBackend`. They
    use the job table's lock: settling dependents changes jobs."""

    def __init__(self) -> None:
        self._workflows: dict[int, StoredWorkflow] = {}
        self._workflow_ids = itertools.count(1)
        self._deps: dict[int, list[int]] = {}
        """Job -> the jobs it waits for, in order."""
        self._dependents: dict[int, list[int]] = {}
        """Job -> the jobs waiting for it."""
        super().__init__()

    @property
    def _table(self) -> _Table:
        return cast(_Table, self)

    async def workflow_insert(
        self, workflow: NewWorkflow, *, connection: Any = None, now: datetime | None = None
    ) -> InsertedWorkflow:
        """Insert the workflow and its parts; all are checked before any is stored."""
        if connection is not None:
            raise ValueError("memory:// cannot join a caller's transaction")
        moment = utc(now)
        encoded = [encode_new_job(part.job) for part in workflow.parts]
        table = self._table
        with table._lock:
            stored = {
                job_id: (job.state, job.task)
                for job_id in stored_dependencies(workflow)
                if (job := table._jobs.get(job_id)) is not None
            }
            plans = plan_parts(workflow, stored)
            record = StoredWorkflow(
                id=next(self._workflow_ids),
                name=workflow.name,
                tenant=workflow.tenant,
                on_failure=workflow.on_failure,
                created_at=moment,
            )
            self._workflows[record.id] = record
            ids: list[int] = []
            inserted: list[InsertedJob] = []
            for part, plan, (labels, meta) in zip(workflow.parts, plans, encoded, strict=True):
                new = part.job
                run_at = moment + timedelta(seconds=new.delay)
                if new.run_at is not None:
                    run_at = utc(new.run_at)
                job = StoredJob(
                    id=next(table._ids),
                    task=new.task,
                    queue=new.queue,
                    state=JobState.SCHEDULED if run_at > moment else JobState.QUEUED,
                    priority=new.priority,
                    args=new.args,
                    kwargs=new.kwargs,
                    run_at=run_at,
                    max_attempts=new.max_attempts,
                    created_at=moment,
                    tenant=new.tenant,
                    labels=labels,
                    unique_key=None,
                    timeout=new.timeout,
                    parent_id=new.parent_id,
                    meta=meta,
                    workflow_id=record.id,
                    has_dependents=plan.has_dependents,
                )
                if plan.blocked:
                    job.state = JobState.BLOCKED
                elif plan.ended is not None:
                    cause = table._jobs.get(plan.cause_id or -1)
                    job.finish(plan.ended, moment, None)
                    job.expires_at = None if cause is None else cause.expires_at
                    job.error = plan.error
                table._jobs[job.id] = job
                ids.append(job.id)
                deps = [ids[dep] if isinstance(dep, int) else dep.job_id for dep in part.after]
                self._deps[job.id] = deps
                for dep_id in deps:
                    self._dependents.setdefault(dep_id, []).append(job.id)
                inserted.append(InsertedJob(id=job.id, state=job.state, created=True))
            for dep in {d for part in workflow.parts for d in part.after}:
                if isinstance(dep, StoredJobRef):
                    table._jobs[dep.job_id].has_dependents = True
        return InsertedWorkflow(id=record.id, jobs=inserted)

    def _settle(self, job: StoredJob) -> list[StoredJob]:
        """``job`` just ended: release the jobs waiting on it once all they wait for has
        completed, or end them (transitively) if it failed or was cancelled. Returns the
        jobs this ended. Call with the lock held."""
        if not job.has_dependents:
            return []
        jobs = self._table._jobs
        finished = job.finished_at or utc(None)
        if job.state is JobState.COMPLETED:
            for waiting_id in self._dependents.get(job.id, ()):
                waiting = jobs.get(waiting_id)
                if waiting is None or waiting.state is not JobState.BLOCKED:
                    continue
                if all(
                    (dep := jobs.get(dep_id)) is None or dep.state is JobState.COMPLETED
                    for dep_id in self._deps.get(waiting_id, ())
                ):
                    later = waiting.run_at > _settled_at(waiting, finished)
                    waiting.state = JobState.SCHEDULED if later else JobState.QUEUED
            return []
        ended: list[StoredJob] = []
        pending: list[tuple[int, int | None]] = [
            (waiting_id, None) for waiting_id in self._dependents.get(job.id, ())
        ]
        while pending:
            waiting_id, via = pending.pop()
            waiting = jobs.get(waiting_id)
            if waiting is None or waiting.state is not JobState.BLOCKED:
                continue
            flow = self._workflows.get(waiting.workflow_id or -1)
            if flow is not None and flow.cancelled_at is not None:
                continue  # the workflow's own cancel ends its parts
            waiting.finish(
                policy_state(flow.on_failure if flow else "fail"),
                _settled_at(waiting, finished),
                None,
            )
            waiting.expires_at = job.expires_at
            waiting.error = dependency_error(
                job.id, job.task, job.state.value, None if via is None else f"job {via}"
            )
            ended.append(waiting)
            pending.extend(
                (next_id, waiting_id) for next_id in self._dependents.get(waiting_id, ())
            )
        return ended

    def _check_dependencies_completed(self, job_id: int) -> None:
        """``JobStateError`` if ``job_id`` waits for a job that exists and has not
        completed (a retry would run it without). Call with the lock held."""
        jobs = self._table._jobs
        for dep_id in self._deps.get(job_id, ()):
            dep = jobs.get(dep_id)
            if dep is not None and dep.state is not JobState.COMPLETED:
                raise retry_refused(job_id, dep_id, dep.state.value)

    async def workflow_get(
        self, *, workflow_id: int, tenant: str | None = None
    ) -> WorkflowRecord | None:
        """The workflow with its parts, oldest first."""
        with self._table._lock:
            return self._workflow_record(workflow_id, tenant)

    def _workflow_record(self, workflow_id: int, tenant: str | None) -> WorkflowRecord | None:
        flow = self._workflows.get(workflow_id)
        if flow is None or (tenant is not None and flow.tenant != tenant):
            return None
        parts = [job for job in self._table._jobs.values() if job.workflow_id == workflow_id]
        if not parts:
            return None
        return WorkflowRecord(
            id=flow.id,
            name=flow.name,
            tenant=flow.tenant,
            on_failure="cancel" if flow.on_failure == "cancel" else "fail",
            created_at=flow.created_at,
            cancelled_at=flow.cancelled_at,
            parts=[job.record() for job in parts],
            edges=[(job.id, dep) for job in parts for dep in self._deps.get(job.id, ())],
        )

    async def workflow_cancel(
        self, *, workflow_id: int, tenant: str | None = None, now: datetime | None = None
    ) -> WorkflowRecord | None:
        """Cancel the live parts: waiting ones now, running ones cooperatively."""
        moment = utc(now)
        table = self._table
        with table._lock:
            flow = self._workflows.get(workflow_id)
            if self._workflow_record(workflow_id, tenant) is None or flow is None:
                return None
            flow.cancelled_at = flow.cancelled_at or moment
            parts = [job for job in table._jobs.values() if job.workflow_id == workflow_id]
            ended = [job for job in parts if job.state in _WAITING]
            for job in ended:
                job.finish(JobState.CANCELLED, moment, None)
            for job in parts:
                if job.state is JobState.RUNNING:
                    job.cancel_requested = True
            for job in ended:
                table._ended(job)
            return self._workflow_record(workflow_id, tenant)

    async def job_dependencies(self, *, job_id: int) -> list[Dependency]:
        """What ``job_id`` waits for, in order."""
        jobs = self._table._jobs
        with self._table._lock:
            found: list[Dependency] = []
            for dep_id in self._deps.get(job_id, ()):
                dep = jobs.get(dep_id)
                if dep is None:
                    found.append(Dependency(job_id=dep_id, state=None))
                    continue
                result = loads(dep.result) if dep.result is not None else None
                found.append(Dependency(dep_id, dep.state, dep.task, result))
            return found

    async def job_set_meta(self, *, lease: Lease, key: str, value: str) -> bool:
        """Set one meta field of a running job under its lease."""
        check_meta_key(key)
        try:
            decoded = loads(value)
        except ValueError as exc:
            raise SerializationError(f"meta {key!r} is not JSON: {exc}") from None
        with self._table._lock:
            job = self._table._jobs.get(lease.job_id)
            if job is None or not job.holds(lease.token):
                return False
            meta = loads(job.meta)
            meta[key] = decoded
            job.meta = dumps(meta, what="job meta")
            return True


def _settled_at(waiting: StoredJob, ended_at: datetime) -> datetime:
    """When a job that waited on one that ended at ``ended_at`` is settled: then, but
    never before the waiting job existed (the end may carry a clock that was behind the
    insert's, as in the SQL stores)."""
    return max(ended_at, waiting.created_at)
