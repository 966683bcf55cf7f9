"""Periodic jobs in the store: each tick of a schedule makes one job however many
schedulers claim it, the scheduler chore catches up within its window, and cron
schedules in a time zone fire once per tick across its clock changes."""

from __future__ import annotations

import asyncio
import itertools
import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

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


# -- clock changes: America/New_York springs forward on 2026-03-08 at 02:00 and falls back
# on 2026-11-01 at 02:00 (01:00-02:00 happens twice) ----------------------------------

NY = ZoneInfo("America/New_York")
DST_SCHEDULES = {
    "daily-0230": "30 2 * * *",  # in the spring gap; an ordinary time in the fall
    "daily-0130": "30 1 * * *",  # an ordinary time in spring; twice in the fall
    "hourly": "0 * * * *",
}
STEP = timedelta(minutes=5)
"""How far the clock moves between two runs of the chore: less than the catch-up window."""


def dst_chore(clock: FakeClock) -> ScheduleTicks:
    """A scheduler with the cron schedules of ``DST_SCHEDULES``, in New York time."""
    task = Workhorse("memory://").task(name="tests.dst")(lambda: None)
    built = [
        build_schedule(task.call(), cron=cron, every=None, tz=str(NY), name=name, catch_up=None)
        for name, cron in DST_SCHEDULES.items()
    ]
    return ScheduleTicks(schedules=built, interval=1.0, lookahead=2.0, clock=clock)


def ny(day: tuple[int, int, int], hour: int, minute: int = 0, fold: int = 0) -> datetime:
    """A New York wall time (``fold=1``: its second occurrence) as a UTC instant."""
    return datetime(*day, hour, minute, tzinfo=NY, fold=fold).astimezone(UTC)


@pytest.mark.parametrize(
    ("day", "daily_0230", "daily_0130", "hours"),
    [
        # Spring forward: 02:30 does not exist and fires at 03:30 EDT; the day has 23 hours.
        ((2026, 3, 8), ny((2026, 3, 8), 3, 30), ny((2026, 3, 8), 1, 30), 23),
        # Fall back: 01:30 happens twice and fires at the first (EDT); the day has 25 hours.
        ((2026, 11, 1), ny((2026, 11, 1), 2, 30), ny((2026, 11, 1), 1, 30, fold=0), 25),
    ],
    ids=["spring-forward", "fall-back"],
)
async def test_cron_schedules_fire_once_per_tick_across_a_clock_change(
    backend: Backend,
    day: tuple[int, int, int],
    daily_0230: datetime,
    daily_0130: datetime,
    hours: int,
) -> None:
    """Two schedulers run the chore every five minutes of the travelled clock, from
    local midnight to the next: each schedule gets exactly the ticks of the day's real
    hours, each as one job at its tick."""
    start = ny(day, 0) - timedelta(minutes=1)
    end = start + timedelta(hours=hours)  # one minute before the next local midnight
    await backend.schedule_register(names=list(DST_SCHEDULES), now=start)
    clock = FakeClock(start)
    schedulers = [dst_chore(clock), dst_chore(clock)]
    while clock.now < end:
        clock.now = min(clock.now + STEP, end)
        for chore in schedulers:
            await chore(backend)

    jobs = await backend.job_list(filter=JobFilter(task="tests.dst"), limit=1000)
    ticks: dict[str, list[datetime]] = {name: [] for name in DST_SCHEDULES}
    for job in jobs:
        tick = datetime.fromisoformat(job.meta["tick"])
        assert job.run_at == tick, job
        ticks[job.meta["schedule"]].append(tick)
    assert ticks["daily-0230"] == [daily_0230]
    assert ticks["daily-0130"] == [daily_0130]
    hourly = sorted(ticks["hourly"])
    assert len(hourly) == hours, [t.astimezone(NY).isoformat() for t in hourly]
    assert hourly[0] == ny(day, 0)
    assert {b - a for a, b in itertools.pairwise(hourly)} == {timedelta(hours=1)}
    assert len(jobs) == hours + 2, "one job per tick, whichever scheduler claimed it"

    # The (schedule, tick) key is the instant: claiming a tick again, however its wall
    # time is written (both passes of the repeated hour), makes no job.
    for name, claimed in ticks.items():
        for tick in claimed:
            for again in (tick, tick.astimezone(NY)):
                assert (
                    await backend.cron_claim_tick(name=name, tick_at=again, job=new_job()) is None
                )
    for fold in (0, 1):
        one_am = datetime(*day, 1, 0, tzinfo=NY, fold=fold)
        assert await backend.cron_claim_tick(name="hourly", tick_at=one_am, job=new_job()) is None
    assert await backend.job_count(filter=JobFilter()) == len(jobs)
