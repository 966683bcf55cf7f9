"""Several processes on one file: no "database is locked" ever reaches them, no job is
claimed twice, and a job whose enqueue returned survives the process being killed."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest

from workhorse.backends.base import JobFilter
from workhorse.backends.sqlite import SQLiteBackend
from workhorse.jobs import JobState

from ._support import run_child


@pytest.mark.parametrize("busy_timeout", ["5", "0.001"], ids=["default", "tiny-busy-timeout"])
async def test_four_processes_share_one_file(
    store: SQLiteBackend, db_url: str, db_path: Path, tmp_path: Path, busy_timeout: str
) -> None:
    """A tiny busy_timeout makes SQLite give up on the lock at once, so the backend's own
    retries carry the load."""
    processes, per_process = 4, 2500
    total = processes * per_process
    url = f"{db_url}?synchronous=normal&busy_timeout={busy_timeout}"
    outs = [tmp_path / f"child-{i}.json" for i in range(processes)]
    results = await asyncio.gather(
        *(
            run_child("stress", url, f"p{i}", str(per_process), str(total), str(out))
            for i, out in enumerate(outs)
        )
    )
    for code, _, stderr in results:
        assert code == 0, stderr
        assert "locked" not in stderr
        assert "Traceback" not in stderr
    reports = [json.loads(out.read_text()) for out in outs]
    assert [report["inserted"] for report in reports] == [per_process] * processes
    claimed = [job_id for report in reports for job_id in report["claimed"]]
    assert len(claimed) == len(set(claimed)) == total, "a job was claimed twice"

    assert await store.job_count(filter=JobFilter(states=(JobState.COMPLETED,))) == total
    assert await store.job_count(filter=JobFilter()) == total
    conn = sqlite3.connect(db_path)
    try:
        ids = {row[0] for row in conn.execute("SELECT id FROM workhorse_jobs")}
        (reruns,) = conn.execute(
            "SELECT count(*) FROM workhorse_jobs WHERE attempt != 1"
        ).fetchone()
    finally:
        conn.close()
    assert ids == set(claimed)
    assert reruns == 0


async def test_a_job_from_another_process_is_visible(store: SQLiteBackend, db_url: str) -> None:
    code, stdout, stderr = await run_child("insert", db_url, "3")
    assert code == 0, stderr
    for job_id in json.loads(stdout):
        record = await store.job_get(job_id=job_id)
        assert record is not None
        assert record.task == "child.insert"


@pytest.mark.parametrize("synchronous", ["full", "normal"])
async def test_an_enqueued_job_survives_a_killed_process(
    store: SQLiteBackend, db_url: str, synchronous: str
) -> None:
    code, stdout, _ = await run_child("insert-and-die", f"{db_url}?synchronous={synchronous}")
    assert code == -9, "the child should have been killed"
    job_id = int(stdout)
    record = await store.job_get(job_id=job_id)
    assert record is not None
    assert record.state is JobState.QUEUED
