"""Corrupted rows: a column whose value is not of its kind (SQLite's loose typing lets
anything in; so does an operator's UPDATE, and a jsonb column takes any JSON) breaks
neither a claim nor a listing. A claim hands such a job out marked ``corrupt`` (naming
the column) under a lease, so that the worker can fail it, and claims the rest as
usual; a listing leaves it out with a WARNING; reading it raises ``CorruptJobError``.

``memory://`` holds typed values: nothing there can be corrupted, so these run on the
SQL stores, each with the corruptions its column types let in."""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from datetime import datetime

import psycopg
import pytest

from workhorse.backends.base import Backend, JobFilter, Outcome
from workhorse.backends.postgres import PostgresBackend
from workhorse.backends.sqlite import SQLiteBackend
from workhorse.errors import CorruptJobError
from workhorse.jobs import JobError, JobState

from ._support import at, claim, insert, new_job


@dataclass(frozen=True)
class Corruption:
    """A bad value for one column: as SQLite takes it, and as PostgreSQL does (an SQL
    literal; None where its types make the corruption impossible)."""

    column: str
    sqlite: object
    postgres: str | None = None


CLAIM_CORRUPTIONS = [
    Corruption("priority", "high"),
    Corruption("run_at", "abc"),
    Corruption("max_attempts", "three"),
    Corruption("meta", "{bad", "'[1, 2]'::jsonb"),
    Corruption("timeout", "x", "'NaN'::double precision"),
    Corruption("tenant", b"\xffacme"),  # a BLOB: TEXT affinity would turn a number to text
]
READ_CORRUPTIONS = [
    *CLAIM_CORRUPTIONS,
    Corruption("state", "weird"),
    Corruption("args", "[1, tru", "'{\"a\": 1}'::jsonb"),
    Corruption("created_at", "yesterday", None),
]


def cases(corruptions: list[Corruption]) -> list[object]:
    """``(backend_kind, corruption)`` for each store that can hold each corruption."""
    return [
        pytest.param(kind, corruption, id=f"{kind}-{corruption.column}")
        for kind in ("sqlite", "postgres")
        for corruption in corruptions
        if kind == "sqlite" or corruption.postgres is not None
    ]


def corrupt(backend: Backend, job_id: int, corruption: Corruption) -> None:
    """Write the bad value behind the backend's back."""
    column = corruption.column
    if isinstance(backend, SQLiteBackend):
        with sqlite3.connect(backend.settings.path) as conn:
            conn.execute("PRAGMA ignore_check_constraints = ON")  # as a torn write would
            conn.execute(
                f"UPDATE workhorse_jobs SET {column} = ? WHERE id = ?",
                (corruption.sqlite, job_id),
            )
        conn.close()
        return
    assert isinstance(backend, PostgresBackend)
    if corruption.postgres is not None:
        conninfo = backend.url.split("?")[0]
        with psycopg.connect(conninfo, autocommit=True) as pg:
            pg.execute(
                f'UPDATE "{backend.schema}".workhorse_jobs SET {column} = '
                f"{corruption.postgres} WHERE id = %s",
                [job_id],
            )
        return
    raise AssertionError(f"PostgreSQL cannot hold a corrupted {column}")


@pytest.mark.parametrize(
    ("backend_kind", "corruption"), cases(CLAIM_CORRUPTIONS), indirect=["backend_kind"]
)
async def test_a_claim_marks_a_corrupt_row_and_claims_the_rest(
    backend: Backend, now: datetime, corruption: Corruption
) -> None:
    first, bad, last = await insert(backend, new_job(), new_job(), new_job(), now=now)
    corrupt(backend, bad, corruption)
    claimed = await claim(backend, now=at(now, 1))
    assert sorted(job.id for job in claimed) == [first, bad, last]
    [marked] = [job for job in claimed if job.id == bad]
    assert marked.corrupt is not None
    assert repr(corruption.column) in marked.corrupt
    assert all(job.corrupt is None for job in claimed if job.id != bad)
    assert [job.id for job in claimed if job.id != bad] == [first, last], "claim order kept"
    # Held under a lease like any claimed job: the worker's failure is fenced by it.
    failure = Outcome(
        job_id=bad,
        lease_token=marked.lease_token,
        state=JobState.FAILED,
        error=JobError(type="CorruptJobError", message=marked.corrupt),
    )
    assert await backend.job_complete_many([failure], now=at(now, 2)) == [True]
    assert await backend.job_count(filter=JobFilter(states=(JobState.FAILED,))) == 1


@pytest.mark.parametrize(
    ("backend_kind", "corruption"), cases(READ_CORRUPTIONS), indirect=["backend_kind"]
)
async def test_reads_name_a_corrupt_row_and_listings_leave_it_out(
    backend: Backend, now: datetime, corruption: Corruption, caplog: pytest.LogCaptureFixture
) -> None:
    ids = await insert(backend, *(new_job() for _ in range(4)), now=now)
    bad = ids[2]
    corrupt(backend, bad, corruption)
    with pytest.raises(
        CorruptJobError, match=rf"job {bad} is corrupt: column '{corruption.column}'"
    ):
        await backend.job_get(job_id=bad)
    with caplog.at_level(logging.WARNING, logger="workhorse.backends"):
        everything = await backend.job_list(filter=JobFilter())
        # A page whose rows include the corrupt one is filled from further on.
        page = await backend.job_list(filter=JobFilter(), limit=2)
    assert [record.id for record in everything] == [ids[3], ids[1], ids[0]]
    assert [record.id for record in page] == [ids[3], ids[1]]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings
    assert all(f"job {bad} is corrupt" in message for message in warnings)
    assert await backend.job_count(filter=JobFilter()) == 4, "counted all the same"
    stats = await backend.queue_stats()
    assert sum(stats[0].counts.values()) in (3, 4)  # a corrupt state is not one of them
