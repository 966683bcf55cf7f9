"""A worker's bookkeeping on its leases (outcomes, heartbeats, progress, releases) reads
its own jobs by primary key: it costs the same however many jobs run elsewhere, whether
the table has statistics or not (or stale ones, taken while nothing ran), and whether
the server plans the statement for its parameters or generically (as it may once the
statement is prepared). Joined to the leases instead, the planner read every running
job to match a few; asked for running jobs in the scan, it read the index of running
jobs end to end once statistics said that few ran."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg.rows import TupleRow

from workhorse.backends.base import ClaimedJob, Outcome
from workhorse.backends.postgres import PostgresBackend
from workhorse.backends.postgres.records import outcomes_json
from workhorse.backends.postgres.statements import Statements
from workhorse.jobs import JobState

from ._support import explain_as_run, plan_scans

ELSEWHERE = 20_000
"""Jobs running under other workers' leases."""
FINISHED = 50_000
"""Jobs of the past, kept until they expire."""
BATCH = 16
PLAN_MODES = ("force_custom_plan", "force_generic_plan")
PARAMETER_TYPES = {
    "outcomes": "json",
    "now": "timestamptz",
    "ids": "bigint[]",
    "tokens": "text[]",
    "lease_seconds": "double precision",
    "progress": "double precision[]",
    "messages": "text[]",
}


async def _running(
    pg: PostgresBackend, admin: psycopg.AsyncConnection[TupleRow]
) -> list[ClaimedJob]:
    """Jobs running elsewhere, finished ones, and a batch claimed here (returned)."""
    await admin.execute(
        f"""
        INSERT INTO "{pg.schema}".workhorse_jobs
            (task, state, attempt, worker_id, lease_token, lease_expires_at, started_at)
        SELECT 'elsewhere', 'running', 1, 'other-worker', 'other.' || n,
               now() + interval '1 hour', now()
        FROM generate_series(1, %s) AS n
        """,
        [ELSEWHERE],
    )
    await admin.execute(
        f"""
        INSERT INTO "{pg.schema}".workhorse_jobs (task, state, finished_at, expires_at)
        SELECT 'past', 'completed', now(), now() + interval '1 day'
        FROM generate_series(1, %s)
        """,
        [FINISHED],
    )
    table = f'"{pg.schema}".workhorse_jobs'
    await admin.execute(
        f"INSERT INTO {table} (task) SELECT 'here' FROM generate_series(1, %s)", [BATCH]
    )
    jobs = await pg.job_claim(worker_id="here", queues=None, limit=BATCH, lease_seconds=60)
    assert len(jobs) == BATCH
    return jobs


def _assert_reads_the_batch_only(plan: dict[str, Any]) -> None:
    scans = list(plan_scans(plan))
    assert scans, plan
    for scan in scans:
        assert scan["Node Type"] != "Seq Scan", scans
        assert scan.get("Index Name") in (None, "workhorse_jobs_pkey"), scans
        read = scan["Actual Rows"] + scan.get("Rows Removed by Filter", 0)
        assert read * scan["Actual Loops"] <= 2 * BATCH, scans


@pytest.mark.parametrize("statistics", ["none", "fresh", "stale"])
async def test_bookkeeping_reads_its_own_leases_by_primary_key(
    pg: PostgresBackend, admin: psycopg.AsyncConnection[TupleRow], statistics: str
) -> None:
    table = f'"{pg.schema}".workhorse_jobs'
    if statistics == "stale":
        # Taken while nothing ran, as autovacuum may leave them before a burst of work.
        await admin.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
        await admin.execute(
            f"INSERT INTO {table} (task) SELECT 'quiet' FROM generate_series(1, 1000)"
        )
        await admin.execute(f"ANALYZE {table}")
    jobs = await _running(pg, admin)
    if statistics == "fresh":
        await admin.execute(f"ANALYZE {table}")
    ids = [job.id for job in jobs]
    tokens = [job.lease_token for job in jobs]
    outcomes = [
        Outcome(job_id=job.id, lease_token=job.lease_token, state=JobState.COMPLETED, ttl=60.0)
        for job in jobs
    ]
    statements: dict[str, dict[str, Any]] = {
        "complete_jobs": {"outcomes": outcomes_json(outcomes), "now": None},
        "heartbeat": {"ids": ids, "tokens": tokens, "lease_seconds": 60.0},
        "set_progress": {
            "ids": ids,
            "tokens": tokens,
            "progress": [0.5] * BATCH,
            "messages": ["halfway"] * BATCH,
        },
        "release_jobs": {"ids": ids, "tokens": tokens},
    }
    queries = Statements(pg.schema)
    for name, params in statements.items():
        statement = queries[name]
        for mode in PLAN_MODES:
            plan = await explain_as_run(pg, statement, params, PARAMETER_TYPES, mode=mode)
            _assert_reads_the_batch_only(plan)
    # And the statements still do their work: every outcome of the batch is applied.
    assert await pg.job_complete_many(outcomes) == [True] * BATCH
