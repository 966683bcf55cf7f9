"""Job statistics in a memory store: the same rows as the SQL stores, in dictionaries
under a lock of their own."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime

from workhorse.backends import _stats
from workhorse.backends.base import EventCount, JobTotals, MinuteCount, RunTimeCount


class MemoryStats:
    """The statistics methods of :class:`~workhorse.backends.memory.MemoryBackend`."""

    def __init__(self) -> None:
        self._stats_lock = threading.Lock()
        self._counts: dict[tuple[int, str, str, str, str], int] = {}
        self._run_times: dict[tuple[str, str, float], tuple[int, float]] = {}
        super().__init__()  # the next table of MemoryBackend

    async def stats_add(
        self, *, counts: Sequence[EventCount], run_times: Sequence[RunTimeCount]
    ) -> None:
        """Add to each minute, the totals and the histogram buckets."""
        rows = _stats.count_rows(counts)
        buckets = _stats.run_time_rows(run_times)
        with self._stats_lock:
            for minute, tenant, queue, task, event, n in rows:
                key = (minute, tenant, queue, task, event)
                self._counts[key] = self._counts.get(key, 0) + n
            for queue, task, le, n, seconds in buckets:
                had, had_seconds = self._run_times.get((queue, task, le), (0, 0.0))
                self._run_times[(queue, task, le)] = (had + n, had_seconds + seconds)

    async def stats_totals(self) -> JobTotals:
        """The totals per queue, task and event, and the histograms."""
        summed: dict[tuple[str, str, str], int] = {}
        with self._stats_lock:
            for (minute, _, queue, task, event), n in self._counts.items():
                if minute == _stats.TOTAL_MINUTE:
                    summed[(queue, task, event)] = summed.get((queue, task, event), 0) + n
            buckets = [(*key, n, s) for key, (n, s) in sorted(self._run_times.items())]
        return _stats.job_totals([(*key, n) for key, n in sorted(summed.items())], buckets)

    async def stats_timeline(
        self, *, since: datetime, tenant: str | None = None
    ) -> list[MinuteCount]:
        """Counts per minute and event since ``since``."""
        first = max(_stats.minute_of(since), _stats.TOTAL_MINUTE + 1)
        summed: dict[tuple[int, str], int] = {}
        with self._stats_lock:
            for (minute, stored_tenant, _, _, event), n in self._counts.items():
                if minute < first or (tenant is not None and stored_tenant != tenant):
                    continue
                summed[(minute, event)] = summed.get((minute, event), 0) + n
        return _stats.timeline((*key, n) for key, n in sorted(summed.items()))

    async def stats_prune(self, *, before: datetime) -> int:
        """Drop the minutes before ``before``; the totals stay."""
        cutoff = _stats.minute_of(before)
        with self._stats_lock:
            doomed = [key for key in self._counts if _stats.TOTAL_MINUTE < key[0] < cutoff]
            for key in doomed:
                del self._counts[key]
        return len(doomed)
