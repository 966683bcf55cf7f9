"""SIGKILL a worker process three times under load: no job is lost, duplicated effects
stay within the jobs that were in flight at the kills, and expired leases are reclaimed
promptly.

The kill moments are random; the seed is printed (run with ``-s`` to see it) and can be
replayed with ``WORKHORSE_CRASH_SEED=<seed>``.
"""

from __future__ import annotations

import os
import random
import signal
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from cli._support import WorkerProcess, eventually
from workhorse.backends.base import NewJob
from workhorse.jobs import JobRecord, JobState

from .conftest import FAST, Site, SiteFactory

JOBS = 2_000
KILLS = 3
CONCURRENCY = 8
LEASE_SLACK = 4.0
"""Longest a running job may outlive its lease: the leader may be the worker just killed,
so another one takes over after ``--leader-ttl`` (2 s), then sweeps within
``--reclaim-interval`` (0.5 s); the rest is scheduling noise on a loaded machine."""


@dataclass
class Monitor:
    """Watches the store while workers run: progress, and leases that outlive expiry."""

    site: Site
    completed: int = 0
    running: list[JobRecord] = field(default_factory=list)
    max_overdue: float = 0.0

    async def poll(self) -> None:
        """Take one snapshot."""
        self.completed = await self.site.count(JobState.COMPLETED)
        self.running = await self.site.jobs(JobState.RUNNING)
        now = datetime.now(UTC)
        for job in self.running:
            if job.lease_expires_at is not None:
                overdue = (now - job.lease_expires_at).total_seconds()
                self.max_overdue = max(self.max_overdue, overdue)

    def running_on(self, worker_id: str | None) -> list[JobRecord]:
        """Running jobs held by ``worker_id``."""
        return [job for job in self.running if job.worker_id == worker_id]


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_sigkill_loses_no_job(make_site: SiteFactory, kind: str) -> None:
    seed = int(os.environ.get("WORKHORSE_CRASH_SEED") or random.SystemRandom().randrange(10**6))
    print(f"\ncrash test [{kind}]: seed {seed} (replay: WORKHORSE_CRASH_SEED={seed})")
    rng = random.Random(seed)
    site = await make_site(kind)
    ids = await site.insert(
        [
            NewJob(task="acceptance.effect", args=f"[{n}, {rng.uniform(10, 50):.1f}]")
            for n in range(JOBS)
        ]
    )
    flags = ("--concurrency", str(CONCURRENCY), *FAST)
    started = time.monotonic()
    site.start_worker(*flags)
    victim = site.start_worker(*flags)
    monitor = Monitor(site)
    # Three kill moments, each in its own band of progress so that all of them fall
    # while work remains: 10-20 %, 30-40 %, 50-60 % of the jobs completed.
    thresholds = [int(JOBS * rng.uniform(0.1 + 0.2 * i, 0.2 + 0.2 * i)) for i in range(KILLS)]
    in_flight: list[int] = []
    for threshold in thresholds:
        victim = await _kill_when(site, monitor, victim, threshold, in_flight)
        victim = site.start_worker(*flags)

    async def all_completed() -> bool:
        await monitor.poll()
        return monitor.completed == JOBS

    await eventually(all_completed, timeout=90, what=f"{JOBS} completed jobs\n{site.logs()}")
    took = time.monotonic() - started

    effects = site.effects()
    duplicates = sum(count - 1 for count in effects.values())
    print(
        f"crash test [{kind}]: kills after {thresholds} completions, in flight at the kills "
        f"{in_flight}, duplicated effects {duplicates}, longest lease overdue "
        f"{monitor.max_overdue:.2f}s, all {JOBS} jobs done in {took:.1f}s"
    )
    assert set(effects) == set(ids), "every job's effect is recorded at least once"
    assert duplicates <= sum(in_flight)
    assert monitor.max_overdue <= LEASE_SLACK, site.logs()
    assert await site.count(JobState.RUNNING) == 0
    alive = [worker for worker in site.workers if worker.proc.poll() is None]

    async def all_registered() -> bool:
        return {w.pid for w in alive} <= set(await site.registered())

    await eventually(all_registered, timeout=30, what="the last restart to come up")
    for worker in alive:
        worker.signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0, site.logs()
    assert "locked" not in site.logs(), "no 'database is locked' may reach a log line"


async def _kill_when(
    site: Site, monitor: Monitor, victim: WorkerProcess, threshold: int, in_flight: list[int]
) -> WorkerProcess:
    """SIGKILL ``victim`` once ``threshold`` jobs are completed and it holds running jobs;
    record how many it held."""
    victim_id: str | None = None

    async def ready() -> bool:
        nonlocal victim_id
        await monitor.poll()
        victim_id = (await site.registered()).get(victim.pid)
        return monitor.completed >= threshold and bool(monitor.running_on(victim_id))

    await eventually(ready, timeout=60, what=f"the kill at {threshold} jobs\n{site.logs()}")
    victim.signal(signal.SIGKILL)
    assert victim.wait(timeout=10) == -signal.SIGKILL
    await monitor.poll()
    in_flight.append(len(monitor.running_on(victim_id)))
    return victim
