"""Four ``workhorse worker start`` processes and a separate enqueuer process share one
store: 20,000 jobs enqueued while the workers run, each completed exactly once (one
attempt, one effect), none left running. On a SQLite file and on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import sys
import time

import pytest

from cli._support import eventually
from workhorse.backends.base import JobFilter
from workhorse.jobs import JobRecord, JobState

from .conftest import Site, SiteFactory

JOBS = 20_000
WORKERS = 4

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


async def _every_job(site: Site, page: int = 5_000) -> list[JobRecord]:
    jobs: list[JobRecord] = []
    before: int | None = None
    while batch := await site.store.job_list(filter=JobFilter(), limit=page, before_id=before):
        jobs.extend(batch)
        before = batch[-1].id
    return jobs


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_four_workers_and_an_enqueuer_complete_every_job_once(
    make_site: SiteFactory, kind: str
) -> None:
    site = await make_site(kind)
    workers = [site.start_worker("--concurrency", "16") for _ in range(WORKERS)]

    async def all_registered() -> bool:
        return {w.pid for w in workers} <= set(await site.registered())

    await eventually(all_registered, timeout=60, what=f"{WORKERS} workers\n{site.logs()}")
    started = time.monotonic()
    out = site.tmp / "enqueued.json"
    enqueuer = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.acceptance.enqueuer",
        str(JOBS),
        str(out),
        str(random.SystemRandom().randrange(10**6)),
        cwd=site.tmp,
        env=site.env,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(enqueuer.communicate(), 300)
    assert enqueuer.returncode == 0, stderr.decode()
    enqueued = time.monotonic() - started
    ids = json.loads(out.read_text())
    assert len(set(ids)) == JOBS

    async def all_completed() -> bool:
        return await site.count(JobState.COMPLETED) == JOBS

    await eventually(all_completed, timeout=300, what=f"{JOBS} completions\n{site.logs()}")
    took = time.monotonic() - started
    print(
        f"\n{WORKERS} workers [{kind}]: {JOBS} jobs enqueued in {enqueued:.1f}s by another "
        f"process, all completed after {took:.1f}s ({JOBS / took:,.0f} jobs/s)"
    )

    jobs = await _every_job(site)
    assert sorted(job.id for job in jobs) == sorted(ids), "the store holds exactly these jobs"
    assert {job.state for job in jobs} == {JobState.COMPLETED}
    assert {job.attempt for job in jobs} == {1}, "no job was claimed twice or run again"
    assert await site.count(JobState.RUNNING) == 0
    assert site.effects() == dict.fromkeys(ids, 1), "one effect per job"
    ran_on = {job.worker_id for job in jobs}
    assert len(ran_on) > 1, f"the workers shared the work: {ran_on}"

    for worker in workers:
        worker.signal(signal.SIGTERM)
    for worker in workers:
        assert worker.wait(timeout=60) == 0, site.logs()
