"""Schedules: a task call enqueued on every tick of a cron expression or an interval, and
the app's registry of them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from workhorse.backends.base import NewJob
from workhorse.scheduling.cron import CronTrigger, IntervalTrigger, Trigger, next_tick

if TYPE_CHECKING:
    from workhorse.tasks import JobSpec

DEFAULT_CATCH_UP = timedelta(minutes=10)
"""How far back missed ticks are still enqueued by default (after a restart, say)."""
MIN_CATCH_UP = timedelta(minutes=1)
"""The least catch-up window: ticks that late are normal (a leader failover), not missed."""
SCHEDULE_META = "schedule"
"""The job meta entries naming the schedule and the tick that enqueued a job."""
TICK_META = "tick"


@dataclass(frozen=True, slots=True)
class Schedule:
    """A task call enqueued once per tick of ``trigger``.

    Each job runs at its tick (``run_at`` is the tick), and carries the schedule's name
    and the tick in its meta. After a restart, ticks missed within ``catch_up`` are
    enqueued; older ones are skipped, with a warning in the log.
    """

    name: str
    spec: JobSpec[Any]
    trigger: Trigger
    catch_up: timedelta = DEFAULT_CATCH_UP

    def new_job(self, tick: datetime) -> NewJob:
        """The job of ``tick``."""
        job = self.spec.to_new_job()
        meta = {**job.meta, SCHEDULE_META: self.name, TICK_META: tick.isoformat()}
        return replace(job, run_at=tick, delay=0.0, meta=meta)

    def next_run(self, after: datetime | None = None) -> datetime | None:
        """The first tick after ``after`` (default: now)."""
        return next_tick(self.trigger, after or datetime.now(UTC))


def build_schedule(
    spec: JobSpec[Any],
    *,
    cron: str | None,
    every: timedelta | float | None,
    tz: str,
    name: str | None,
    catch_up: timedelta | float | None,
) -> Schedule:
    """A schedule from the arguments of ``app.schedule``; ``ValueError`` for bad ones."""
    if (cron is None) == (every is None):
        raise ValueError("a schedule needs either cron='...' or every=timedelta(...)")
    trigger: Trigger
    if cron is not None:
        trigger = CronTrigger(cron, tz)
    else:
        assert every is not None
        if tz != "UTC":
            raise ValueError("tz applies to cron schedules; intervals count real time")
        trigger = IntervalTrigger(_span(every))
    window = DEFAULT_CATCH_UP if catch_up is None else _span(catch_up)
    spec.to_new_job()  # arguments that cannot be stored fail here, not at every tick
    return Schedule(
        name=name or spec.task.name,
        spec=spec,
        trigger=trigger,
        catch_up=max(window, MIN_CATCH_UP),
    )


def _span(value: timedelta | float) -> timedelta:
    return value if isinstance(value, timedelta) else timedelta(seconds=value)


class ScheduleRegistry:
    """The schedules of one app, by name."""

    def __init__(self) -> None:
        self._schedules: dict[str, Schedule] = {}

    def add(self, schedule: Schedule) -> Schedule:
        """Register ``schedule``; a second schedule of the same name is an error (name
        one of them: the name is what the store keeps its ticks under)."""
        if schedule.name in self._schedules:
            raise ValueError(
                f"a schedule named {schedule.name!r} exists already: pass name='...' "
                "to tell two schedules of one task apart"
            )
        self._schedules[schedule.name] = schedule
        return schedule

    def get(self, name: str) -> Schedule | None:
        """The schedule named ``name``, if any."""
        return self._schedules.get(name)

    def __iter__(self) -> Iterator[Schedule]:
        return iter(self._schedules.values())

    def __len__(self) -> int:
        return len(self._schedules)
