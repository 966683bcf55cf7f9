"""What ``workhorse schedules`` and ``GET /schedules`` show: each schedule of an app with
its next run and the last tick the store enqueued."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from workhorse.backends.base import ScheduleState

if TYPE_CHECKING:
    from workhorse.app import Workhorse


@dataclass(frozen=True, slots=True)
class ScheduleInfo:
    """One schedule as people look at it."""

    name: str
    task: str
    queue: str
    tenant: str | None
    trigger: str
    """``0 3 * * * Europe/Paris`` or ``every 5m``."""
    next_run_at: datetime | None
    catch_up_seconds: float
    last_tick_at: datetime | None = None
    last_job_id: int | None = None


def schedule_infos(
    app: Workhorse, states: dict[str, ScheduleState], now: datetime | None = None
) -> list[ScheduleInfo]:
    """The app's schedules, in registration order, with what ``states`` says of them."""
    moment = now or datetime.now(UTC)
    infos = []
    for schedule in app.schedules:
        job = schedule.spec.to_new_job()
        state = states.get(schedule.name)
        infos.append(
            ScheduleInfo(
                name=schedule.name,
                task=job.task,
                queue=job.queue,
                tenant=job.tenant,
                trigger=schedule.trigger.describe(),
                next_run_at=schedule.next_run(moment),
                catch_up_seconds=schedule.catch_up.total_seconds(),
                last_tick_at=None if state is None else state.last_tick_at,
                last_job_id=None if state is None else state.last_job_id,
            )
        )
    return infos


async def schedule_overview(app: Workhorse, now: datetime | None = None) -> list[ScheduleInfo]:
    """:func:`schedule_infos` with the states read from the app's store."""
    names = [schedule.name for schedule in app.schedules]
    states = await (await app.backend()).schedule_states(names=names) if names else {}
    return schedule_infos(app, states, now)
