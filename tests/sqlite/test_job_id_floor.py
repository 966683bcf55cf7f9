"""Migration 8 moves the jobs to a table without AUTOINCREMENT (which wrote a page of
sqlite_sequence per enqueue): every job, index and trigger comes through, and no id
handed out before the upgrade is handed out again after it."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from workhorse.backends.base import NewJob
from workhorse.backends.sqlite import SQLiteBackend
from workhorse.backends.sqlite.schema import apply_pending

BEFORE = 7
"""The last schema version whose jobs table had AUTOINCREMENT."""


def _old_store(path: Path) -> None:
    """A store at version 7 holding jobs 1 and 2 of the three it handed out (the newest
    was deleted); job 2 waits for job 1."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA foreign_keys = ON")  # as every workhorse connection has it
        apply_pending(conn, until=BEFORE)
        for task, state in (("first", "queued"), ("second", "blocked"), ("third", "queued")):
            conn.execute(
                "INSERT INTO workhorse_jobs (task, state, run_at, created_at, has_dependents)"
                " VALUES (?, ?, 1.5, 1.5, ?)",
                (task, state, int(task == "first")),
            )
        conn.execute(
            "INSERT INTO workhorse_job_deps (job_id, depends_on_id, ordinal) VALUES (2, 1, 0)"
        )
        conn.execute("DELETE FROM workhorse_jobs WHERE task = 'third'")
    finally:
        conn.close()


def _read(path: Path, sql: str) -> list[Any]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _jobs(path: Path) -> list[Any]:
    return _read(path, "SELECT * FROM workhorse_jobs ORDER BY id")


def _schema_of_jobs(path: Path) -> dict[str, str]:
    """Each index and trigger of the jobs table: name -> SQL."""
    rows = _read(
        path,
        "SELECT name, sql FROM sqlite_master"
        " WHERE tbl_name = 'workhorse_jobs' AND type IN ('index', 'trigger')",
    )
    return dict(rows)


async def test_the_upgrade_keeps_every_job_index_and_trigger_and_every_id_retired(
    tmp_path: Path,
) -> None:
    path = tmp_path / "jobs.db"
    _old_store(path)
    jobs, schema = _jobs(path), _schema_of_jobs(path)

    store = SQLiteBackend(f"sqlite:///{path}")
    await store.connect()
    try:
        assert await store.migrate() == ["0008_job_id_floor"]
        assert _jobs(path) == jobs
        upgraded = _schema_of_jobs(path)
        assert upgraded.pop("workhorse_jobs_raise_id_floor")  # new: keeps the floor
        webhook = upgraded.pop("workhorse_jobs_webhook")  # its insert takes the next id
        without_id = webhook.replace("(SELECT id FROM workhorse_next_job_id),", "")
        without_id = without_id.replace("id, task,", "task,", 1)
        assert without_id.split() == schema.pop("workhorse_jobs_webhook").split()
        assert upgraded == schema
        (table,) = _read(path, "SELECT sql FROM sqlite_master WHERE name = 'workhorse_jobs'")
        assert "AUTOINCREMENT" not in table[0]

        (job,) = await store.job_insert_many([NewJob(task="after")])
        assert job.id == 4, "job 3 was handed out before the upgrade"
        # The triggers still work: job 1 cancelled, job 2, which waited for it, fails.
        assert (await store.job_cancel(job_id=1)) is not None
        second = await store.job_get(job_id=2)
        assert second is not None
        assert second.state == "failed"
        assert second.error is not None
        assert second.error.type == "DependencyFailedError"
    finally:
        await store.close()
