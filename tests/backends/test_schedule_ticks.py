"""Periodic jobs in the store: each tick of a schedule makes one job however many
schedulers claim it, and the scheduler chore catches up within its window."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest

from workhorse import Workhorse
from workhorse.backends.base import Backend, JobFilter
from workhorse.scheduling.schedule import build_schedule
from workhorse.scheduling.ticker import ScheduleTicks

from ._support import get, new_job

TICK = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


async def test_a_tick_is_claimed_once(backend: Backend) -> None:
    first = await backend.cron_claim_tick(name="s", tick_at=TICK, job=new_job(run_at=TICK))
    again = await backend.cron_claim_tick(name="s", tick_at=TICK, job=new_job(run_at=TICK))
    assert first is not None
    assert again is None
    other_schedule = await backend.cron_claim_tick(name="t", tick_at=TICK, job=new_job())
    next_tick = await backend.cron_claim_tick(
        name="s", tick_at=TICK + timedelta(seconds=1), job=new_job()
    )
    assert other_schedule is not None
    assert next_tick is not None
    assert await backend.job_count(filter=JobFilter()) == 3
    assert (await get(backend, first)).run_at == TICK


async def test_concurrent_claims_of_one_tick_make_one_job(backend: Backend) -> None:
    results = await asyncio.gather(
        *(backend.cron_claim_tick(name="s", tick_at=TICK, job=new_job()) for _ in range(10))
    )
    assert len([r for r in results if r is not None]) == 1
    assert await backend.job_count(filter=JobFilter()) == 1


async def test_claims_on_two_instances_make_one_job(backend: Backend, twin: Backend) -> None:
    results = await asyncio.gather(
        *(
            store.cron_claim_tick(name="s", tick_at=TICK, job=new_job())
            for _ in range(5)
            for store in (backend, twin)
        )
    )
    assert len([r for r in results if r is not None]) == 1
    assert await backend.job_count(filter=JobFilter()) == 1


async def test_registration_and_the_last_tick(backend: Backend) -> None:
    assert await backend.schedule_states(names=["a", "b"]) == {}
    await backend.schedule_register(names=["a"], now=TICK)
    await backend.schedule_register(names=["a", "b"], now=TICK + timedelta(hours=1))
    states = await backend.schedule_states(names=["a", "b", "c"])
    assert set(states) == {"a", "b"}
    assert states["a"].registered_at == TICK  # the first registration stays
    assert states["a"].last_tick_at is None
    later = TICK + timedelta(minutes=5)
    job_id = await backend.cron_claim_tick(name="a", tick_at=later, job=new_job())
    await backend.cron_claim_tick(name="a", tick_at=TICK, job=new_job())  # an older tick
    state = (await backend.schedule_states(names=["a"]))["a"]
    assert (state.last_tick_at, state.last_job_id) == (later, job_id)


async def test_old_ticks_are_pruned(backend: Backend) -> None:
    for minutes in range(3):
        tick = TICK + timedelta(minutes=minutes)
        await backend.cron_claim_tick(name="s", tick_at=tick, job=new_job())
    assert await backend.cron_prune_ticks(before=TICK + timedelta(minutes=2)) == 2
    # A pruned tick is older than any scheduler looks; the kept one still turns a repeat away.
    again = await backend.cron_claim_tick(
        name="s", tick_at=TICK + timedelta(minutes=2), job=new_job()
    )
    assert again is None


class FakeClock:
    """A clock a test moves by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def ticker(app: Workhorse, clock: FakeClock, **schedule: object) -> ScheduleTicks:
    task = app.task(name="tests.every_minute")(lambda: None)
    built = build_schedule(
        task.call(),
        cron=None,
        every=timedelta(minutes=1),
        tz="UTC",
        name="minutely",
        catch_up=schedule.get("catch_up", timedelta(minutes=5)),  # type: ignore[arg-type]
    )
    return ScheduleTicks(schedules=[built], interval=1.0, lookahead=2.0, clock=clock)


async def scheduled_ticks(backend: Backend) -> list[datetime]:
    jobs = await backend.job_list(filter=JobFilter(task="tests.every_minute"), limit=1000)
    return sorted(datetime.fromisoformat(job.meta["tick"]) for job in jobs)


async def test_the_chore_enqueues_each_tick_from_registration_on(backend: Backend) -> None:
    registered = TICK + timedelta(seconds=10)
    await backend.schedule_register(names=["minutely"], now=registered)
    clock = FakeClock(registered)
    chore = ticker(Workhorse("memory://"), clock)
    await chore(backend)
    assert await scheduled_ticks(backend) == []  # no tick since the registration
    clock.now = registered + timedelta(minutes=3, seconds=30)
    await chore(backend)
    await chore(backend)  # a second run (or a second scheduler) adds nothing
    ticks = await scheduled_ticks(backend)
    assert len(ticks) == 3
    assert all(timedelta(0) < t - registered <= timedelta(minutes=3, seconds=30) for t in ticks)
    jobs = await backend.job_list(filter=JobFilter(task="tests.every_minute"), limit=10)
    assert {job.run_at for job in jobs} == set(ticks)
    assert {job.meta["schedule"] for job in jobs} == {"minutely"}


async def test_after_a_restart_missed_ticks_within_the_window_are_enqueued(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    start = TICK + timedelta(seconds=10)
    await backend.schedule_register(names=["minutely"], now=start)
    clock = FakeClock(start + timedelta(minutes=1, seconds=30))
    await ticker(Workhorse("memory://"), clock)(backend)
    assert len(await scheduled_ticks(backend)) == 1
    # The workers are down for 20 minutes; a new scheduler (a fresh chore) comes up.
    clock.now += timedelta(minutes=20)
    with caplog.at_level(logging.WARNING, logger="workhorse.schedules"):
        await ticker(Workhorse("memory://"), clock)(backend)
    ticks = await scheduled_ticks(backend)
    window_start = clock.now - timedelta(minutes=5)
    caught_up = [t for t in ticks if t > start + timedelta(minutes=2)]
    # The five ticks inside the catch-up window ran; the fifteen before it were skipped.
    assert len(caught_up) == 5
    assert all(window_start <= t <= clock.now for t in caught_up)
    assert [r.getMessage() for r in caplog.records if "skipped the ticks" in r.getMessage()]


async def test_skipped_ticks_are_reported_once(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    start = TICK + timedelta(seconds=10)
    await backend.schedule_register(names=["minutely"], now=start)
    clock = FakeClock(start + timedelta(hours=1))
    chore = ticker(Workhorse("memory://"), clock)
    with caplog.at_level(logging.WARNING, logger="workhorse.schedules"):
        await chore(backend)
        clock.now += timedelta(seconds=1)
        await chore(backend)
    assert len([r for r in caplog.records if "skipped the ticks" in r.getMessage()]) == 1


async def test_a_tick_due_soon_is_enqueued_ahead_to_start_on_time(backend: Backend) -> None:
    start = datetime(2026, 5, 1, 11, 59, 59, tzinfo=UTC)
    await backend.schedule_register(names=["minutely"], now=start - timedelta(minutes=30))
    clock = FakeClock(start)  # one second before 12:00
    await ticker(Workhorse("memory://"), clock)(backend)
    jobs = await backend.job_list(filter=JobFilter(task="tests.every_minute"), limit=10)
    assert max(job.run_at for job in jobs) == TICK
