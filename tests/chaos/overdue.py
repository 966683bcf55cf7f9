"""How long a job may still show ``running`` after its lease expired, and why.

Chaos workers run with a 2 s lease renewed every 0.5 s, a maintenance sweep every 0.5 s
and a 2 s leader lease (``WORKER_FLAGS`` in ``_site.py``). Only the maintenance leader
reclaims expired leases, so the bound depends on whether a leader was alive:

- while one is, a job whose lease expired is reclaimed by its next sweep:
  ``OVERDUE_BOUND`` = one sweep, plus ``SLACK``;
- when a fault took the leader down (killed, frozen), nobody reclaims anything until its
  leadership lapses (``LEADER_TTL`` after its last renewal) and another worker wins the
  next election (within a sweep) and sweeps: ``HANDOVER_BOUND`` = ``LEADER_TTL`` + two
  sweeps, plus ``SLACK``. That bound applies only to leases that expired while the
  leadership could be vacant: from ``LEADER_TTL`` + one sweep before the leader's fault
  (a later expiry waits less than the handover) up to the moment the job was seen
  overdue.

``SLACK`` covers the monitor's polling period and the latency of a loaded 2-core machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from workhorse.jobs import JobRecord

LEASE = 2.0
SWEEP = 0.5
LEADER_TTL = 2.0
SLACK = 1.0
OVERDUE_BOUND = SWEEP + SLACK
"""Lease expiry plus one sweep (plus slack) while a maintenance leader is alive."""
HANDOVER_BOUND = LEADER_TTL + 2 * SWEEP + SLACK
"""Lease expiry plus a leader handover (plus slack) when the leader itself went down."""


@dataclass
class Fault:
    """Something a test did to the workers: when, to whom, whether that worker was the
    maintenance leader then, and how many running jobs it may have left half done."""

    at: datetime
    worker_id: str | None = None
    led: bool = False
    held: int = 0


@dataclass(frozen=True, slots=True)
class Overdue:
    """A job seen ``running`` ``seconds`` past its lease expiry."""

    job: JobRecord
    seconds: float

    @property
    def expired_at(self) -> datetime:
        """When the lease ran out."""
        assert self.job.lease_expires_at is not None
        return self.job.lease_expires_at

    @property
    def seen_at(self) -> datetime:
        """When the job was seen still running."""
        return self.expired_at + timedelta(seconds=self.seconds)

    def bound(self, faults: Sequence[Fault]) -> float:
        """The longest this job may stay overdue, given the faults of the test."""
        vacancy = timedelta(seconds=LEADER_TTL + SWEEP)
        for fault in faults:
            if fault.led and self.expired_at - vacancy < fault.at <= self.seen_at:
                return HANDOVER_BOUND
        return OVERDUE_BOUND
