"""Reading jobs: get, list (filters, order, cursor), count, next_due_in and queue stats."""

from __future__ import annotations

from datetime import datetime

import pytest

from workhorse.backends.base import Backend, JobFilter, QueueStats
from workhorse.jobs import JobState

from ._support import (
    STORE_CLOCK,
    assert_time,
    at,
    claim_one,
    final_job,
    insert,
    insert_one,
    new_job,
)

# -- get -------------------------------------------------------------------------------


async def test_get_unknown_job(backend: Backend) -> None:
    assert await backend.job_get(job_id=1) is None
    assert await backend.job_get(job_id=-5) is None


async def test_get_is_tenant_scoped(backend: Backend, now: datetime) -> None:
    acme, shared = await insert(backend, new_job(tenant="acme"), new_job(), now=now)
    record = await backend.job_get(job_id=acme, tenant="acme")
    assert record is not None
    assert record.tenant == "acme"
    assert await backend.job_get(job_id=acme, tenant="globex") is None
    assert await backend.job_get(job_id=shared, tenant="acme") is None, "untenanted is not theirs"
    assert await backend.job_get(job_id=acme) is not None, "no tenant means every tenant"
    assert await backend.job_get(job_id=shared) is not None


async def test_records_are_copies(backend: Backend, now: datetime) -> None:
    job_id = await insert_one(backend, now=now, labels={"a": "1"}, meta={"m": [1]}, args="[[1]]")
    record = await backend.job_get(job_id=job_id)
    assert record is not None
    record.labels["a"] = "changed"
    record.meta["m"].append(2)
    record.args[0].append(2)
    again = await backend.job_get(job_id=job_id)
    assert again is not None
    assert (again.labels, again.meta, again.args) == ({"a": "1"}, {"m": [1]}, [[1]])


# -- list and count --------------------------------------------------------------------


async def _ids(backend: Backend, filter: JobFilter, **kwargs: int) -> list[int]:
    return [record.id for record in await backend.job_list(filter=filter, **kwargs)]


async def test_list_is_newest_first(backend: Backend, now: datetime) -> None:
    ids = await insert(backend, *[new_job() for _ in range(5)], now=now)
    assert await _ids(backend, JobFilter()) == ids[::-1]
    assert await backend.job_count(filter=JobFilter()) == 5


async def test_listed_records_are_the_stored_jobs(backend: Backend, now: datetime) -> None:
    await insert(backend, new_job(labels={"k": "v"}, tenant="t"), new_job(delay=5), now=now)
    await claim_one(backend, now=now)
    for record in await backend.job_list(filter=JobFilter()):
        assert record == await backend.job_get(job_id=record.id)


async def test_list_pages_with_a_cursor(backend: Backend, now: datetime) -> None:
    ids = await insert(backend, *[new_job() for _ in range(7)], now=now)
    newest_first = ids[::-1]
    page1 = await _ids(backend, JobFilter(), limit=3)
    page2 = await _ids(backend, JobFilter(), limit=3, before_id=page1[-1])
    page3 = await _ids(backend, JobFilter(), limit=3, before_id=page2[-1])
    page4 = await _ids(backend, JobFilter(), limit=3, before_id=page3[-1])
    assert page1 == newest_first[0:3]
    assert page2 == newest_first[3:6]
    assert page3 == newest_first[6:7]
    assert page4 == []


async def test_list_and_count_on_an_empty_store(backend: Backend) -> None:
    assert await backend.job_list(filter=JobFilter()) == []
    assert await backend.job_count(filter=JobFilter(queue="x")) == 0


async def test_filter_by_tenant_queue_task(backend: Backend, now: datetime) -> None:
    a, b, c, d = await insert(
        backend,
        new_job("t.one", tenant="acme", queue="q1"),
        new_job("t.two", tenant="acme", queue="q2"),
        new_job("t.one", tenant="globex", queue="q1"),
        new_job("t.one", queue="q1"),
        now=now,
    )
    cases = {
        JobFilter(tenant="acme"): [b, a],
        JobFilter(tenant="globex"): [c],
        JobFilter(queue="q1"): [d, c, a],
        JobFilter(task="t.one"): [d, c, a],
        JobFilter(task="t.two"): [b],
        JobFilter(tenant="acme", queue="q1", task="t.one"): [a],
        JobFilter(tenant="nobody"): [],
        JobFilter(queue="q1", task="t.two"): [],
    }
    for filter, expected in cases.items():
        assert await _ids(backend, filter) == expected, filter
        assert await backend.job_count(filter=filter) == len(expected), filter


