"""Claims under concurrency, and claims that stay index-driven however many finished or
future jobs the table holds."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from psycopg.rows import TupleRow

from workhorse.backends.base import NewJob, Outcome
from workhorse.backends.postgres import PostgresBackend
from workhorse.backends.postgres.statements import Statements
from workhorse.jobs import JobState

from ._support import explain_as_run, plan_scans

CLAIM_PARAMETER_TYPES = {
    "queues": "text[]",
    "worker_id": "text",
    "limit": "bigint",
    "lease_seconds": "double precision",
    "now": "timestamptz",
    "claim": "text",
}


async def test_claim_across_queues_follows_the_global_order(pg: PostgresBackend) -> None:
    specs = [("a", 1), ("b", 9), ("c", 50), ("a", 7), ("b", 2), ("a", 3)]
    rows = await pg.job_insert_many([NewJob(task=f"{q}{p}", queue=q, priority=p) for q, p in specs])
    by_id = {row.id: f"{q}{p}" for row, (q, p) in zip(rows, specs, strict=True)}
    claimed = await pg.job_claim(worker_id="w", queues=["a", "b", "a"], limit=3, lease_seconds=30)
    assert [by_id[job.id] for job in claimed] == ["b9", "a7", "a3"]
    rest = await pg.job_claim(worker_id="w", queues=["b", "a"], limit=10, lease_seconds=30)
    assert [by_id[job.id] for job in rest] == ["b2", "a1"]


async def test_claims_read_few_index_entries(
    pg: PostgresBackend, admin: psycopg.AsyncConnection[TupleRow]
) -> None:
    done = await pg.job_insert_many([NewJob(task="old", queue=f"q{i % 4}") for i in range(5000)])
    await pg.job_insert_many(
        [NewJob(task="later", queue="q1", priority=9, delay=3600) for _ in range(2000)]
    )
    await admin.execute(
        f"UPDATE \"{pg.schema}\".workhorse_jobs SET state = 'completed' WHERE id <= %s",
        [done[-1].id],
    )
    await pg.job_insert_many([NewJob(task="new", queue="q1") for _ in range(10)])
    await admin.execute(f'ANALYZE "{pg.schema}".workhorse_jobs')
    sql = Statements(pg.schema)
    params: dict[str, Any] = {
        "worker_id": "w",
        "limit": 5,
        "lease_seconds": 30.0,
        "now": None,
        "claim": "c",
    }
    plans = [
        (
            {**params, "queues": ["q1", "q2"]},
            ("workhorse_jobs_claim_queue", "workhorse_jobs_scheduled_queue"),
        ),
        (params, ("workhorse_jobs_claim_any", "workhorse_jobs_scheduled")),
    ]
    for values, indexes in plans:
        query = "EXPLAIN (ANALYZE, FORMAT JSON) " + sql.picking(
            "claim_jobs", queues=values.get("queues"), limit=5, pick=["pick_waiting"]
        )
        async with admin.transaction(force_rollback=True):
            row = await (await admin.execute(query, values)).fetchone()
        assert row is not None
        scans = list(plan_scans(row[0][0]["Plan"]))
        assert {scan.get("Index Name") for scan in scans} >= set(indexes), scans
        for scan in scans:
            assert scan["Node Type"] != "Seq Scan", scans
            assert scan["Actual Rows"] * scan["Actual Loops"] <= 10, scans


async def test_many_claimers_take_every_job_once(pg: PostgresBackend) -> None:
    await pg.job_insert_many([NewJob(task="t", queue=f"q{i % 3}") for i in range(1200)])
    stores = [PostgresBackend(pg.url) for _ in range(3)]
    await asyncio.gather(*(store.connect() for store in stores))
    queue_sets: list[list[str] | None] = [None, ["q0"], ["q1", "q2"], ["q2", "q0"]]

    async def drain(store: PostgresBackend, queues: list[str] | None, n: int) -> list[int]:
        taken: list[int] = []
        while batch := await store.job_claim(
            worker_id=f"w{n}", queues=queues, limit=7, lease_seconds=60
        ):
            taken.extend(job.id for job in batch)
            outcomes = [Outcome(job.id, job.lease_token, JobState.COMPLETED) for job in batch]
            assert all(await store.job_complete_many(outcomes, now=datetime.now(UTC)))
        return taken

    pairs = [(store, queues) for store in stores for queues in queue_sets]
    try:
        batches = await asyncio.gather(
            *(drain(store, queues, n) for n, (store, queues) in enumerate(pairs))
        )
    finally:
        await asyncio.gather(*(store.close() for store in stores))
    claimed = [job_id for batch in batches for job_id in batch]
    assert len(claimed) == len(set(claimed)) == 1200


async def test_a_claim_reads_few_rows_before_the_table_is_analyzed(pg: PostgresBackend) -> None:
    # A burst of enqueues into a store that has no statistics yet (as after a first
    # migration): claims must still walk the claim index in order, not sort every job.
    await pg.job_insert_many([NewJob(task="burst") for _ in range(5000)])
    query = "EXPLAIN (ANALYZE, FORMAT JSON) " + Statements(pg.schema).picking(
        "claim_jobs", queues=None, limit=16, pick=["pick_waiting"]
    )
    params = {"worker_id": "w", "limit": 16, "lease_seconds": 30.0, "now": None, "claim": "c"}

    async def explain(conn: psycopg.AsyncConnection[Any]) -> Any:
        async with conn.transaction(force_rollback=True):
            row = await (await conn.execute(query, params)).fetchone()
        assert row is not None
        return row[0][0]["Plan"]

    plan = await pg._pool.run(explain, idempotent=True)  # a connection of the store's own
    scans = list(plan_scans(plan))
    assert {scan.get("Index Name") for scan in scans} >= {"workhorse_jobs_claim_any"}, scans
    for scan in scans:
        assert scan["Actual Rows"] * scan["Actual Loops"] <= 16, scans


@pytest.mark.parametrize("queues", [None, ["default", "other"]])
async def test_a_claim_keeps_one_plan_once_the_table_is_analyzed(
    pg: PostgresBackend, admin: psycopg.AsyncConnection[TupleRow], queues: list[str] | None
) -> None:
    # Once autovacuum has analyzed the table, the server weighs the plan it keeps for the
    # prepared claim against one made for each call's parameters: the kept one must win
    # (else every claim is planned again, 0.3 ms each) and must read few rows.
    await pg.job_insert_many([NewJob(task="waiting") for _ in range(5000)])
    await admin.execute(f'ANALYZE "{pg.schema}".workhorse_jobs')
    sql = Statements(pg.schema)
    query = sql.picking("claim_jobs", queues=queues, limit=16, pick=["pick_waiting"])
    params = {
        "worker_id": "w",
        "limit": 16,
        "lease_seconds": 30.0,
        "now": None,
        "claim": "c",
        "queues": queues,
    }
    plan = await explain_as_run(pg, query, params, CLAIM_PARAMETER_TYPES, mode="force_generic_plan")
    for scan in plan_scans(plan):
        assert scan["Node Type"] != "Seq Scan", scan
        assert scan["Actual Rows"] * scan["Actual Loops"] <= 2 * 16 * len(queues or [0]), scan

    store = PostgresBackend(pg.url, min_size=1, max_size=1)  # one session: its plans
    await store.connect()
    try:
        for _ in range(15):  # prepared after 5 runs; kept plan weighed after 5 more
            claimed = await store.job_claim(
                worker_id="w", queues=queues, limit=16, lease_seconds=30
            )
            assert len(claimed) == 16

        async def prepared(conn: psycopg.AsyncConnection[Any]) -> Any:
            cur = await conn.execute(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
                " WHERE statement LIKE '%%SKIP LOCKED%%'"
            )
            return await cur.fetchall()

        plans = await store._pool.run(prepared, idempotent=True)
    finally:
        await store.close()
    assert len(plans) == 1, plans
    generic, custom = plans[0]
    assert generic >= 4, (generic, custom)
