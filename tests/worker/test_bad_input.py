"""Bad input never stops a worker: a corrupted row, an unknown task, a result that is not
JSON each fail their job with a clear error, and the worker carries on."""

from __future__ import annotations

import logging
import sqlite3

import pytest

from workhorse import JobState, Workhorse
from workhorse.backends.base import NewJob
from workhorse.errors import SerializationError
from workhorse.serialization import NUL_REPLACEMENT

from ._support import job_in_state


async def test_a_corrupted_row_fails_that_job_and_the_worker_carries_on(
    sqlite_app: Workhorse, caplog: pytest.LogCaptureFixture
) -> None:
    app = sqlite_app

    @app.task(retry=5)
    async def echo(value: int) -> int:
        return value

    bad = await echo.enqueue(1)
    shape = await echo.enqueue(2)
    path = app.url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        # A torn write would bypass the json_valid CHECK; so does this pragma.
        conn.execute("PRAGMA ignore_check_constraints = ON")
        conn.execute("UPDATE workhorse_jobs SET args = '[1, tru' WHERE id = ?", (bad.id,))
        conn.execute("UPDATE workhorse_jobs SET args = '{\"a\": 1}' WHERE id = ?", (shape.id,))
    conn.close()
    with caplog.at_level(logging.ERROR, logger="workhorse.worker"):
        async with app.worker():
            good = await echo.enqueue(3)
            assert await good.result(timeout=10) == 3
            records = [await job_in_state(app, job.id, JobState.FAILED) for job in (bad, shape)]
    for record in records:
        assert record.attempt == 1, "a corrupted row is not retried"
        assert record.error is not None
        assert record.error.type == "CorruptJobError"
    logged = [r.getMessage() for r in caplog.records if f"job {bad.id}:" in r.getMessage()]
    assert len(logged) == 1, logged


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
