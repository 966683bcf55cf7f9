"""A poison pill: a task that SIGKILLs the worker process running it, on every attempt.
Two workers share the queue with 300 ordinary jobs; whatever dies is restarted.

Bounds: the pill ends ``failed`` (``LeaseExpiredError``) after exactly its 3 attempts,
and ran exactly 3 times (ledger); it killed exactly 3 workers; every ordinary job ends
completed (the queue was not held up: ordinary jobs go on completing between the
pill's attempts), each with >= 1 effect; duplicated effects <= the jobs in flight
at the deaths; no job stays ``running`` past its lease expiry longer than one sweep, or
a leader handover where the dead worker was the maintenance leader (``overdue.py``).

The jobs that share a worker with the pill die with it once, and a crash counts an
attempt (nobody can tell which job killed the process). From then on each of them is a
job whose previous attempt was lost, and such a job only starts in an otherwise empty
worker: the pill dies alone, and its neighbours complete on their next attempt even with
the default 3 attempts (the second test).
"""

from __future__ import annotations

import signal

import pytest

from workhorse.backends.base import NewJob
from workhorse.jobs import JobState

from ._site import ChaosSite
from .conftest import SiteFactory

GOOD = 300
PILL_ATTEMPTS = 3
CONCURRENCY = 4
KIND = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.mark.parametrize("kind", KIND)
async def test_a_poison_pill_fails_and_the_queue_goes_on(make_site: SiteFactory, kind: str) -> None:
    site = await make_site(kind)
    (pill,) = await site.insert([NewJob(task="chaos.poison", max_attempts=PILL_ATTEMPTS)])
    good = await site.insert(
        [
            NewJob(task="chaos.effect", args=f"[{site.rng.uniform(5, 20):.1f}]", max_attempts=10)
            for _ in range(GOOD)
        ]
    )
    site.fleet.start(2, concurrency=CONCURRENCY)
    deaths: list[int] = []
    async with site.monitor.watching():

        async def pill_done() -> bool:
            await _note_deaths(site, deaths)
            record = await site.store.job_get(job_id=pill)
            return record is not None and record.state.is_final

        await site.until(pill_done, "the pill to fail")
        completed_by_then = await site.count(JobState.COMPLETED)

        async def all_final() -> bool:
            await _note_deaths(site, deaths)
            return await site.count(JobState.COMPLETED, JobState.FAILED) == GOOD + 1

        await site.until(all_final, "every job final")
    site.report(f"a poison pill among {GOOD} jobs, {len(deaths)} worker deaths")

    record = await site.store.job_get(job_id=pill)
    assert record is not None
    assert record.state is JobState.FAILED, record
    assert record.attempt == PILL_ATTEMPTS, record
    assert record.error is not None
    assert record.error.type == "LeaseExpiredError", record.error
    assert site.ledger.counts()[pill] == PILL_ATTEMPTS, "the pill ran exactly max_attempts times"
    assert deaths == [-signal.SIGKILL] * PILL_ATTEMPTS, site.context()
    assert completed_by_then > 0, "ordinary jobs completed while the pill was being retried"
    await site.assert_bounds([pill, *good], completed=good)
    assert site.fleet.stop_all() == [0, 0], site.context()


async def _note_deaths(site: ChaosSite, deaths: list[int]) -> None:
    """Restart dead workers; record their exit codes, and each death as a fault with
    what the dead one held."""
    for slot, worker in enumerate(site.fleet.slots):
        code = worker.proc.poll()
        if code is None:
            continue
        deaths.append(code)
        fault = await site.death(worker)
        # Jobs it held (its pill among them) stay running until their lease expires.
        fault.held = len(await site.monitor.held_by(fault.worker_id))
        site.fleet.replace(slot)


@pytest.mark.parametrize("kind", KIND)
async def test_the_pill_does_not_take_its_neighbours_down(
    make_site: SiteFactory, kind: str
) -> None:
    """One worker, four slots, the pill and three ordinary jobs at the default attempts:
    the first crash takes all four down, then the pill runs alone and fails, and its
    neighbours complete on their second attempt."""
    site = await make_site(kind)
    (pill,) = await site.insert([NewJob(task="chaos.poison", max_attempts=PILL_ATTEMPTS)])
    good = await site.insert([NewJob(task="chaos.effect", args="[5]") for _ in range(3)])
    site.fleet.start(1, concurrency=CONCURRENCY)
    deaths: list[int] = []
    async with site.monitor.watching():

        async def all_final() -> bool:
            await _note_deaths(site, deaths)
            return await site.count(JobState.COMPLETED, JobState.FAILED) == 4

        await site.until(all_final, "every job final")
    site.report(f"a poison pill beside 3 jobs in one worker, {len(deaths)} worker deaths")
    assert deaths == [-signal.SIGKILL] * PILL_ATTEMPTS, site.context()
    record = await site.store.job_get(job_id=pill)
    assert record is not None
    assert (record.state, record.attempt) == (JobState.FAILED, PILL_ATTEMPTS), record
    for job_id in good:
        neighbour = await site.store.job_get(job_id=job_id)
        assert neighbour is not None
        # Attempt 1 died with the pill; attempt 2 ran alone or beside other survivors.
        assert (neighbour.state, neighbour.attempt) == (JobState.COMPLETED, 2), neighbour
    await site.assert_bounds([pill, *good], completed=good)
    assert site.fleet.stop_all() == [0], site.context()
