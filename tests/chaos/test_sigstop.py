"""SIGSTOP a worker in the middle of its jobs, keep it frozen past its lease until
another worker has run those jobs again, then SIGCONT it (a VM pause, a GC stall, a
laptop lid).

The frozen attempts run in threads (``chaos.blocking``), which nothing can interrupt:
when the worker wakes up they finish and record their effect (a duplicate, within the
bound). The worker itself notices that their leases are gone (its lease watchdog, or the
store's answer to its first heartbeat) and never sends their outcomes; so that the
store's own fence is exercised whatever the worker's timing, the test also replays the
late writes the frozen worker could have made, with its real lease tokens (read from
the table at the stop): heartbeat, progress, completion, release. All are refused.

Bounds: every job ends completed, with the outcome of its *new* attempt (the attempt
number and process the result names are the re-run's), and the record a stopped job
had once the other worker finished it never changes again; the woken worker reports
each of its stopped attempts as lost; duplicated effects <= the jobs it held when
stopped; no job stays ``running`` past its lease expiry longer than one sweep, or a
leader handover where the frozen worker was the maintenance leader (``overdue.py``); the
woken worker lives on and drains cleanly.
"""

from __future__ import annotations

import re
import signal

import pytest

from workhorse.backends import Backend
from workhorse.backends.base import Lease, NewJob, Outcome, ProgressUpdate
from workhorse.jobs import JobState

from .conftest import SiteFactory

JOBS = 60
SECONDS = 0.3
CONCURRENCY = 4
KIND = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
_NOTICED = re.compile(r"job (\d+): (?:stopping attempt|lease lost; outcome of attempt)")
"""What a worker logs when it learns that it lost an attempt's lease."""


@pytest.mark.parametrize("kind", KIND)
async def test_a_stopped_worker_cannot_overwrite_the_new_attempt(
    make_site: SiteFactory, kind: str
) -> None:
    site = await make_site(kind)
    ids = await site.insert(
        [NewJob(task="chaos.blocking", args=f"[{SECONDS}]", max_attempts=5) for _ in range(JOBS)]
    )
    site.fleet.start(2, concurrency=CONCURRENCY)
    frozen, other = site.fleet.slots
    frozen_id: str | None = None
    after = site.rng.randrange(0, JOBS // 3)  # completed jobs before the stop
    async with site.monitor.watching():

        async def frozen_holds_jobs() -> bool:
            nonlocal frozen_id
            frozen_id = await site.worker_id(frozen)
            held = await site.monitor.held_by(frozen_id)
            done = await site.count(JobState.COMPLETED)
            return len(held) >= 2 and done >= after

        await site.until(frozen_holds_jobs, "jobs to stop")
        fault = await site.strike(frozen, signal.SIGSTOP)
        leases = await site.leases_of(frozen_id)
        stopped = [lease.job_id for lease in leases]
        fault.held = len(stopped)

        async def rerun_elsewhere() -> bool:
            records = await site.records(stopped)
            return all(r.state is JobState.COMPLETED for r in records.values())

        await site.until(rerun_elsewhere, "the re-runs")
        settled = await site.records(stopped)
        await _late_writes_are_refused(site.store, leases)
        assert await site.records(stopped) == settled, "a late write changed a finished job"
        frozen.signal(signal.SIGCONT)

        def noticed() -> set[int]:
            return {int(n) for n in _NOTICED.findall(frozen.output())} & set(stopped)

        async def all_noticed() -> bool:
            return noticed() == set(stopped)

        await site.until(all_noticed, "the lost leases")
        await site.wait_final(JOBS)
    site.report(f"SIGSTOP of a worker holding {len(stopped)} jobs")

    assert await site.records(stopped) == settled, "the woken worker changed a finished job"
    for record in settled.values():
        attempt, pid = record.result
        assert pid == other.pid, f"job {record.id}: the stopped attempt's result was kept"
        assert attempt == record.attempt >= 2, record
    await site.assert_bounds(ids)
    assert frozen.proc.poll() is None, "the woken worker lives on"
    assert site.fleet.retired == [], "no worker died"
    assert site.fleet.stop_all() == [0, 0], site.context()


async def _late_writes_are_refused(store: Backend, leases: list[Lease]) -> None:
    """Every write the frozen worker could make with its old leases is refused."""
    reply = await store.job_heartbeat(worker_id="frozen", leases=leases, lease_seconds=60)
    assert reply.lost == {lease.job_id for lease in leases}
    await store.job_set_progress(
        [
            ProgressUpdate(job_id=lease.job_id, lease_token=lease.token, progress=1)
            for lease in leases
        ]
    )
    outcomes = [
        Outcome(job_id=lease.job_id, lease_token=lease.token, state=state, result="[0, 0]")
        for lease in leases
        for state in (JobState.COMPLETED, JobState.FAILED, JobState.SCHEDULED)
    ]
    assert await store.job_complete_many(outcomes) == [False] * len(outcomes)
    assert await store.job_release(leases) == 0
