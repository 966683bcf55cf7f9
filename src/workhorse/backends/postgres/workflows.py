"""Workflows in the PostgreSQL backend: inserting one (on a pooled connection or in the
caller's transaction), reading and cancelling it, the dependencies of a job, and a
running job's meta. Settling the jobs that wait on one that ended is the migration's
trigger (``workhorse_settle_dependents``), in the transaction that ended the job."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from workhorse.backends._workflows import (
    check_meta_key,
    plan_parts,
    retry_refused,
    stored_dependencies,
)
from workhorse.backends.base import (
    Dependency,
    InsertedJob,
    InsertedWorkflow,
    Lease,
    NewWorkflow,
    WorkflowRecord,
)
from workhorse.backends.postgres.pool import Pool
from workhorse.backends.postgres.records import job_record
from workhorse.backends.postgres.sessions import AsyncConnSession, Session
from workhorse.backends.postgres.statements import Statements
from workhorse.backends.postgres.transactional import caller_session
from workhorse.errors import SerializationError
from workhorse.jobs import JobState
from workhorse.serialization import dumps, loads


class PostgresWorkflows:
    """The workflow methods of :class:`~workhorse.backends.postgres.PostgresBackend`."""

    _pool: Pool
    _sql: Statements

    async def workflow_insert(
        self, workflow: NewWorkflow, *, connection: Any = None, now: datetime | None = None
    ) -> InsertedWorkflow:
        """Insert the workflow, its parts and their dependencies in one transaction."""
        if connection is not None:
            session = await caller_session(connection)
            async with session.atomic():
                return await _insert(session, self._sql, workflow, now)

        async def insert(conn: Any) -> InsertedWorkflow:
            session = AsyncConnSession(conn)
            async with session.atomic():
                return await _insert(session, self._sql, workflow, now)

        # Never repeated: had the connection died mid-commit, the workflow might exist.
        return await self._pool.run(insert)

    async def workflow_get(
        self, *, workflow_id: int, tenant: str | None = None
    ) -> WorkflowRecord | None:
        """The workflow and its parts, or None."""

        return await self._pool.run(
            lambda conn: _get(AsyncConnSession(conn), self._sql, workflow_id, tenant),
            idempotent=True,
        )

    async def workflow_cancel(
        self, *, workflow_id: int, tenant: str | None = None, now: datetime | None = None
    ) -> WorkflowRecord | None:
        """Cancel the live parts (running ones cooperatively)."""

        async def cancel(conn: Any) -> WorkflowRecord | None:
            session = AsyncConnSession(conn)
            params = {"id": workflow_id, "tenant": tenant, "now": now}
            async with session.atomic():
                if not await session.fetch(self._sql["workflow_mark_cancelled"], params):
                    return None
                await session.fetch(self._sql["workflow_cancel"], params)
            return await _get(session, self._sql, workflow_id, tenant)

        return await self._pool.run(cancel, idempotent=True)

    async def job_dependencies(self, *, job_id: int) -> list[Dependency]:
        """What ``job_id`` waits for, in order."""
        rows = await self._pool.fetch(
            self._sql["job_dependencies"], {"job_id": job_id}, idempotent=True
        )
        return [
            Dependency(
                job_id=row["id"],
                state=None if row["state"] is None else JobState(row["state"]),
                task=row["task"],
                result=row["result"],
            )
            for row in rows
        ]

    async def _refuse_retry_of_waiting_part(self, job_id: int) -> None:
        """Raise why a failed or cancelled job was not retried, if it waits for a job
        that has not completed (``retry_job`` leaves such parts alone)."""
        rows = await self._pool.fetch(
            self._sql["job_waiting_on"], {"job_id": job_id}, idempotent=True
        )
        if rows:
            raise retry_refused(job_id, rows[0]["id"], rows[0]["state"])

    async def job_set_meta(self, *, lease: Lease, key: str, value: str) -> bool:
        """Set one meta field of a running job under its lease."""
        check_meta_key(key)
        try:
            loads(value)
        except ValueError as exc:
            raise SerializationError(f"meta {key!r} is not JSON: {exc}") from None
        rows = await self._pool.fetch(
            self._sql["job_set_meta"],
            {"key": key, "value": value, "job_id": lease.job_id, "lease_token": lease.token},
            idempotent=True,
        )
        return bool(rows)


async def _insert(
    session: Session, sql: Statements, workflow: NewWorkflow, now: datetime | None
) -> InsertedWorkflow:
    stored_ids = stored_dependencies(workflow)
    stored: dict[int, tuple[JobState, str]] = {}
    expiry: dict[int, datetime | None] = {}
    if stored_ids:
        for row in await session.fetch(sql["workflow_lock_deps"], {"ids": stored_ids}):
            stored[row["id"]] = (JobState(row["state"]), row["task"])
            expiry[row["id"]] = row["expires_at"]
    plans = plan_parts(workflow, stored)
    (created,) = await session.fetch(
        sql["workflow_insert"],
        {
            "name": workflow.name,
            "tenant": workflow.tenant,
            "on_failure": workflow.on_failure,
            "now": now,
        },
    )
    jobs = [part.job for part in workflow.parts]
    states: list[str | None] = []
    for plan in plans:
        if plan.blocked:
            states.append(JobState.BLOCKED.value)
        else:
            states.append(None if plan.ended is None else plan.ended.value)
    params: dict[str, Any] = {
        "now": now,
        "workflow_id": created["id"],
        "task": [job.task for job in jobs],
        "queue": [job.queue for job in jobs],
        "priority": [int(job.priority) for job in jobs],
        "args": [job.args for job in jobs],
        "kwargs": [job.kwargs for job in jobs],
        "run_at": [_utc(job.run_at) for job in jobs],
        "delay": [float(job.delay) for job in jobs],
        "max_attempts": [int(job.max_attempts) for job in jobs],
        "timeout": [None if job.timeout is None else float(job.timeout) for job in jobs],
        "tenant": [job.tenant for job in jobs],
        "labels": [dumps(job.labels, what="job labels") for job in jobs],
        "parent_id": [job.parent_id for job in jobs],
        "meta": [dumps(job.meta, what="job meta") for job in jobs],
        "state": states,
        "has_dependents": [plan.has_dependents for plan in plans],
        "error_type": [None if plan.error is None else plan.error.type for plan in plans],
        "error_message": [None if plan.error is None else plan.error.message for plan in plans],
        # Kept as long as the stored dependency that ended it.
        "expires_at": [expiry.get(plan.cause_id or -1) for plan in plans],
    }
    rows = await session.fetch(sql["workflow_insert_parts"], params)
    ids = [row["id"] for row in rows]
    edges = [
        (ids[position], ids[dep] if isinstance(dep, int) else dep.job_id, ordinal)
        for position, part in enumerate(workflow.parts)
        for ordinal, dep in enumerate(part.after)
    ]
    if edges:
        job_ids, depends_on_ids, ordinals = (list(column) for column in zip(*edges, strict=True))
        await session.fetch(
            sql["workflow_insert_deps"],
            {"job_ids": job_ids, "depends_on_ids": depends_on_ids, "ordinals": ordinals},
        )
    return InsertedWorkflow(
        id=created["id"],
        jobs=[
            InsertedJob(id=row["id"], state=JobState(row["state"]), created=True) for row in rows
        ],
    )


async def _get(
    session: Session, sql: Statements, workflow_id: int, tenant: str | None
) -> WorkflowRecord | None:
    found = await session.fetch(sql["workflow_get"], {"id": workflow_id, "tenant": tenant})
    if not found:
        return None
    parts = await session.fetch(sql["workflow_parts"], {"id": workflow_id})
    if not parts:
        return None
    edges = await session.fetch(sql["workflow_edges"], {"id": workflow_id})
    row = found[0]
    return WorkflowRecord(
        id=row["id"],
        name=row["name"],
        tenant=row["tenant"],
        on_failure="cancel" if row["on_failure"] == "cancel" else "fail",
        created_at=row["created_at"],
        cancelled_at=row["cancelled_at"],
        parts=[job_record(part) for part in parts],
        edges=[(edge["job_id"], edge["depends_on_id"]) for edge in edges],
    )


def _utc(moment: datetime | None) -> datetime | None:
    # A naive datetime is taken as UTC, as the database session (TimeZone=UTC) would.
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)