async def test_filter_by_states(backend: Backend, now: datetime) -> None:
    queued = await insert_one(backend, now=now, queue="q")
    scheduled = await insert_one(backend, now=now, delay=300, queue="s")
    await insert_one(backend, now=now, queue="r")
    running = (await claim_one(backend, now=now, queues=["r"])).id
    done = await final_job(backend, now=now, queue="c")
    failed = await final_job(backend, now=now, queue="f", state=JobState.FAILED)
    cancelled = await final_job(backend, now=now, state=JobState.CANCELLED)
    cases = {
        (JobState.QUEUED,): [queued],
        (JobState.SCHEDULED,): [scheduled],
        (JobState.RUNNING,): [running],
        (JobState.COMPLETED,): [done],
        (JobState.FAILED, JobState.CANCELLED): [cancelled, failed],
        (JobState.BLOCKED,): [],
        (): [],
    }
    for states, expected in cases.items():
        assert await _ids(backend, JobFilter(states=states)) == expected, states
        assert await backend.job_count(filter=JobFilter(states=states)) == len(expected)


async def test_filter_by_label(backend: Backend, now: datetime) -> None:
    a, b, _ = await insert(
        backend,
        new_job(labels={"team": "growth", "env": "prod"}),
        new_job(labels={"team": "core"}),
        new_job(),
        now=now,
    )
    assert await _ids(backend, JobFilter(label=("team", "growth"))) == [a]
    assert await _ids(backend, JobFilter(label=("team", "core"))) == [b]
    assert await _ids(backend, JobFilter(label=("env", "prod"))) == [a]
    assert await _ids(backend, JobFilter(label=("env", "dev"))) == []
    assert await _ids(backend, JobFilter(label=("growth", "team"))) == []
    assert await backend.job_count(filter=JobFilter(label=("team", "growth"))) == 1


async def test_filter_by_creation_time(backend: Backend, now: datetime) -> None:
    (old,) = await insert(backend, new_job(), now=at(now, -100))
    (mid,) = await insert(backend, new_job(), now=at(now, -50))
    (new,) = await insert(backend, new_job(), now=now)
    assert await _ids(backend, JobFilter(created_after=at(now, -75))) == [new, mid]
    assert await _ids(backend, JobFilter(created_before=at(now, -75))) == [old]
    window = JobFilter(created_after=at(now, -75), created_before=at(now, -25))
    assert await _ids(backend, window) == [mid]
    assert await backend.job_count(filter=window) == 1


async def test_filter_by_parent(backend: Backend, now: datetime) -> None:
    parent = await insert_one(backend, now=now)
    child_a, child_b, _ = await insert(
        backend, new_job(parent_id=parent), new_job(parent_id=parent), new_job(), now=now
    )
    assert await _ids(backend, JobFilter(parent_id=parent)) == [child_b, child_a]
    assert await backend.job_count(filter=JobFilter(parent_id=parent)) == 2


async def test_list_limit_with_filter(backend: Backend, now: datetime) -> None:
    ids = await insert(backend, *[new_job(queue="a" if i % 2 else "b") for i in range(10)], now=now)
    in_a = [job_id for i, job_id in enumerate(ids) if i % 2][::-1]
    assert await _ids(backend, JobFilter(queue="a"), limit=2) == in_a[:2]
    assert await _ids(backend, JobFilter(queue="a"), limit=2, before_id=in_a[1]) == in_a[2:4]


# -- next_due_in -----------------------------------------------------------------------


async def test_next_due_in(backend: Backend, now: datetime) -> None:
    assert await backend.job_next_due_in(queues=None, now=now) is None
    await insert_one(backend, now=now)  # queued jobs do not count
    assert await backend.job_next_due_in(queues=None, now=now) is None
    await insert(
        backend,
        new_job(queue="a", delay=300),
        new_job(queue="a", delay=100),
        new_job(queue="b", delay=50),
        now=now,
    )
    assert await backend.job_next_due_in(queues=None, now=now) == pytest.approx(50, abs=0.01)
    assert await backend.job_next_due_in(queues=["a"], now=now) == pytest.approx(100, abs=0.01)
    assert await backend.job_next_due_in(queues=["a", "b"], now=now) == pytest.approx(50, abs=0.01)
    assert await backend.job_next_due_in(queues=["a"], now=at(now, 99)) == pytest.approx(
        1, abs=0.01
    )
    assert await backend.job_next_due_in(queues=["c"], now=now) is None
    assert await backend.job_next_due_in(queues=[], now=now) is None


async def test_next_due_in_is_zero_once_due(backend: Backend, now: datetime) -> None:
    await insert_one(backend, now=now, delay=10)
    assert await backend.job_next_due_in(queues=None, now=at(now, 10)) == 0.0
    assert await backend.job_next_due_in(queues=None, now=at(now, 3600)) == 0.0


