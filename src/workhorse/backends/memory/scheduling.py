"""Periodic jobs in a memory store: schedule registrations and the ticks they claimed."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import cast

from workhorse.backends.base import NewJob, ScheduleState
from workhorse.backends.memory.rows import utc
from workhorse.backends.memory.table import JobTable

_RESERVED = -1
"""The job id of a tick whose job is being inserted."""


class MemorySchedules:
    """The schedule methods of :class:`~workhorse.backends.memory.MemoryBackend`."""

    def __init__(self) -> None:
        self._schedules_lock = threading.Lock()
        self._schedules: dict[str, ScheduleState] = {}
        self._ticks: dict[tuple[str, datetime], int] = {}
        super().__init__()

    async def schedule_states(self, *, names: Sequence[str]) -> dict[str, ScheduleState]:
        """The registered schedules among ``names``."""
        with self._schedules_lock:
            return {name: self._schedules[name] for name in names if name in self._schedules}

    async def schedule_register(self, *, names: Sequence[str], now: datetime | None = None) -> None:
        """Register the schedules not seen before."""
        moment = utc(now)
        with self._schedules_lock:
            for name in names:
                self._schedules.setdefault(name, ScheduleState(name=name, registered_at=moment))

    async def cron_claim_tick(self, *, name: str, tick_at: datetime, job: NewJob) -> int | None:
        """Reserve the tick, then insert its job (the reservation turns away the rest)."""
        tick = (name, utc(tick_at))
        with self._schedules_lock:
            if tick in self._ticks:
                return None
            self._ticks[tick] = _RESERVED
        try:
            (inserted,) = await cast(JobTable, self).job_insert_many([job])
        except BaseException:
            with self._schedules_lock:
                del self._ticks[tick]
            raise
        with self._schedules_lock:
            self._ticks[tick] = inserted.id
            state = self._schedules.get(name) or ScheduleState(name=name, registered_at=utc(None))
            if state.last_tick_at is None or state.last_tick_at < tick[1]:
                state = replace(state, last_tick_at=tick[1], last_job_id=inserted.id)
            self._schedules[name] = state
        return inserted.id

    async def cron_prune_ticks(self, *, before: datetime) -> int:
        """Forget ticks older than ``before``."""
        cutoff = utc(before)
        with self._schedules_lock:
            old = [tick for tick in self._ticks if tick[1] < cutoff]
            for tick in old:
                del self._ticks[tick]
        return len(old)
