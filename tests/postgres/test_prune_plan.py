"""Pruning a large expired backlog costs per batch, not per expired row: one batch walks
``workhorse_jobs_expires`` in order up to its LIMIT and deletes by primary key, whether
the table has no statistics yet, fresh ones, or ones taken before the backlog expired,
and whether the server plans the statement for its parameters or generically (as it may
once the statement is prepared)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg.rows import TupleRow

from workhorse.backends.postgres import PostgresBackend
from workhorse.backends.postgres.statements import Statements

from ._support import explain_as_run, plan_scans

BACKLOG = 60_000
BATCH = 1000
PLAN_MODES = ("force_custom_plan", "force_generic_plan")


async def _fill(admin: psycopg.AsyncConnection[TupleRow], schema: str, *, expired: bool) -> None:
    """The backlog: finished jobs (expired over the last hour, or not yet), and as many
    live ones as a batch, which have no expiry."""
    await admin.execute(
        f"""
        INSERT INTO "{schema}".workhorse_jobs (task, state, finished_at, expires_at)
        SELECT 'done', 'completed', now() - interval '2 hours',
               now() + (CASE WHEN %(expired)s THEN -1 ELSE 1 END) * random() * interval '1 hour'
        FROM generate_series(1, %(n)s)
        """,
        {"expired": expired, "n": BACKLOG},
    )
    live = (
        f"INSERT INTO \"{schema}\".workhorse_jobs (task) SELECT 'live' FROM generate_series(1, %s)"
    )
    await admin.execute(live, [BATCH])


async def _explain(pg: PostgresBackend, mode: str) -> dict[str, Any]:
    """The plan of one pruning batch, planned as ``mode`` says."""
    statement = Statements(pg.schema)["prune_jobs"]
    arguments = {"now": None, "limit": BATCH}
    types = {"now": "timestamptz", "limit": "integer"}
    return await explain_as_run(pg, statement, arguments, types, mode=mode)


def _assert_reads_one_batch(plan: dict[str, Any]) -> None:
    scans = list(plan_scans(plan))
    walk = [scan for scan in scans if scan.get("Index Name") == "workhorse_jobs_expires"]
    assert len(walk) == 1, scans
    assert walk[0]["Node Type"] == "Index Scan", scans
    deleted = [scan for scan in scans if scan["Node Type"] == "ModifyTable"]
    assert [scan["Actual Rows"] for scan in deleted] == [BATCH], scans
    for scan in scans:
        assert scan["Node Type"] != "Seq Scan", scans
        assert scan["Actual Rows"] * scan["Actual Loops"] <= BATCH, scans


@pytest.mark.parametrize("statistics", ["none", "fresh", "stale"])
async def test_a_prune_batch_reads_about_as_many_rows_as_it_deletes(
    pg: PostgresBackend, admin: psycopg.AsyncConnection[TupleRow], statistics: str
) -> None:
    # Stale: analyzed while nothing had expired yet; then the whole backlog expires.
    await _fill(admin, pg.schema, expired=statistics != "stale")
    if statistics != "none":
        await admin.execute(f'ANALYZE "{pg.schema}".workhorse_jobs')
    if statistics == "stale":
        await admin.execute(
            f"""UPDATE "{pg.schema}".workhorse_jobs SET expires_at = expires_at - interval '1 hour'
            WHERE expires_at IS NOT NULL"""
        )
    for mode in PLAN_MODES:
        _assert_reads_one_batch(await _explain(pg, mode))
    assert await pg.job_prune(limit=BATCH) == BATCH
