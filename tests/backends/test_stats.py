"""Job statistics: counts per minute and in total, run-time histograms, pruning of old
minutes (never of totals), and adds from several instances at once."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta

import pytest

from workhorse.backends.base import (
    Backend,
    EventCount,
    JobEvent,
    JobTotals,
    MinuteCount,
    RunTimeCount,
)

MINUTE = timedelta(minutes=1)


@pytest.fixture
def minute() -> datetime:
    """The start of a minute, a little in the past."""
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
    return start


def count(
    event: JobEvent,
    n: int,
    at: datetime,
    *,
    queue: str = "default",
    task: str = "t",
    tenant: str | None = None,
) -> EventCount:
    return EventCount(event=event, queue=queue, task=task, count=n, tenant=tenant, minute=at)


def totals_of(totals: JobTotals) -> dict[tuple[str, str, JobEvent], int]:
    found = {(c.queue, c.task, c.event): c.count for c in totals.counts}
    assert len(found) == len(totals.counts), "a key is listed twice"
    assert all(c.minute is None and c.tenant is None for c in totals.counts)
    return found


def timeline_of(rows: list[MinuteCount]) -> dict[tuple[datetime, JobEvent], int]:
    assert rows == sorted(rows, key=lambda r: (r.minute, r.event.value))
    return {(r.minute, r.event): r.count for r in rows}


async def test_a_new_store_has_no_statistics(backend: Backend, minute: datetime) -> None:
    assert await backend.stats_totals() == JobTotals(counts=[], run_times=[])
    assert await backend.stats_timeline(since=minute) == []
    assert await backend.stats_prune(before=minute + MINUTE) == 0
    await backend.stats_add(counts=[], run_times=[])
    assert await backend.stats_totals() == JobTotals(counts=[], run_times=[])


async def test_counts_add_up_per_minute_and_in_total(backend: Backend, minute: datetime) -> None:
    later = minute + 2 * MINUTE
    await backend.stats_add(
        counts=[
            count(JobEvent.ENQUEUED, 3, minute + timedelta(seconds=5), tenant="acme"),
            count(JobEvent.ENQUEUED, 2, minute + timedelta(seconds=59), tenant="globex"),
            count(JobEvent.COMPLETED, 1, minute, queue="mail", task="send"),
        ],
        run_times=[],
    )
    await backend.stats_add(
        counts=[
            count(JobEvent.ENQUEUED, 4, later, tenant="acme"),
            count(JobEvent.ENQUEUED, 1, later, tenant="acme"),
            count(JobEvent.FAILED, 2, later, queue="mail", task="send"),
            count(JobEvent.RETRIED, 0, later),
        ],
        run_times=[],
    )
    assert totals_of(await backend.stats_totals()) == {
        ("default", "t", JobEvent.ENQUEUED): 10,
        ("mail", "send", JobEvent.COMPLETED): 1,
        ("mail", "send", JobEvent.FAILED): 2,
    }
    assert timeline_of(await backend.stats_timeline(since=minute)) == {
        (minute, JobEvent.COMPLETED): 1,
        (minute, JobEvent.ENQUEUED): 5,
        (later, JobEvent.ENQUEUED): 5,
        (later, JobEvent.FAILED): 2,
    }
    assert timeline_of(await backend.stats_timeline(since=minute + timedelta(seconds=61))) == {
        (later, JobEvent.ENQUEUED): 5,
        (later, JobEvent.FAILED): 2,
    }
    assert timeline_of(await backend.stats_timeline(since=minute, tenant="acme")) == {
        (minute, JobEvent.ENQUEUED): 3,
        (later, JobEvent.ENQUEUED): 5,
    }
    assert await backend.stats_timeline(since=minute, tenant="nobody") == []


async def test_run_time_buckets_add_up(backend: Backend, minute: datetime) -> None:
    await backend.stats_add(
        counts=[],
        run_times=[
            RunTimeCount(queue="default", task="t", le=0.5, count=2, seconds=0.25),
            RunTimeCount(queue="default", task="t", le=math.inf, count=1, seconds=7200.0),
        ],
    )
    await backend.stats_add(
        counts=[count(JobEvent.COMPLETED, 4, minute)],
        run_times=[
            RunTimeCount(queue="default", task="t", le=0.5, count=1, seconds=0.5),
            RunTimeCount(queue="default", task="t", le=0.5, count=1, seconds=0.125),
            RunTimeCount(queue="mail", task="send", le=0.005, count=1, seconds=0.001),
        ],
    )
    totals = await backend.stats_totals()
    assert totals_of(totals) == {("default", "t", JobEvent.COMPLETED): 4}
    assert totals.run_times == [
        RunTimeCount(queue="default", task="t", le=0.5, count=4, seconds=0.875),
        RunTimeCount(queue="default", task="t", le=math.inf, count=1, seconds=7200.0),
        RunTimeCount(queue="mail", task="send", le=0.005, count=1, seconds=0.001),
    ]


async def test_pruning_drops_old_minutes_and_keeps_totals(
    backend: Backend, minute: datetime
) -> None:
    await backend.stats_add(
        counts=[
            count(JobEvent.STARTED, 1, minute - 10 * MINUTE),
            count(JobEvent.STARTED, 2, minute - MINUTE, tenant="acme"),
            count(JobEvent.STARTED, 4, minute),
        ],
        run_times=[],
    )
    before = totals_of(await backend.stats_totals())
    assert await backend.stats_prune(before=minute + timedelta(seconds=30)) == 2
    assert await backend.stats_prune(before=minute) == 0
    assert timeline_of(await backend.stats_timeline(since=minute - 20 * MINUTE)) == {
        (minute, JobEvent.STARTED): 4
    }
    assert (
        totals_of(await backend.stats_totals()) == before == {("default", "t", JobEvent.STARTED): 7}
    )
    await backend.stats_add(counts=[count(JobEvent.STARTED, 1, minute - 30 * MINUTE)], run_times=[])
    assert totals_of(await backend.stats_totals()) == {("default", "t", JobEvent.STARTED): 8}


@pytest.mark.parametrize(
    "bad",
    [
        EventCount(event=JobEvent.COMPLETED, queue="q", task="t", count=1),
        EventCount(
            event=JobEvent.COMPLETED,
            queue="q",
            task="t",
            count=-1,
            minute=datetime(2026, 1, 1, tzinfo=UTC),
        ),
    ],
    ids=["without a minute", "negative"],
)
async def test_a_bad_count_adds_nothing(
    backend: Backend, minute: datetime, bad: EventCount
) -> None:
    with pytest.raises(ValueError, match=r"minute|grow"):
        await backend.stats_add(counts=[count(JobEvent.ENQUEUED, 1, minute), bad], run_times=[])
    with pytest.raises(ValueError, match="grow"):
        await backend.stats_add(
            counts=[count(JobEvent.ENQUEUED, 1, minute)],
            run_times=[RunTimeCount(queue="q", task="t", le=1.0, count=-1, seconds=0.0)],
        )
    assert await backend.stats_totals() == JobTotals(counts=[], run_times=[])


async def test_instances_adding_at_once_lose_nothing(
    backend: Backend, twin: Backend, minute: datetime
) -> None:
    # Overlapping keys in opposite orders: the rows are locked in one order whatever
    # order the counts come in, so concurrent adds neither deadlock nor lose a count.
    events = list(JobEvent)

    async def add(store: Backend, order: list[JobEvent]) -> None:
        for _ in range(20):
            await store.stats_add(
                counts=[count(event, 1, minute) for event in order],
                run_times=[RunTimeCount(queue="default", task="t", le=1.0, count=1, seconds=0.5)],
            )

    await asyncio.gather(
        add(backend, events), add(twin, events[::-1]), add(backend, events), add(twin, events)
    )
    totals = await twin.stats_totals()
    assert totals_of(totals) == {("default", "t", event): 80 for event in events}
    assert totals.run_times == [
        RunTimeCount(queue="default", task="t", le=1.0, count=80, seconds=40.0)
    ]
    assert timeline_of(await backend.stats_timeline(since=minute)) == {
        (minute, event): 80 for event in events
    }
