"""Inserting jobs: initial state, stored fields, unique keys and atomic batches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from workhorse.backends.base import Backend, JobFilter
from workhorse.jobs import JobState

from ._support import (
    STORE_CLOCK,
    assert_time,
    at,
    claim_one,
    final_job,
    get,
    insert,
    insert_one,
    new_job,
)


async def test_insert_returns_one_row_per_job_in_order(backend: Backend, now: datetime) -> None:
    jobs = [new_job(f"task.{i}") for i in range(5)]
    inserted = await backend.job_insert_many(jobs, now=now)
    assert [row.created for row in inserted] == [True] * 5
    assert [row.state for row in inserted] == [JobState.QUEUED] * 5
    ids = [row.id for row in inserted]
    assert len(set(ids)) == 5
    assert ids == sorted(ids), "ids grow in insertion order"
    for i, job_id in enumerate(ids):
        assert (await get(backend, job_id)).task == f"task.{i}"


async def test_insert_a_large_batch(backend: Backend, now: datetime) -> None:
    rows = await backend.job_insert_many([new_job(args=f"[{i}]") for i in range(1000)], now=now)
    ids = [row.id for row in rows]
    assert ids == sorted(set(ids))
    assert await backend.job_count(filter=JobFilter()) == 1000
    assert (await get(backend, ids[737])).args == [737]


async def test_an_id_is_never_handed_out_again(backend: Backend, now: datetime) -> None:
    """Not even after the newest jobs were deleted, and whatever inserts next (one job,
    a batch longer than one statement, a job with a unique key): a client holding an old
    id can never read somebody else's job."""
    first = await insert_one(backend, now=now)
    newest = await final_job(backend, now=now, state=JobState.CANCELLED)
    assert await backend.job_delete(job_id=newest)
    alone = await insert_one(backend, now=now)
    assert alone > newest

    await backend.job_cancel(job_id=first)
    await backend.job_cancel(job_id=alone)
    assert await backend.job_purge(filter=JobFilter()) == 2  # the table is empty
    batch = await insert(backend, *(new_job() for _ in range(123)), now=now)
    assert batch[0] > alone
    assert batch == list(range(batch[0], batch[0] + 123)), "consecutive, in order"

    for job_id in batch:
        await backend.job_cancel(job_id=job_id)
    assert await backend.job_purge(filter=JobFilter()) == 123
    keyed = await insert_one(backend, now=now, unique_key="k")
    assert keyed > batch[-1]


async def test_insert_empty_batch(backend: Backend, now: datetime) -> None:
    assert await backend.job_insert_many([], now=now) == []
    assert await backend.job_count(filter=JobFilter()) == 0


async def test_insert_stores_every_field(backend: Backend, now: datetime) -> None:
    parent = await insert_one(backend, now=now)
    job_id = await insert_one(
        backend,
        now=now,
        task="mail.send",
        args='[1, "two", {"three": 3.5}, null, true]',
        kwargs='{"to": "a@example.com", "tags": ["x", "y"], "n": {"deep": [1]}}',
        queue="mail",
        priority=7,
        max_attempts=5,
        timeout=12.5,
        tenant="acme",
        labels={"team": "growth", "kind": "welcome"},
        unique_key="welcome:42",
        parent_id=parent,
        meta={"trace_id": "abc", "nested": {"n": 1, "l": [1, 2]}},
    )
    record = await get(backend, job_id)
    assert record.id == job_id
    assert record.task == "mail.send"
    assert record.args == [1, "two", {"three": 3.5}, None, True]
    assert record.kwargs == {"to": "a@example.com", "tags": ["x", "y"], "n": {"deep": [1]}}
    assert record.queue == "mail"
    assert record.state is JobState.QUEUED
    assert record.priority == 7
    assert record.max_attempts == 5
    assert record.attempt == 0
    assert record.timeout == 12.5
    assert record.tenant == "acme"
    assert record.labels == {"team": "growth", "kind": "welcome"}
    assert record.unique_key == "welcome:42"
    assert record.parent_id == parent
    assert record.meta == {"trace_id": "abc", "nested": {"n": 1, "l": [1, 2]}}
    assert_time(record.created_at, now)
    assert_time(record.run_at, now)
    assert record.progress == 0.0
    assert record.progress_message is None
    assert record.result is None
    assert record.error is None
    assert record.worker_id is None
    assert record.cancel_requested is False
    assert record.started_at is None
    assert record.finished_at is None
    assert record.expires_at is None
    assert record.lease_expires_at is None


async def test_insert_defaults(backend: Backend, now: datetime) -> None:
    record = await get(backend, await insert_one(backend, now=now))
    assert record.args == []
    assert record.kwargs == {}
    assert record.queue == "default"
    assert record.priority == 0
    assert record.max_attempts == 3
    assert record.timeout is None
    assert record.tenant is None
    assert record.labels == {}
    assert record.unique_key is None
    assert record.parent_id is None
    assert record.meta == {}


async def test_insert_without_now_uses_the_store_clock(backend: Backend) -> None:
    record = await get(backend, await insert_one(backend))
    assert record.state is JobState.QUEUED
    assert_time(record.created_at, datetime.now(UTC), STORE_CLOCK)
    assert_time(record.run_at, record.created_at)


