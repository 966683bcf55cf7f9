"""An idle worker process picks up a job enqueued by another process in milliseconds,
not at its next poll: with ``--poll-interval 30`` (and maintenance every 30 s, so that
no promotion of due jobs helps either), jobs enqueued one at a time by another app
instance start with a p50 far below the poll interval, and a delayed job starts just
after its run time. Pickup is measured on the store's clock (``started_at`` minus
``created_at``, or minus ``run_at`` for a delayed job)."""

from __future__ import annotations

import statistics
from datetime import timedelta

import pytest

from cli._support import eventually
from workhorse import Workhorse
from workhorse.handle import Job
from workhorse.jobs import JobRecord, JobState

from .conftest import SiteFactory

IDLE = ("--poll-interval", "30", "--reclaim-interval", "30", "--concurrency", "4")
JOBS = 40
P50_BOUND = 0.1
"""Seconds: far below the 30 s poll, yet loose enough for a loaded machine."""
LATE_BOUND = 1.5
"""Seconds a delayed job may start after its run time (the poll would make it 30)."""

pytestmark = pytest.mark.timeout(300)


async def _finished(job: Job[int], app: Workhorse) -> JobRecord:
    record: JobRecord | None = None

    async def done() -> bool:
        nonlocal record
        record = await app.get_job(job.id)
        return record.state is JobState.COMPLETED

    await eventually(done, timeout=40, what=f"job {job.id} to complete", every=0.005)
    assert record is not None
    return record


def _seconds(delta: timedelta | None) -> float:
    assert delta is not None
    return delta.total_seconds()


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_an_idle_worker_wakes_for_work_from_another_process(
    make_site: SiteFactory, kind: str
) -> None:
    site = await make_site(kind)
    worker = site.start_worker(*IDLE)
    app = Workhorse(site.url)

    @app.task(name="acceptance.effect")
    async def effect(n: int, ms: float) -> int:
        return n

    try:

        async def registered() -> bool:
            return worker.pid in await site.registered()

        await eventually(registered, timeout=60, what=f"the worker\n{site.logs()}")
        # The first job may be taken by the worker's first look for work: not measured.
        await _finished(await effect.enqueue(-1, 0), app)

        pickups = []
        for n in range(JOBS):
            record = await _finished(await effect.enqueue(n, 0), app)
            assert record.started_at is not None
            pickups.append(_seconds(record.started_at - record.created_at))
        quantiles = statistics.quantiles(pickups, n=100, method="inclusive")
        p50, p99 = statistics.median(pickups), quantiles[98]

        lateness = []
        for delay in (0.3, 0.6, 1.0):
            record = await _finished(await effect.options(delay=delay).enqueue(0, 0), app)
            assert record.started_at is not None
            lateness.append(_seconds(record.started_at - record.run_at))
        print(
            f"\nidle pickup [{kind}] over {JOBS} jobs from another process: "
            f"p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, max {max(pickups) * 1000:.1f} ms; "
            f"delayed jobs started {', '.join(f'{s * 1000:.0f}' for s in lateness)} ms "
            "after their run time (poll interval 30 s)"
        )
        assert p50 < P50_BOUND, pickups
        assert max(pickups) < 10, "no job waited for the 30 s poll"
        assert all(0 <= late < LATE_BOUND for late in lateness), lateness
    finally:
        await app.aclose()
    assert worker.proc.poll() is None, site.logs()
