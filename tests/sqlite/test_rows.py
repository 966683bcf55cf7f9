"""What the store reads back: rows in insertion order across multi-row inserts, and rows
whose JSON was corrupted behind the store's back (named, never breaking a listing)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import pytest

from workhorse.backends.base import JobFilter, NewJob, Outcome
from workhorse.backends.sqlite import SQLiteBackend
from workhorse.errors import CorruptJobError
from workhorse.jobs import JobState


async def test_a_large_mixed_batch_keeps_its_order(store: SQLiteBackend) -> None:
    jobs = (
        [NewJob(task=f"plain.{i}") for i in range(120)]
        + [NewJob(task="unique.a", unique_key="a")]
        + [NewJob(task=f"plain.{i}") for i in range(120, 173)]
        + [NewJob(task="unique.a-again", unique_key="a")]
        + [NewJob(task=f"plain.{i}") for i in range(173, 180)]
    )
    rows = await store.job_insert_many(jobs)
    assert [row.created for row in rows] == [True] * 174 + [False] + [True] * 7
    assert rows[174].id == rows[120].id
    created = [row.id for row in rows if row.created]
    assert created == sorted(created)
    assert len(set(created)) == len(created)
    for job, row in zip(jobs, rows, strict=True):
        if row.created:
            record = await store.job_get(job_id=row.id)
            assert record is not None
            assert record.task == job.task


async def test_ids_are_never_reused(store: SQLiteBackend) -> None:
    (row,) = await store.job_insert_many([NewJob(task="t")])
    await store.job_cancel(job_id=row.id)
    assert await store.job_delete(job_id=row.id)
    (again,) = await store.job_insert_many([NewJob(task="t")])
    assert again.id > row.id


async def test_corrupted_json_is_named_left_out_of_listings_and_still_claimed(
    store: SQLiteBackend, raw: sqlite3.Connection
) -> None:
    now = datetime.now(UTC)
    rows = await store.job_insert_many(
        [NewJob(task="broken", args="[1]", kwargs='{"a": 1}'), NewJob(task="fine")], now=now
    )
    (claimed,) = await store.job_claim(
        worker_id="w", queues=None, limit=1, lease_seconds=30, now=now
    )
    done = Outcome(
        job_id=claimed.id,
        lease_token=claimed.lease_token,
        state=JobState.COMPLETED,
        result='{"ok": true}',
    )
    assert await store.job_complete_many([done], now=now) == [True]
    broken = rows[0].id
    # Written by hand, as a damaged disk or an old bug might have left it.
    raw.execute("PRAGMA ignore_check_constraints = ON")
    raw.execute(
        "UPDATE workhorse_jobs SET args = '[1, 2', kwargs = '{\"a\":', result = 'not json' "
        "WHERE id = ?",
        (broken,),
    )
    with pytest.raises(CorruptJobError, match=f"job {broken} is corrupt: column 'args'"):
        await store.job_get(job_id=broken)
    listed = await store.job_list(filter=JobFilter())
    assert [job.id for job in listed] == [rows[1].id]

    raw.execute(
        "UPDATE workhorse_jobs SET args = '{{{', state = 'queued' WHERE id = ?", (rows[1].id,)
    )
    # The claim hands the arguments over as text: the worker fails the job naming them.
    (again,) = await store.job_claim(worker_id="w", queues=None, limit=1, lease_seconds=30, now=now)
    assert (again.id, again.args, again.corrupt) == (rows[1].id, "{{{", None)
