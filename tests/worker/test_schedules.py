"""Periodic jobs run by workers: ticks become jobs that run at their tick, once each,
however many workers run the scheduler."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from workhorse import JobState, Workhorse
from workhorse.backends.base import JobFilter

from ._support import eventually


async def test_every_tick_runs_once_under_two_workers(app: Workhorse) -> None:
    @app.periodic(every=timedelta(seconds=1), name="heartbeat")
    async def beat() -> str:
        return "ok"

    store = await app.backend()
    flt = JobFilter(task=beat.name, states=(JobState.COMPLETED,))
    async with app.worker(), app.worker():
        await eventually(
            lambda: store.job_count(filter=flt), lambda n: n >= 3, what="three ticks run"
        )
    jobs = await store.job_list(filter=JobFilter(task=beat.name), limit=100)
    ticks = sorted(job.run_at for job in jobs)
    assert len(ticks) == len(set(ticks))
    assert {later - earlier for earlier, later in itertools.pairwise(ticks)} == {
        timedelta(seconds=1)
    }
    for job in jobs:
        assert job.meta["schedule"] == "heartbeat"
        if job.state is JobState.COMPLETED:
            assert job.started_at is not None
            assert job.started_at >= job.run_at  # never before its tick


def test_schedule_arguments_are_checked() -> None:
    app = Workhorse("memory://")
    task = app.task(name="tests.report")(lambda kind: kind)
    with pytest.raises(ValueError, match="either cron"):
        app.schedule(task.call("x"))
    with pytest.raises(ValueError, match="either cron"):
        app.schedule(task.call("x"), cron="* * * * *", every=60)
    with pytest.raises(ValueError, match="tz applies to cron"):
        app.schedule(task.call("x"), every=60, tz="Europe/Paris")
    with pytest.raises(ValueError, match="unknown time zone"):
        app.schedule(task.call("x"), cron="0 3 * * *", tz="Nowhere/Else")
    with pytest.raises(TypeError, match="JSON"):
        app.schedule(task.call(object()), every=60)
    daily = app.schedule(task.call("daily"), cron="0 3 * * *", tz="Europe/Paris")
    assert daily.name == "tests.report"
    with pytest.raises(ValueError, match="exists already"):
        app.schedule(task.call("hourly"), cron="0 * * * *")
    hourly = app.schedule(task.call("hourly"), cron="0 * * * *", name="hourly-report")
    assert [s.name for s in app.schedules] == ["tests.report", "hourly-report"]
    assert hourly.catch_up == timedelta(minutes=10)
    short = app.schedule(task.call("x"), every=5, name="short", catch_up=0)
    assert short.catch_up == timedelta(minutes=1)  # the least window


def test_a_scheduled_job_runs_at_its_tick_with_the_calls_options() -> None:
    app = Workhorse("memory://")
    task = app.task(name="tests.report", queue="reports")(lambda kind: kind)
    schedule = app.schedule(
        task.options(priority=4, delay=30).call("daily"), cron="0 3 * * *", tz="Europe/Paris"
    )
    tick = schedule.next_run()
    assert tick is not None
    job = schedule.new_job(tick)
    assert (job.run_at, job.delay, job.queue, job.priority) == (tick, 0.0, "reports", 4)
    assert job.meta == {"schedule": "tests.report", "tick": tick.isoformat()}