async def test_insert_with_delay_is_scheduled(backend: Backend, now: datetime) -> None:
    (row,) = await backend.job_insert_many([new_job(delay=90)], now=now)
    assert row.state is JobState.SCHEDULED
    record = await get(backend, row.id)
    assert record.state is JobState.SCHEDULED
    assert_time(record.created_at, now)
    assert_time(record.run_at, at(now, 90))


async def test_insert_with_future_run_at_is_scheduled(backend: Backend, now: datetime) -> None:
    (row,) = await backend.job_insert_many([new_job(run_at=at(now, 3600))], now=now)
    assert row.state is JobState.SCHEDULED
    assert_time((await get(backend, row.id)).run_at, at(now, 3600))


async def test_insert_with_past_run_at_is_queued(backend: Backend, now: datetime) -> None:
    (row,) = await backend.job_insert_many([new_job(run_at=at(now, -60))], now=now)
    assert row.state is JobState.QUEUED
    record = await get(backend, row.id)
    assert record.state is JobState.QUEUED
    assert_time(record.run_at, at(now, -60))


async def test_run_at_takes_precedence_over_delay(backend: Backend, now: datetime) -> None:
    (row,) = await backend.job_insert_many([new_job(run_at=at(now, 30), delay=5000)], now=now)
    assert row.state is JobState.SCHEDULED
    assert_time((await get(backend, row.id)).run_at, at(now, 30))


async def test_run_at_in_another_timezone_is_stored_as_utc(backend: Backend, now: datetime) -> None:
    local = at(now, 120).astimezone(timezone(timedelta(hours=5, minutes=30)))
    (row,) = await backend.job_insert_many([new_job(run_at=local)], now=now)
    record = await get(backend, row.id)
    assert_time(record.run_at, at(now, 120))


async def test_unique_key_returns_the_live_job(backend: Backend, now: datetime) -> None:
    (first,) = await backend.job_insert_many([new_job(unique_key="k1")], now=now)
    (second,) = await backend.job_insert_many(
        [new_job(unique_key="k1", args="[2]")], now=at(now, 1)
    )
    assert first.created is True
    assert second.created is False
    assert second.id == first.id
    assert second.state is JobState.QUEUED
    assert await backend.job_count(filter=JobFilter()) == 1
    assert (await get(backend, first.id)).args == [], "the existing job is left as it was"


async def test_unique_key_reports_the_existing_state(backend: Backend, now: datetime) -> None:
    (first,) = await backend.job_insert_many([new_job(unique_key="k", delay=600)], now=now)
    (again,) = await backend.job_insert_many([new_job(unique_key="k")], now=now)
    assert (again.id, again.state, again.created) == (first.id, JobState.SCHEDULED, False)


async def test_unique_key_is_held_while_running(backend: Backend, now: datetime) -> None:
    (first,) = await backend.job_insert_many([new_job(unique_key="k")], now=now)
    await claim_one(backend, now=now)
    (again,) = await backend.job_insert_many([new_job(unique_key="k")], now=now)
    assert (again.id, again.state, again.created) == (first.id, JobState.RUNNING, False)


@pytest.mark.parametrize("final", [JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED])
async def test_unique_key_is_free_once_final(
    backend: Backend, now: datetime, final: JobState
) -> None:
    old = await final_job(backend, now=now, state=final, unique_key="k")
    (row,) = await backend.job_insert_many([new_job(unique_key="k")], now=at(now, 1))
    assert row.created is True
    assert row.id != old
    assert row.state is JobState.QUEUED
    (again,) = await backend.job_insert_many([new_job(unique_key="k")], now=at(now, 2))
    assert (again.id, again.created) == (row.id, False)


async def test_unique_key_within_one_batch(backend: Backend, now: datetime) -> None:
    rows = await backend.job_insert_many(
        [
            new_job(unique_key="a"),
            new_job(unique_key="b"),
            new_job(unique_key="a"),
            new_job(),
            new_job(),
        ],
        now=now,
    )
    assert [row.created for row in rows] == [True, True, False, True, True]
    assert rows[2].id == rows[0].id
    assert len({rows[0].id, rows[1].id, rows[3].id, rows[4].id}) == 4
    assert await backend.job_count(filter=JobFilter()) == 4


async def test_jobs_without_unique_key_never_collide(backend: Backend, now: datetime) -> None:
    ids = await insert(backend, new_job(), new_job(), new_job(), now=now)
    assert len(set(ids)) == 3


async def test_a_failing_batch_inserts_nothing(backend: Backend, now: datetime) -> None:
    good = new_job("good")
    bad = new_job("bad", args="this is not JSON")
    with pytest.raises(Exception):  # noqa: B017, PT011 - the error type is the store's own
        await backend.job_insert_many([good, bad], now=now)
    assert await backend.job_count(filter=JobFilter()) == 0
    (row,) = await backend.job_insert_many([good], now=now)
    assert row.created is True


async def test_a_single_job_with_arguments_that_are_not_json_is_refused(
    backend: Backend, now: datetime
) -> None:
    with pytest.raises(Exception):  # noqa: B017, PT011 - the error type is the store's own
        await backend.job_insert_many([new_job("bad", kwargs="{")], now=now)
    assert await backend.job_count(filter=JobFilter()) == 0
