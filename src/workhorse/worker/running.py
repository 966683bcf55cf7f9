"""The jobs a worker is running: their leases, contexts and tasks, and the free slots."""

from __future__ import annotations

import asyncio
import enum
import math
import time
from dataclasses import dataclass, field

from workhorse.backends.base import ClaimedJob, Lease
from workhorse.context import JobContext

AVERAGE_WEIGHT = 1 / 8
"""Weight of the newest sample in the worker's moving averages (attempts, claims)."""


def moving_average(average: float, sample: float) -> float:
    """``average`` moved by :data:`AVERAGE_WEIGHT` of the way towards ``sample``."""
    return average + (sample - average) * AVERAGE_WEIGHT


class StopReason(enum.Enum):
    """Why the worker stopped an attempt before it ended by itself."""

    CANCEL = "cancel"
    """Cancellation was requested and the cancel grace ran out: the job ends cancelled."""
    LOST = "lost"
    """The lease is (or may be) someone else's now: no outcome may be written."""
    SHUTDOWN = "shutdown"
    """The worker stops and the shutdown grace ran out: the job goes back to the queue."""


@dataclass(eq=False, slots=True)
class RunningJob:
    """One attempt in progress."""

    job: ClaimedJob
    ctx: JobContext
    renewed_at: float
    """Monotonic time at which the lease was last known to be extended (taken *before*
    the claim or heartbeat request, so the store's expiry is never earlier)."""
    task: asyncio.Task[None] | None = None
    launched_at: float = field(default_factory=time.monotonic)
    stop_reason: StopReason | None = None
    cancel_requested: bool = False
    cancel_timer: asyncio.TimerHandle | None = None

    @property
    def lease(self) -> Lease:
        """The lease this attempt runs under."""
        return Lease(job_id=self.job.id, token=self.job.lease_token)


@dataclass(eq=False)
class RunningJobs:
    """The running attempts of one worker, keyed by job id, within ``capacity`` slots."""

    capacity: int
    jobs: dict[int, RunningJob] = field(default_factory=dict)
    freed: asyncio.Event = field(default_factory=asyncio.Event)
    """Set whenever a slot frees up (the producer clears it before waiting)."""
    run_time: float = math.inf
    """Seconds the recent attempts held their slots, a moving average (infinite until
    one has ended)."""

    def __len__(self) -> int:
        return len(self.jobs)

    @property
    def free(self) -> int:
        """Slots not in use."""
        return max(0, self.capacity - len(self.jobs))

    def add(self, running: RunningJob) -> None:
        """Track a new attempt."""
        self.jobs[running.job.id] = running

    def remove(self, running: RunningJob) -> None:
        """Forget an attempt that ended, freeing its slot."""
        if self.jobs.get(running.job.id) is running:
            del self.jobs[running.job.id]
            self.freed.set()
            held = time.monotonic() - running.launched_at
            average = self.run_time
            self.run_time = held if average == math.inf else moving_average(average, held)

    def get(self, job_id: int) -> RunningJob | None:
        """The attempt of ``job_id``, if running here."""
        return self.jobs.get(job_id)

    def leases(self) -> list[Lease]:
        """The leases of every running attempt."""
        return [running.lease for running in self.jobs.values()]
