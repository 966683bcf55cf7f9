"""Unique keys held in chosen states, and what a duplicate does: return the holder,
replace a waiting holder, or raise (storing nothing of the batch), also when two store
instances insert at once."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from workhorse.backends.base import Backend, InsertedJob, JobFilter
from workhorse.errors import DuplicateJobError, JobStateError
from workhorse.jobs import LIVE_STATES, JobState

from ._support import at, claim_one, failed, finish, get, insert, insert_one, new_job

WITH_COMPLETED = LIVE_STATES | {JobState.COMPLETED}
WITH_FAILED = LIVE_STATES | {JobState.FAILED}


async def test_a_key_held_while_completed_turns_duplicates_away(
    backend: Backend, now: datetime
) -> None:
    job_id = await insert_one(backend, now=now, unique_key="k", unique_states=WITH_COMPLETED)
    await finish(backend, await claim_one(backend, now=now), now=now)
    (again,) = await backend.job_insert_many(
        [new_job(unique_key="k", unique_states=WITH_COMPLETED)], now=now
    )
    assert again == InsertedJob(id=job_id, state=JobState.COMPLETED, created=False)


async def test_by_default_a_final_job_frees_its_key(backend: Backend, now: datetime) -> None:
    job_id = await insert_one(backend, now=now, unique_key="k")
    await finish(backend, await claim_one(backend, now=now), now=now)
    (again,) = await backend.job_insert_many([new_job(unique_key="k")], now=now)
    assert again.created
    assert again.id != job_id


async def test_a_job_holding_its_key_while_failed_can_be_retried(
    backend: Backend, now: datetime
) -> None:
    job_id = await insert_one(
        backend, now=now, unique_key="k", unique_states=WITH_FAILED, max_attempts=1
    )
    job = await claim_one(backend, now=now)
    assert await backend.job_complete_many([failed(job)], now=now) == [True]
    (dup,) = await backend.job_insert_many(
        [new_job(unique_key="k", unique_states=WITH_FAILED)], now=now
    )
    assert (dup.id, dup.created) == (job_id, False)
    record = await backend.job_retry(job_id=job_id, now=now)
    assert record is not None
    assert record.state is JobState.QUEUED


async def test_retrying_a_job_whose_key_another_holds_is_refused(
    backend: Backend, now: datetime
) -> None:
    first = await insert_one(backend, now=now, unique_key="k", max_attempts=1)
    job = await claim_one(backend, now=now)
    await backend.job_complete_many([failed(job)], now=now)
    await insert_one(backend, now=now, unique_key="k")
    with pytest.raises(JobStateError, match="unique key"):
        await backend.job_retry(job_id=first, now=now)


async def test_unique_states_must_include_the_live_states(backend: Backend, now: datetime) -> None:
    partial = frozenset({JobState.QUEUED, JobState.COMPLETED})
    with pytest.raises(ValueError, match="live state"):
        await backend.job_insert_many(
            [new_job(), new_job(unique_key="k", unique_states=partial)], now=now
        )
    assert await backend.job_count(filter=JobFilter()) == 0


async def test_raise_refuses_a_duplicate_and_stores_nothing_of_the_batch(
    backend: Backend, now: datetime
) -> None:
    holder = await insert_one(backend, now=now, unique_key="k")
    with pytest.raises(DuplicateJobError, match=f"job {holder}") as caught:
        await backend.job_insert_many(
            [new_job("t.other"), new_job(unique_key="k", on_duplicate="raise")], now=now
        )
    assert caught.value.holder_id == holder
    assert caught.value.unique_key == "k"
    assert await backend.job_count(filter=JobFilter()) == 1


async def test_raise_refuses_a_duplicate_within_one_batch(backend: Backend, now: datetime) -> None:
    with pytest.raises(DuplicateJobError):
        await backend.job_insert_many(
            [new_job(unique_key="k"), new_job(unique_key="k", on_duplicate="raise")], now=now
        )
    assert await backend.job_count(filter=JobFilter()) == 0


async def test_raise_lets_a_free_key_through(backend: Backend, now: datetime) -> None:
    (row,) = await backend.job_insert_many([new_job(unique_key="k", on_duplicate="raise")], now=now)
    assert row.created


async def test_replace_updates_a_waiting_holder(backend: Backend, now: datetime) -> None:
    holder = await insert_one(backend, now=now, unique_key="k", args="[1]", priority=1)
    later = at(now, 3600)
    (row,) = await backend.job_insert_many(
        [
            new_job(
                unique_key="k",
                on_duplicate="replace",
                args="[2]",
                kwargs='{"x": 1}',
                priority=5,
                run_at=later,
            )
        ],
        now=now,
    )
    assert row == InsertedJob(id=holder, state=JobState.SCHEDULED, created=False)
    record = await get(backend, holder)
    assert (record.args, record.kwargs, record.priority) == ([2], {"x": 1}, 5)
    assert record.state is JobState.SCHEDULED
    assert abs((record.run_at - later).total_seconds()) < 0.01
    assert await backend.job_count(filter=JobFilter()) == 1
    # Back to now: queued again.
    (row,) = await backend.job_insert_many(
        [new_job(unique_key="k", on_duplicate="replace", args="[3]")], now=now
    )
    assert row.state is JobState.QUEUED
    assert (await get(backend, holder)).args == [3]


async def test_replace_leaves_a_running_holder_alone(backend: Backend, now: datetime) -> None:
    holder = await insert_one(backend, now=now, unique_key="k", args="[1]")
    await claim_one(backend, now=now)
    (row,) = await backend.job_insert_many(
        [new_job(unique_key="k", on_duplicate="replace", args="[2]")], now=now
    )
    assert row == InsertedJob(id=holder, state=JobState.RUNNING, created=False)
    assert (await get(backend, holder)).args == [1]


async def test_replace_within_one_batch_keeps_the_last_arguments(
    backend: Backend, now: datetime
) -> None:
    rows = await backend.job_insert_many(
        [
            new_job(unique_key="k", args="[1]"),
            new_job(unique_key="k", args="[2]", on_duplicate="replace"),
        ],
        now=now,
    )
    assert [row.created for row in rows] == [True, False]
    assert rows[0].id == rows[1].id
    assert (await get(backend, rows[0].id)).args == [2]


@pytest.mark.parametrize("on_duplicate", ["return", "replace", "raise"])
async def test_two_instances_inserting_one_key_at_once_create_one_job(
    backend: Backend, twin: Backend, now: datetime, on_duplicate: str
) -> None:
    async def enqueue(store: Backend, n: int) -> InsertedJob | DuplicateJobError:
        job = new_job(unique_key="k", args=f"[{n}]", on_duplicate=on_duplicate)
        try:
            (row,) = await store.job_insert_many([job], now=now)
        except DuplicateJobError as exc:
            return exc
        return row

    answers = await asyncio.gather(
        *(enqueue(store, n) for n in range(10) for store in (backend, twin))
    )
    rows = [answer for answer in answers if isinstance(answer, InsertedJob)]
    refused = [answer for answer in answers if isinstance(answer, DuplicateJobError)]
    assert sum(row.created for row in rows) == 1
    (job,) = await backend.job_list(filter=JobFilter())
    assert {row.id for row in rows} == {job.id}
    if on_duplicate == "raise":
        assert len(refused) == 19
        assert {exc.holder_id for exc in refused} == {job.id}
    else:
        assert refused == []
        assert len(rows) == 20


async def test_insert_answers_for_unique_jobs_keep_batch_order(
    backend: Backend, now: datetime
) -> None:
    (held,) = await insert(backend, new_job(unique_key="a"), now=now)
    rows = await backend.job_insert_many(
        [new_job(), new_job(unique_key="a"), new_job(unique_key="b"), new_job()], now=now
    )
    assert [row.created for row in rows] == [True, False, True, True]
    assert rows[1].id == held