async def test_next_due_in_is_measured_on_the_store_clock(backend: Backend) -> None:
    await insert_one(backend, delay=100)  # run_at from the store's clock too
    due_in = await backend.job_next_due_in(queues=None)
    assert due_in is not None
    assert 100 - STORE_CLOCK.total_seconds() < due_in <= 100


async def test_next_due_in_ignores_cancelled_jobs(backend: Backend, now: datetime) -> None:
    job_id = await insert_one(backend, now=now, delay=10)
    await backend.job_cancel(job_id=job_id)
    assert await backend.job_next_due_in(queues=None, now=now) is None


# -- queue stats -----------------------------------------------------------------------


def _by_queue(stats: list[QueueStats]) -> dict[str, dict[JobState, int]]:
    for row in stats:
        assert all(type(state) is JobState for state in row.counts), row.counts
        assert all(n >= 0 for n in row.counts.values()), row.counts
    return {row.queue: {s: n for s, n in row.counts.items() if n} for row in stats}


async def test_queue_stats(backend: Backend, now: datetime) -> None:
    assert await backend.queue_stats() == []
    await insert(
        backend,
        new_job(queue="mail"),
        new_job(queue="mail"),
        new_job(queue="mail", delay=60),
        new_job(queue="reports", priority=5),
        new_job(queue="reports"),
        now=now,
    )
    await claim_one(backend, now=now, queues=["reports"])
    await final_job(backend, now=now, queue="mail", state=JobState.CANCELLED)
    stats = await backend.queue_stats()
    assert _by_queue(stats) == {
        "mail": {JobState.QUEUED: 2, JobState.SCHEDULED: 1, JobState.CANCELLED: 1},
        "reports": {JobState.QUEUED: 1, JobState.RUNNING: 1},
    }
    by_name = {row.queue: row for row in stats}
    assert_time(by_name["mail"].oldest_queued_at, now)
    assert_time(by_name["reports"].oldest_queued_at, now)


async def test_oldest_queued_at(backend: Backend, now: datetime) -> None:
    await insert_one(backend, now=at(now, -30), queue="q")
    await insert_one(backend, now=at(now, -10), queue="q")
    await insert_one(backend, now=now, queue="idle", delay=5)
    stats = {row.queue: row for row in await backend.queue_stats()}
    assert_time(stats["q"].oldest_queued_at, at(now, -30))
    assert stats["idle"].oldest_queued_at is None


async def test_due_scheduled_jobs_count_as_queued(backend: Backend, now: datetime) -> None:
    # Nobody promoted them (no leader runs), yet they are ready: the depth and the wait
    # must show them, or an alert on a queue without workers never fires.
    await insert_one(backend, now=at(now, -120), queue="q", delay=60)
    await insert_one(backend, now=at(now, -30), queue="q")
    await insert_one(backend, now=now, queue="q", delay=60)
    await insert_one(backend, now=at(now, -100), queue="late", delay=90)
    stats = {row.queue: row for row in await backend.queue_stats(now=now)}
    assert _by_queue(list(stats.values())) == {
        "q": {JobState.QUEUED: 2, JobState.SCHEDULED: 1},
        "late": {JobState.QUEUED: 1},
    }
    assert_time(stats["q"].oldest_queued_at, at(now, -60))
    assert_time(stats["late"].oldest_queued_at, at(now, -10))
    earlier = {row.queue: row for row in await backend.queue_stats(now=at(now, -70))}
    assert _by_queue(list(earlier.values())) == {
        "q": {JobState.QUEUED: 1, JobState.SCHEDULED: 2},
        "late": {JobState.SCHEDULED: 1},
    }
    assert_time(earlier["q"].oldest_queued_at, at(now, -30))
    assert earlier["late"].oldest_queued_at is None


async def test_queue_stats_are_tenant_scoped(backend: Backend, now: datetime) -> None:
    await insert(
        backend,
        new_job(queue="a", tenant="acme"),
        new_job(queue="a", tenant="globex"),
        new_job(queue="b", tenant="globex"),
        now=now,
    )
    assert _by_queue(await backend.queue_stats(tenant="acme")) == {"a": {JobState.QUEUED: 1}}
    assert _by_queue(await backend.queue_stats(tenant="globex")) == {
        "a": {JobState.QUEUED: 1},
        "b": {JobState.QUEUED: 1},
    }
    assert _by_queue(await backend.queue_stats()) == {
        "a": {JobState.QUEUED: 2},
        "b": {JobState.QUEUED: 1},
    }
    assert await backend.queue_stats(tenant="nobody") == []
