"""The hot queries use their indexes: a claim walks a claim index in order and stops, and
neither a claim nor the probe before it steps over jobs that are not due. These guard
the drain rate and the cost of an idle worker."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import pytest

from workhorse.backends.base import JobFilter
from workhorse.backends.sqlite import SQLiteBackend
from workhorse.backends.sqlite.statements import QUERIES, claim_sql, due_query, job_filter

# How SQLite may touch workhorse_jobs in these queries; anything else (a full scan, an
# unrelated index) fails the test.
ALLOWED = (
    "USING INTEGER PRIMARY KEY",
    "USING INDEX workhorse_jobs_claim_idx",
    "USING INDEX workhorse_jobs_claim_queue_idx (queue=?)",
    "USING COVERING INDEX workhorse_jobs_scheduled_idx (run_at<?)",
)
PARAMS: dict[str, Any] = {"now": 0.0, "limit": 10, "worker_id": "w", "lease_seconds": 30.0}


def _plan(conn: sqlite3.Connection, sql: str, params: dict[str, Any]) -> list[str]:
    return [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]


def _table_accesses(plan: list[str]) -> list[str]:
    return [step for step in plan if " workhorse_jobs " in f"{step} "]


@pytest.mark.parametrize(
    ("queues", "job_ids"),
    [(None, None), (["a"], None), (["a", "b", "c"], None), (None, [1, 2]), (["a", "b"], [3])],
)
async def test_claims_use_their_indexes(
    store: SQLiteBackend,
    raw: sqlite3.Connection,
    queues: Sequence[str] | None,
    job_ids: Sequence[int] | None,
) -> None:
    due, params = due_query(queues, job_ids)
    for sql in (due, claim_sql(due)):
        accesses = _table_accesses(_plan(raw, sql, {**PARAMS, **params}))
        assert accesses
        for step in accesses:
            assert any(allowed in step for allowed in ALLOWED), step


async def test_one_queue_and_every_queue_need_no_sort_of_queued_jobs(
    store: SQLiteBackend, raw: sqlite3.Connection
) -> None:
    for queues in (None, ["a"]):
        due, params = due_query(queues, None)
        plan = _plan(raw, due, {**PARAMS, **params})
        walk = next(i for i, step in enumerate(plan) if "workhorse_jobs_claim" in step)
        # The step after the index walk feeds the union; no sort sits in between.
        assert "TEMP B-TREE" not in plan[walk + 1], plan


@pytest.mark.parametrize(
    ("probe", "index"),
    [
        ("job_expired_probe", "workhorse_jobs_lease_idx"),
        ("job_promote_probe", "workhorse_jobs_scheduled_idx"),
        ("job_prune_probe", "workhorse_jobs_expires_idx"),
        ("job_prune", "workhorse_jobs_expires_idx"),
        ("job_promote_scheduled", "workhorse_jobs_scheduled_idx"),
    ],
)
async def test_maintenance_reads_by_index(
    store: SQLiteBackend, raw: sqlite3.Connection, probe: str, index: str
) -> None:
    plan = _plan(raw, QUERIES[probe], PARAMS)
    assert any(index in step for step in plan), plan
    assert not any(step.startswith("SCAN workhorse_jobs") for step in plan), plan


@pytest.mark.parametrize(
    ("flt", "index"),
    [
        (JobFilter(tenant="acme"), "workhorse_jobs_tenant_idx"),
        (JobFilter(parent_id=7), "workhorse_jobs_parent_idx"),
        (JobFilter(), "INTEGER PRIMARY KEY"),
    ],
)
async def test_listings_use_their_indexes(
    store: SQLiteBackend, raw: sqlite3.Connection, flt: JobFilter, index: str
) -> None:
    sql, params = job_filter("job_list", flt, before_id=100)
    plan = _plan(raw, sql, {**params, "limit": 50})
    assert any(index in step for step in plan), plan


@pytest.mark.parametrize(
    "query", ["stats_totals", "stats_timeline", "stats_prune_probe", "stats_prune"]
)
async def test_job_statistics_read_a_range_of_minutes(
    store: SQLiteBackend, raw: sqlite3.Connection, query: str
) -> None:
    # Per-minute rows pile up between prunes: totals, a throughput window and pruning
    # each read their minutes off the primary key, never the whole table.
    plan = _plan(raw, QUERIES[query], {"since": 0, "before": 0, "tenant": None})
    assert any("workhorse_job_counts USING PRIMARY KEY (minute" in step for step in plan), plan
    assert not any(step.startswith("SCAN workhorse_job_counts") for step in plan), plan
