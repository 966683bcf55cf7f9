"""The job events a process counted and has not written to the store yet."""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple

from workhorse.backends._stats import MINUTE, minute_at
from workhorse.backends.base import EventCount, JobEvent, RunTimeCount

RUN_TIME_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, math.inf,
)  # fmt: skip
"""Upper bounds (seconds) of the run-time histogram's buckets."""


def bucket_bound(seconds: float) -> float:
    """The bound of the histogram bucket ``seconds`` falls in (bounds are inclusive)."""
    return RUN_TIME_BUCKETS[bisect.bisect_left(RUN_TIME_BUCKETS, seconds)]


class JobKey(NamedTuple):
    """What a job is counted under."""

    queue: str
    task: str
    tenant: str | None


_Counts = dict[tuple[int, JobEvent, JobKey], int]
_RunTimes = dict[tuple[str, str, float], tuple[int, float]]


@dataclass(frozen=True, slots=True)
class StatsBatch:
    """Everything a tally held when it was taken: one ``stats_add``."""

    raw_counts: _Counts
    raw_run_times: _RunTimes

    def counts(self) -> list[EventCount]:
        """The counts, per minute."""
        return [
            EventCount(
                event=event,
                queue=job.queue,
                task=job.task,
                count=n,
                tenant=job.tenant,
                minute=minute_at(minute),
            )
            for (minute, event, job), n in self.raw_counts.items()
        ]

    def run_times(self) -> list[RunTimeCount]:
        """The histogram buckets."""
        return [
            RunTimeCount(queue=queue, task=task, le=le, count=n, seconds=seconds)
            for (queue, task, le), (n, seconds) in self.raw_run_times.items()
        ]


class Tally:
    """Counts of job events per minute and run-time histogram buckets, summed in memory
    until :meth:`take` (thread-safe: any thread or event loop of the process may count).
    ``clock`` gives epoch seconds, for the minute an event is counted in."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: _Counts = {}
        self._run_times: _RunTimes = {}

    def __bool__(self) -> bool:
        with self._lock:
            return bool(self._counts or self._run_times)

    def add(self, event: JobEvent, jobs: Iterable[JobKey]) -> None:
        """Count ``event`` once for each job of ``jobs``, in the current minute."""
        minute = math.floor(self._clock() / MINUTE) * MINUTE
        with self._lock:
            for job in jobs:
                key = (minute, event, job)
                self._counts[key] = self._counts.get(key, 0) + 1

    def observe(self, *, queue: str, task: str, seconds: float) -> None:
        """Count an attempt of ``task`` that ran ``seconds``."""
        key = (queue, task, bucket_bound(seconds))
        with self._lock:
            count, total = self._run_times.get(key, (0, 0.0))
            self._run_times[key] = (count + 1, total + seconds)

    def take(self) -> StatsBatch | None:
        """Everything counted so far (None if nothing), leaving the tally empty."""
        with self._lock:
            if not self._counts and not self._run_times:
                return None
            batch = StatsBatch(self._counts, self._run_times)
            self._counts, self._run_times = {}, {}
        return batch

    def put_back(self, batch: StatsBatch) -> None:
        """Return a batch that could not be written, to go with the next one."""
        with self._lock:
            for key, n in batch.raw_counts.items():
                self._counts[key] = self._counts.get(key, 0) + n
            for bucket, (n, seconds) in batch.raw_run_times.items():
                count, total = self._run_times.get(bucket, (0, 0.0))
                self._run_times[bucket] = (count + n, total + seconds)
