"""Bad input never stops a worker: a corrupted row, an unknown task, a result that is not
JSON each fail their job with a clear error, and the worker carries on."""

from __future__ import annotations

import logging
import sqlite3

import pytest

from workhorse import JobState, Workhorse
from workhorse.backends.base import NewJob
from workhorse.errors import CorruptJobError, SerializationError
from workhorse.serialization import NUL_REPLACEMENT

from ._support import eventually, job_in_state


def stored(path: str, job_id: int) -> tuple[str, int, str | None, str | None]:
    """The state, attempt and error of a job, read with SQL (``get_job`` refuses a
    corrupt row)."""
    with sqlite3.connect(path) as conn:
        row = conn.execute(
            "SELECT state, attempt, error_type, error_message FROM workhorse_jobs WHERE id = ?",
            (job_id,),
        ).fetchone()
    conn.close()
    assert row is not None
    return row[0], row[1], row[2], row[3]


async def read(path: str, job_id: int) -> tuple[str, int, str | None, str | None]:
    return stored(path, job_id)


# One bad value per kind of column: JSON text, JSON of the wrong shape, integer, time,
# number, text.
CORRUPTIONS = [
    ("args", "[1, tru"),
    ("kwargs", "[]"),
    ("priority", "high"),
    ("max_attempts", "three"),
    ("run_at", "abc"),
    ("timeout", "x"),
    ("meta", "{bad"),
    ("queue", b"\xff"),
]


@pytest.mark.parametrize(("column", "value"), CORRUPTIONS, ids=[c for c, _ in CORRUPTIONS])
async def test_a_corrupted_column_fails_that_job_at_once_and_its_claim_runs(
    sqlite_app: Workhorse, caplog: pytest.LogCaptureFixture, column: str, value: object
) -> None:
    app = sqlite_app

    @app.task(retry=5)
    async def echo(value: int) -> int:
        return value

    jobs = [await echo.enqueue(n) for n in range(4)]
    bad = jobs[1]
    path = app.url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        # A torn write would bypass the CHECK constraints; so does this pragma.
        conn.execute("PRAGMA ignore_check_constraints = ON")
        conn.execute(f"UPDATE workhorse_jobs SET {column} = ? WHERE id = ?", (value, bad.id))
    conn.close()
    with caplog.at_level(logging.ERROR, logger="workhorse.worker"):
        async with app.worker(concurrency=4):  # one claim takes all four
            for job in jobs:
                if job is not bad:
                    assert await job.result(timeout=10) == jobs.index(job)
            _, attempt, error_type, message = await eventually(
                lambda: read(path, bad.id), lambda row: row[0] == "failed"
            )
    assert attempt == 1, "a corrupted row is not retried"
    assert error_type == "CorruptJobError"
    assert message is not None
    assert repr(column) in message
    for job in jobs:
        if job is not bad:
            record = await job.refresh()
            assert (record.state, record.attempt) == (JobState.COMPLETED, 1)
    logged = [r.getMessage() for r in caplog.records if f"job {bad.id} " in r.getMessage()]
    assert len(logged) == 1, logged
    assert repr(column) in logged[0]
    # Reading it names the job and the column; listings leave it out.
    with pytest.raises(CorruptJobError, match=rf"job {bad.id} is corrupt: column '{column}'"):
        await app.get_job(bad.id)
    assert [record.id for record in await app.list_jobs()] == [
        job.id for job in reversed(jobs) if job is not bad
    ]


async def test_an_unknown_task_fails_with_its_name(app: Workhorse) -> None:
    @app.task
    async def known() -> str:
        return "ok"

    store = await app.backend()
    (row,) = await store.job_insert_many([NewJob(task="billing.gone", max_attempts=3)])
    async with app.worker():
        record = await job_in_state(app, row.id, JobState.FAILED)
        assert await (await known.enqueue()).result(timeout=10) == "ok"
    assert record.attempt == 1
    assert record.error is not None
    assert record.error.type == "UnknownTaskError"
    assert "billing.gone" in record.error.message


async def test_a_result_that_is_not_json_fails_without_retry(local_app: Workhorse) -> None:
    app = local_app

    @app.task(retry=3)
    async def returns_a_set() -> object:
        return {1, 2}

    async with app.worker():
        job = await returns_a_set.enqueue()
        record = await job_in_state(app, job.id, JobState.FAILED)
    assert record.attempt == 1
    assert record.error is not None
    assert record.error.type == "SerializationError"
    assert "returns_a_set" in record.error.message


async def test_arguments_holding_a_nul_character_are_refused_at_enqueue(app: Workhorse) -> None:
    @app.task
    async def echo(text: str) -> str:
        return text

    with pytest.raises(SerializationError, match="NUL character"):
        await echo.enqueue("before\x00after")
    with pytest.raises(SerializationError, match="NUL character"):
        await echo.options(labels={"note": "\x00"}).enqueue("fine")
    assert await app.list_jobs() == [], "nothing was stored"


async def test_a_result_holding_a_nul_character_fails_without_retry(app: Workhorse) -> None:
    @app.task(retry=3)
    async def binary() -> str:
        return "raw\x00bytes"

    @app.task
    async def fine() -> str:
        return "ok"

    async with app.worker():
        job = await binary.enqueue()
        record = await job_in_state(app, job.id, JobState.FAILED)
        assert await (await fine.enqueue()).result(timeout=10) == "ok"
    assert record.attempt == 1
    assert record.error is not None
    assert record.error.type == "SerializationError"
    assert "NUL character" in record.error.message


async def test_an_error_holding_a_nul_character_is_stored_with_it_replaced(
    app: Workhorse,
) -> None:
    @app.task(retry=1)
    async def boom() -> None:
        raise ValueError("boom\x00")

    @app.task
    async def fine() -> str:
        return "ok"

    async with app.worker() as worker:
        job = await boom.enqueue()
        record = await job_in_state(app, job.id, JobState.FAILED)
        # The outcomes after it are stored too: nothing jams the worker's completions.
        assert await (await fine.enqueue()).result(timeout=10) == "ok"
    assert record.error is not None
    assert record.error.type == "ValueError"
    assert record.error.message == f"boom{NUL_REPLACEMENT}"
    assert record.error.traceback is not None
    assert "\x00" not in record.error.traceback
    assert worker.stats.failed == 1
