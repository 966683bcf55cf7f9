"""Workflows in the SQLite backend: inserting one, reading and cancelling it, the
dependencies of a job, and a running job's meta. Settling the jobs that wait on one that
ended is the migration's trigger (``workhorse_jobs_settle_dependents``): it runs in the
transaction of whichever statement ended the job."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from functools import partial
from typing import Any

from workhorse.backends._workflows import (
    PartPlan,
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
from workhorse.backends.sqlite.connection import Database
from workhorse.backends.sqlite.job_reads import records
from workhorse.backends.sqlite.rows import clock, decoded, from_epoch, insert_params
from workhorse.backends.sqlite.statements import QUERIES
from workhorse.errors import ConfigurationError, SerializationError
from workhorse.jobs import JobState
from workhorse.serialization import dumps, loads

_STATE = 2  # position of state in the job_insert parameters


class SQLiteWorkflows:
    """The workflow methods of :class:`~workhorse.backends.sqlite.SQLiteBackend`."""

    _db: Database

    async def workflow_insert(
        self, workflow: NewWorkflow, *, connection: Any = None, now: datetime | None = None
    ) -> InsertedWorkflow:
        """Insert the workflow, its parts and their dependencies in one transaction."""
        if connection is not None:
            raise ConfigurationError(
                "the SQLite store cannot enqueue inside your own transaction: use PostgreSQL"
            )
        at = clock(now)
        rows = [insert_params(part.job, at)[0] for part in workflow.parts]
        return await self._db.write(partial(_insert, workflow=workflow, rows=rows, now=at))

    async def workflow_get(
        self, *, workflow_id: int, tenant: str | None = None
    ) -> WorkflowRecord | None:
        """The workflow and its parts, or None."""
        return await self._db.read(partial(_get, workflow_id=workflow_id, tenant=tenant))

    async def workflow_cancel(
        self, *, workflow_id: int, tenant: str | None = None, now: datetime | None = None
    ) -> WorkflowRecord | None:
        """Cancel the live parts (running ones cooperatively)."""
        return await self._db.write(
            partial(_cancel, workflow_id=workflow_id, tenant=tenant, now=clock(now))
        )

    async def job_dependencies(self, *, job_id: int) -> list[Dependency]:
        """What ``job_id`` waits for, in order."""
        rows = await self._db.read(
            lambda conn: conn.execute(QUERIES["job_dependencies"], {"job_id": job_id}).fetchall()
        )
        return [
            Dependency(
                job_id=row[0],
                state=None if row[1] is None else JobState(row[1]),
                task=row[2],
                result=decoded(row[3], None),
            )
            for row in rows
        ]

    async def job_set_meta(self, *, lease: Lease, key: str, value: str) -> bool:
        """Set one meta field of a running job under its lease."""
        check_meta_key(key)
        try:
            loads(value)
        except ValueError as exc:
            raise SerializationError(f"meta {key!r} is not JSON: {exc}") from None
        params = {
            "path": f"$.{key}",
            "value": value,
            "job_id": lease.job_id,
            "lease_token": lease.token,
        }
        return await self._db.write(
            lambda conn: conn.execute(QUERIES["job_set_meta"], params).rowcount == 1,
            durable=False,
        )


def _insert(
    conn: sqlite3.Connection, workflow: NewWorkflow, rows: list[Any], now: float
) -> InsertedWorkflow:
    stored_ids = stored_dependencies(workflow)
    found = conn.execute(QUERIES["workflow_stored_deps"], {"ids": dumps(stored_ids)}).fetchall()
    plans = plan_parts(workflow, {row[0]: (JobState(row[1]), row[2]) for row in found})
    (workflow_id,) = conn.execute(
        QUERIES["workflow_insert"],
        {
            "name": workflow.name,
            "tenant": workflow.tenant,
            "on_failure": workflow.on_failure,
            "now": now,
        },
    ).fetchone()
    ids: list[int] = []
    inserted: list[InsertedJob] = []
    for part, plan, params in zip(workflow.parts, plans, rows, strict=True):
        values = list(params)
        state = JobState(values[_STATE])
        error_type = error_message = finished_at = expires_at = None
        if plan.blocked:
            state = JobState.BLOCKED
        elif plan.ended is not None and plan.error is not None:
            state = plan.ended
            error_type, error_message, finished_at = plan.error.type, plan.error.message, now
            # Kept as long as the stored dependency that ended it.
            expires_at = _expiry(conn, plan)
        values[_STATE] = state.value
        values += [workflow_id, int(plan.has_dependents), error_type, error_message]
        values += [finished_at, expires_at]
        (job_id,) = conn.execute(QUERIES["workflow_part_insert"], values).fetchone()
        ids.append(job_id)
        inserted.append(InsertedJob(id=job_id, state=state, created=True))
        edges = [
            (job_id, ids[dep] if isinstance(dep, int) else dep.job_id, ordinal)
            for ordinal, dep in enumerate(part.after)
        ]
        conn.executemany(QUERIES["workflow_dep_insert"], edges)
    conn.execute(QUERIES["workflow_mark_dependents"], {"ids": dumps(stored_ids)})
    return InsertedWorkflow(id=workflow_id, jobs=inserted)


def _expiry(conn: sqlite3.Connection, plan: PartPlan) -> float | None:
    if plan.cause_id is None:
        return None
    row = conn.execute(QUERIES["workflow_expiry"], {"id": plan.cause_id}).fetchone()
    return None if row is None else row[0]


def check_dependencies_completed(conn: sqlite3.Connection, job_id: int) -> None:
    """``JobStateError`` if ``job_id`` waits for a job that exists and has not completed
    (a retry would run it without)."""
    row = conn.execute(QUERIES["job_waiting_on"], {"job_id": job_id}).fetchone()
    if row is not None:
        raise retry_refused(job_id, row[0], row[1])


def _get(conn: sqlite3.Connection, workflow_id: int, tenant: str | None) -> WorkflowRecord | None:
    row = conn.execute(
        QUERIES["workflow_get"], {"workflow_id": workflow_id, "tenant": tenant}
    ).fetchone()
    if row is None:
        return None
    parts = records(conn, QUERIES["workflow_parts"], {"workflow_id": workflow_id})
    if not parts:
        return None
    edges = conn.execute(QUERIES["workflow_edges"], {"workflow_id": workflow_id}).fetchall()
    return WorkflowRecord(
        id=row[0],
        name=row[1],
        tenant=row[2],
        on_failure="cancel" if row[3] == "cancel" else "fail",
        created_at=datetime.fromtimestamp(row[4], UTC),
        cancelled_at=from_epoch(row[5]),
        parts=parts,
        edges=[(edge[0], edge[1]) for edge in edges],
    )


def _cancel(
    conn: sqlite3.Connection, workflow_id: int, tenant: str | None, now: float
) -> WorkflowRecord | None:
    params = {"workflow_id": workflow_id, "tenant": tenant, "now": now}
    if conn.execute(QUERIES["workflow_mark_cancelled"], params).rowcount == 0:
        return None
    conn.execute(QUERIES["workflow_cancel_parts"], params)
    return _get(conn, workflow_id, tenant)
