"""The maintenance chore that enqueues the ticks of an app's schedules.

Every run it asks the store where each schedule stands (registered when, last tick
enqueued) and claims each tick from there up to a little ahead of now, oldest first.
``cron_claim_tick`` writes a tick and its job in one transaction under the tick's
primary key, so each tick makes one job however many schedulers run it (a leader that
lost its lease without knowing, two deployments at once). Ticks are claimed a little
ahead (``lookahead``) as scheduled jobs whose ``run_at`` is the tick, so they start on
time whatever the chore's period. Ticks older than a schedule's catch-up window (the
workers were down) are skipped, with one warning per gap.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from workhorse.backends.base import Backend, NewJob, ScheduleState
from workhorse.scheduling.cron import next_tick, ticks_between
from workhorse.scheduling.schedule import Schedule

logger = logging.getLogger("workhorse.schedules")

TICK_RETENTION = timedelta(days=1)
"""How long tick rows are kept beyond the catch-up window (for looking back)."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _ignore(jobs: Sequence[NewJob]) -> None:
    return None


@dataclass(eq=False)
class ScheduleTicks:
    """Enqueue the due ticks of ``schedules`` (a leader-only chore)."""

    schedules: Sequence[Schedule]
    interval: float
    """Seconds between runs."""
    lookahead: float
    """Seconds ahead of now that ticks are enqueued (as jobs scheduled at the tick)."""
    prune_interval: float = 3600.0
    clock: Callable[[], datetime] = _utcnow
    on_enqueued: Callable[[Sequence[NewJob]], None] = _ignore
    """Called with each job a tick enqueued (for the job statistics)."""
    _reported: dict[str, datetime] = field(default_factory=dict)
    _pruned_at: datetime | None = None

    async def __call__(self, store: Backend) -> None:
        now = self.clock()
        states = await self._states(store)
        for schedule in self.schedules:
            try:
                await self._tick(store, schedule, states[schedule.name], now)
            except Exception as exc:
                logger.warning("schedule %s: could not enqueue its ticks: %s", schedule.name, exc)
        await self._prune(store, now)

    async def _states(self, store: Backend) -> dict[str, ScheduleState]:
        names = [schedule.name for schedule in self.schedules]
        states = await store.schedule_states(names=names)
        unknown = [name for name in names if name not in states]
        if unknown:
            await store.schedule_register(names=unknown)
            states.update(await store.schedule_states(names=unknown))
        return states

    async def _tick(
        self, store: Backend, schedule: Schedule, state: ScheduleState, now: datetime
    ) -> None:
        start = max(state.registered_at, state.last_tick_at or state.registered_at)
        oldest = now - schedule.catch_up
        if start < oldest:
            self._report_skipped(schedule, start, oldest)
            start = oldest
        until = now + timedelta(seconds=self.lookahead)
        for tick in ticks_between(schedule.trigger, start, until):
            job = schedule.new_job(tick)
            job_id = await store.cron_claim_tick(name=schedule.name, tick_at=tick, job=job)
            if job_id is not None:
                self.on_enqueued([job])
                late = " (catching up)" if tick < now - timedelta(seconds=self.interval) else ""
                logger.info(
                    "schedule %s: enqueued job %d for %s%s", schedule.name, job_id, tick, late
                )

    def _report_skipped(self, schedule: Schedule, start: datetime, oldest: datetime) -> None:
        """Warn once about ticks in ``(start, oldest]``, the part of a gap beyond the
        catch-up window."""
        since = max(start, self._reported.get(schedule.name, start))
        first = next_tick(schedule.trigger, since)
        self._reported[schedule.name] = oldest
        if first is None or first > oldest:
            return
        logger.warning(
            "schedule %s: skipped the ticks from %s to %s, older than its catch-up window "
            "of %s (were the workers down?)",
            schedule.name,
            first,
            oldest,
            schedule.catch_up,
        )

    async def _prune(self, store: Backend, now: datetime) -> None:
        if self._pruned_at is not None and now - self._pruned_at < timedelta(
            seconds=self.prune_interval
        ):
            return
        self._pruned_at = now
        window = max((s.catch_up for s in self.schedules), default=timedelta(0))
        pruned = await store.cron_prune_ticks(before=now - window - TICK_RETENTION)
        if pruned:
            logger.info("forgot %d schedule tick(s) older than a day", pruned)


def schedule_chores(
    schedules: Sequence[Schedule],
    interval: float,
    on_enqueued: Callable[[Sequence[NewJob]], None] = _ignore,
) -> list[ScheduleTicks]:
    """The chore for ``schedules`` (none when there are none), run every ``interval``
    seconds and claiming two periods ahead; ``on_enqueued`` hears of each job a tick
    enqueued."""
    if not schedules:
        return []
    return [
        ScheduleTicks(
            schedules=list(schedules),
            interval=interval,
            lookahead=2 * interval,
            on_enqueued=on_enqueued,
        )
    ]
