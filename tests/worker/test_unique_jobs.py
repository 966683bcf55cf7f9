"""Unique tasks through the app on every store: the three duplicate behaviours, keys held
after completion, per-call rules, and period windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from workhorse import DuplicateJobError, JobState, Unique, Workhorse
from workhorse.jobs import LIVE_STATES


async def test_a_duplicate_returns_the_holder_by_default(app: Workhorse) -> None:
    @app.task(unique=True)
    async def sync_user(user_id: int) -> None: ...

    first = await sync_user.enqueue(1)
    again = await sync_user.enqueue(1)
    other = await sync_user.enqueue(2)
    assert (first.created, again.created, other.created) == (True, False, True)
    assert again.id == first.id != other.id


async def test_a_duplicate_can_raise(app: Workhorse) -> None:
    @app.task(unique=Unique(key=lambda user_id: str(user_id), on_duplicate="raise"))
    async def charge(user_id: int) -> None: ...

    first = await charge.enqueue(1)
    with pytest.raises(DuplicateJobError, match=f"job {first.id}") as caught:
        await charge.enqueue(1)
    assert caught.value.unique_key == f"{charge.name}:1"
    with pytest.raises(DuplicateJobError):
        await app.enqueue_many([charge.call(2), charge.call(1)])
    assert [job.id for job in await app.list_jobs()] == [first.id]


async def test_a_duplicate_can_replace_the_waiting_holder(app: Workhorse) -> None:
    @app.task(unique=Unique(key=lambda doc, **_: doc, on_duplicate="replace"))
    async def reindex(doc: str, *, version: int) -> None: ...

    later = datetime.now(UTC) + timedelta(hours=1)
    first = await reindex.options(run_at=later).enqueue("a", version=1)
    again = await reindex.options(priority=9).enqueue("a", version=2)
    assert (again.id, again.created) == (first.id, False)
    record = await first.refresh()
    assert record.kwargs == {"version": 2}
    assert record.priority == 9
    assert record.state is JobState.QUEUED  # the new run time: now


async def test_a_key_kept_after_completion_runs_a_job_once(app: Workhorse) -> None:
    runs: list[int] = []

    @app.task(unique=Unique(states=LIVE_STATES | {JobState.COMPLETED}))
    async def welcome(user_id: int) -> None:
        runs.append(user_id)

    async with app.worker():
        job = await welcome.enqueue(5)
        await job.result(timeout=10)
        again = await welcome.enqueue(5)
    assert (again.id, again.created) == (job.id, False)
    assert runs == [5]


async def test_a_per_call_rule_and_a_period_window(app: Workhorse) -> None:
    @app.task
    async def report(day: str) -> None: ...

    daily = Unique(period=timedelta(days=365 * 1000), on_duplicate="raise")
    first = await report.options(unique=daily).enqueue("x")
    with pytest.raises(DuplicateJobError):
        await report.options(unique=daily).enqueue("x")
    free = await report.enqueue("x")  # no rule: not unique at all
    assert free.created
    assert free.id != first.id
    key = (await first.refresh()).unique_key
    assert key is not None
    assert key.startswith(f"{report.name}:")
    assert key.endswith("@0")  # the window of its period
