"""What a worker adds to the job statistics: each attempt it starts, and once its outcome
is stored, how it ended (completed, retried, failed, cancelled) and how long it took,
from its start to its outcome being stored (the write adds a few milliseconds).

An attempt whose worker died (or lost its lease) ends without an outcome from it: the
maintenance leader's reclaim counts that end (retried when the job runs again, failed when
it was the last attempt, cancelled when a cancel was asked), without a run time, since
its start was another process's. An attempt released to the queue at shutdown counts as
started only: it runs again, and that attempt counts too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from workhorse.backends.base import ClaimedJob, JobEvent, Lease, Outcome, ReclaimedJob
from workhorse.jobs import JobState
from workhorse.stats.tally import JobKey, Tally
from workhorse.worker.running import RunningJobs

_EVENTS = {
    JobState.COMPLETED: JobEvent.COMPLETED,
    JobState.SCHEDULED: JobEvent.RETRIED,
    JobState.FAILED: JobEvent.FAILED,
    JobState.CANCELLED: JobEvent.CANCELLED,
}
_RECLAIMED_EVENTS = {**_EVENTS, JobState.QUEUED: JobEvent.RETRIED}
"""How an attempt ended that the reclaim found lost, by the state it left the job in (a
reclaim requeues a job that has attempts left, where an outcome schedules its retry)."""


class AttemptMeter:
    """Counts one worker's attempts into ``tally`` and asks for a flush (``flush_soon``)
    after each batch. ``running`` and ``pending`` (the leases whose outcome waits to be
    stored) tell which attempts may still end with an outcome."""

    def __init__(
        self,
        tally: Tally,
        flush_soon: Callable[[], None],
        *,
        running: RunningJobs,
        pending: Callable[[], list[Lease]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tally = tally
        self._flush_soon = flush_soon
        self._running = running
        self._pending = pending
        self._clock = clock
        self._started: dict[int, tuple[JobKey, float]] = {}
        """Job id -> what it counts under, and when its attempt started."""

    def __len__(self) -> int:
        return len(self._started)

    def started(self, jobs: Sequence[ClaimedJob]) -> None:
        """Count the start of an attempt of each job."""
        now = self._clock()
        keys = [JobKey(job.queue, job.task, job.tenant) for job in jobs]
        for job, key in zip(jobs, keys, strict=True):
            self._started[job.id] = (key, now)
        self._tally.add(JobEvent.STARTED, keys)
        self._flush_soon()

    def ended(self, outcomes: Sequence[Outcome]) -> None:
        """Count stored outcomes by how they ended, with their run time."""
        now = self._clock()
        ended: dict[JobEvent, list[JobKey]] = {}
        for outcome in outcomes:
            start = self._started.pop(outcome.job_id, None)
            event = _EVENTS.get(outcome.state)
            if start is None or event is None:
                continue
            key, began = start
            ended.setdefault(event, []).append(key)
            self._tally.observe(queue=key.queue, task=key.task, seconds=now - began)
        for event, keys in ended.items():
            self._tally.add(event, keys)
        self._forget_silent_attempts()
        self._flush_soon()

    def reclaimed(self, jobs: Sequence[ReclaimedJob]) -> None:
        """Count the end of the attempts that the reclaim found lost (any worker's)."""
        ended: dict[JobEvent, list[JobKey]] = {}
        live = self._live()
        for job in jobs:
            # This worker's own lost attempt, whose outcome will be refused: forget its
            # start. Not while the job runs here or waits for its outcome, though: that
            # is the attempt that claimed it back after the reclaim committed (this call
            # may come later than the claim), and its end is still to count; a lost
            # attempt still running is forgotten once it ends (_forget_silent_attempts).
            if job.id not in live:
                self._started.pop(job.id, None)
            event = _RECLAIMED_EVENTS.get(job.state)
            if event is not None:
                ended.setdefault(event, []).append(JobKey(job.queue, job.task, job.tenant))
        for event, keys in ended.items():
            self._tally.add(event, keys)
        if ended:
            self._flush_soon()

    def _forget_silent_attempts(self) -> None:
        # Attempts that ended without an outcome leave their start behind; whatever is
        # neither running nor waiting for its outcome to be stored is such a one.
        if len(self._started) <= len(self._running):
            return
        live = self._live()
        for job_id in [job_id for job_id in self._started if job_id not in live]:
            del self._started[job_id]

    def _live(self) -> set[int]:
        """Jobs whose attempt here may still end with an outcome: running, or waiting
        for their outcome to be stored."""
        return set(self._running.jobs) | {lease.job_id for lease in self._pending()}
