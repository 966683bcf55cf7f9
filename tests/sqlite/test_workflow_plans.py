"""The queries of workflows and unique keys use their indexes: finding a key's holder
reads the unique index, and a job's dependencies, dependents and a workflow's parts are
index lookups, never a scan of the job table."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from workhorse.backends.sqlite import SQLiteBackend
from workhorse.backends.sqlite.statements import QUERIES


def _plan(conn: sqlite3.Connection, sql: str, params: dict[str, Any]) -> list[str]:
    return [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]


@pytest.mark.parametrize(
    ("query", "params", "expected"),
    [
        ("job_unique_holder", {"unique_key": "k"}, "USING INDEX workhorse_jobs_unique_key_idx"),
        ("job_dependencies", {"job_id": 1}, "USING PRIMARY KEY (job_id=?)"),
        ("workflow_parts", {"workflow_id": 1}, "USING INDEX workhorse_jobs_workflow_idx"),
        ("workflow_edges", {"workflow_id": 1}, "workhorse_jobs_workflow_idx"),
    ],
)
async def test_workflow_and_unique_queries_use_their_indexes(
    store: SQLiteBackend, raw: sqlite3.Connection, query: str, params: dict[str, Any], expected: str
) -> None:
    plan = _plan(raw, QUERIES[query], params)
    assert any(expected in step for step in plan), plan
    assert not any(step.startswith("SCAN") for step in plan), plan


async def test_the_dependents_of_a_job_are_an_index_lookup(
    store: SQLiteBackend, raw: sqlite3.Connection
) -> None:
    plan = _plan(raw, "SELECT job_id FROM workhorse_job_deps WHERE depends_on_id = :id", {"id": 1})
    assert any("workhorse_job_deps_depends_on_idx (depends_on_id=?)" in step for step in plan)
