"""Lease renewal, cancellation pickup and the worker's own heartbeat; and the watchdog
that stops work whose lease may have been taken while the store was unreachable."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from workhorse.backends.base import Backend, Lease
from workhorse.settings import WorkerSettings
from workhorse.worker.running import RunningJob, RunningJobs
from workhorse.worker.store_health import StoreHealth


class Heartbeat:
    """Every ``heartbeat_interval``: renew all held leases in one call, hand the jobs
    that were lost or asked to cancel to the worker, and record that the worker lives."""

    def __init__(
        self,
        store: Backend,
        settings: WorkerSettings,
        worker_id: str,
        running: RunningJobs,
        health: StoreHealth,
        *,
        pending_leases: Callable[[], list[Lease]],
        on_lost: Callable[[RunningJob, str], None],
        on_cancel: Callable[[RunningJob], None],
        on_stop_requested: Callable[[], None],
    ) -> None:
        self._store = store
        self._settings = settings
        self._worker_id = worker_id
        self._running = running
        self._health = health
        self._pending_leases = pending_leases
        self._on_lost = on_lost
        self._on_cancel = on_cancel
        self._on_stop_requested = on_stop_requested
        self.beats = 0
        """Successful lease renewals so far (beats with no lease to renew do not count)."""

    async def run(self) -> None:
        """Beat forever (until cancelled)."""
        while True:
            await self.beat()
            await asyncio.sleep(self._settings.heartbeat_interval)

    async def beat(self) -> None:
        """One renewal and one worker heartbeat. Store errors are logged and survived."""
        await self._renew()
        try:
            stop = await self._store.worker_heartbeat(
                worker_id=self._worker_id, running=len(self._running)
            )
        except Exception as exc:
            self._health.failed("heartbeat", "the worker's heartbeat", exc)
            return
        self._health.ok("heartbeat")
        if stop:
            self._on_stop_requested()

    async def _renew(self) -> None:
        held = list(self._running.jobs.values())
        leases = [running.lease for running in held] + self._pending_leases()
        if not leases:
            self._health.settled("leases")  # nothing to renew, so no failure to retry
            return
        started = time.monotonic()
        try:
            reply = await self._store.job_heartbeat(
                worker_id=self._worker_id, leases=leases, lease_seconds=self._settings.lease
            )
        except Exception as exc:
            self._health.failed("leases", f"renewing {len(leases)} lease(s)", exc)
            return
        self._health.ok("leases")
        self.beats += 1
        # Act on the attempts whose leases were sent: the same job id may have been
        # claimed again meanwhile, under a new lease, by this very worker.
        for running in held:
            if running.job.id in reply.lost:
                self._on_lost(running, "the store reports its lease as lost")
                continue
            running.renewed_at = max(running.renewed_at, started)
            if running.job.id in reply.cancel_requested:
                self._on_cancel(running)

    async def watch_leases(self) -> None:
        """Stop every job whose lease may expire before the next check: once the store
        sees it expired, another worker may take the job. Runs apart from :meth:`run` so
        that a renewal stuck on an unreachable store cannot delay it.

        ``renewed_at`` is taken before each request, so the store's expiry is never
        earlier than ``renewed_at + lease``. A job is stopped two check periods before
        that (at least half a lease after the last renewal), so that it ends before
        anyone else can claim it even when a check comes late."""
        lease = self._settings.lease
        period = min(self._settings.heartbeat_interval, lease / 4)
        while True:
            await asyncio.sleep(period)
            limit = time.monotonic() - (lease - 2 * period)
            for running in list(self._running.jobs.values()):
                if running.renewed_at <= limit:
                    self._on_lost(running, f"its lease could not be renewed for {lease}s")
