"""SIGKILL a random worker, again and again, while three workers drain 10,000 jobs; each
killed worker is restarted at once.

Bounds: every job ends completed, each with at least one effect in the ledger;
duplicated effects <= the jobs the killed workers held at their deaths; no job stays
``running`` past its lease expiry longer than one sweep, or a leader handover where the
victim was the maintenance leader (``overdue.py``); the last workers drain cleanly on
SIGTERM; no "database is locked" reaches a log. The jobs are short (1-5 ms) so that the
whole run, kills and recoveries included, fits CI's budget.
"""

from __future__ import annotations

import signal

import pytest

from workhorse.backends.base import NewJob
from workhorse.jobs import JobState

from ._site import LOCKED, ChaosSite
from .conftest import SiteFactory

JOBS = 10_000
WORKERS = 3
CONCURRENCY = 8
KILLS = 8
KIND = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.mark.parametrize("kind", KIND)
async def test_random_sigkills_lose_nothing(make_site: SiteFactory, kind: str) -> None:
    site = await make_site(kind)
    rng = site.rng
    ids = await site.insert(
        [NewJob(task="chaos.effect", args=f"[{rng.uniform(1, 5):.2f}]") for _ in range(JOBS)]
    )
    site.fleet.start(WORKERS, concurrency=CONCURRENCY)
    # Kill moments: after random shares of the jobs are done, spread over 5-85 %.
    thresholds = sorted(int(JOBS * rng.uniform(0.05, 0.85)) for _ in range(KILLS))
    async with site.monitor.watching():
        for threshold in thresholds:
            await _kill_one(site, threshold)
        await site.wait_final(JOBS)
    site.report(f"{KILLS} SIGKILLs during {JOBS} jobs")
    await site.assert_bounds(ids)
    codes = [worker.proc.returncode for worker in site.fleet.retired]
    assert codes == [-signal.SIGKILL] * KILLS, f"only the test's kills: {codes}"
    assert site.fleet.stop_all() == [0] * WORKERS, site.context()
    assert not LOCKED.search(site.fleet.output()), "no 'database is locked' may reach a log"


async def _kill_one(site: ChaosSite, threshold: int) -> None:
    """Once ``threshold`` jobs are completed, SIGKILL a random worker that holds running
    jobs, note how many it held and whether it led, and start its replacement."""
    candidates: list[int] = []

    async def ready() -> bool:
        site.fleet.replace_dead()
        if await site.count(JobState.COMPLETED) < threshold:
            return False
        running = await site.monitor.running()
        holders = {job.worker_id for job in running}
        candidates[:] = [
            slot
            for slot, worker in enumerate(site.fleet.slots)
            if await site.worker_id(worker) in holders
        ]
        return bool(candidates)

    await site.until(ready, f"a kill at {threshold} jobs")
    slot = site.rng.choice(candidates)
    fault = await site.strike(site.fleet.slots[slot], signal.SIGKILL)
    # Dead now: what the store says it held is exactly what it may have left half done.
    fault.held = len(await site.monitor.held_by(fault.worker_id))
    site.fleet.replace(slot)
