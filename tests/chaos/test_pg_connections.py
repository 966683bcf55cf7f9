"""PostgreSQL terminates the workers' connections again and again mid-run
(``pg_terminate_backend`` on their ``application_name``: what a failover, a pooler
restart or an operator does), pooled and LISTEN connections alike, while three workers
drain 6,000 jobs.

Bounds: every job ends completed with >= 1 effect; no worker process exits; duplicated
effects <= the jobs running at the terminations; no job stays ``running`` past its lease
expiry longer than one sweep (``OVERDUE_BOUND``: every worker lives, the leader too, and
each call survives a terminated connection); the workers still drain cleanly on SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import psycopg
import pytest

from conftest import PG_URL
from workhorse.backends.base import NewJob
from workhorse.jobs import JobState

from ._site import ChaosSite
from .conftest import SiteFactory
from .overdue import Fault

pytestmark = pytest.mark.postgres

JOBS = 6_000
WORKERS = 3
CONCURRENCY = 8
PAUSE = (0.1, 0.4)
"""Seconds between two rounds of terminations (uniform)."""


@contextlib.asynccontextmanager
async def terminating(site: ChaosSite, app_name: str) -> AsyncIterator[list[int]]:
    """Terminate every connection named ``app_name`` at random moments for the duration
    of the block; yields the number terminated per round."""
    rounds: list[int] = []

    async def loop() -> None:
        async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as admin:
            while True:
                await asyncio.sleep(site.rng.uniform(*PAUSE))
                running = len(await site.monitor.running())
                cursor = await admin.execute(
                    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) "
                    "FROM pg_stat_activity WHERE application_name = %s",
                    (app_name,),
                )
                row = await cursor.fetchone()
                killed = int(row[0]) if row else 0
                rounds.append(killed)
                if killed:
                    site.faults.append(Fault(datetime.now(UTC), held=running))

    task = asyncio.create_task(loop())
    try:
        yield rounds
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_terminated_connections_lose_nothing(make_site: SiteFactory) -> None:
    app_name = f"wh-chaos-{uuid.uuid4().hex[:10]}"
    site = await make_site("postgres", worker_query=f"&application_name={app_name}")
    ids = await site.insert(
        [NewJob(task="chaos.effect", args=f"[{site.rng.uniform(1, 5):.2f}]") for _ in range(JOBS)]
    )
    site.fleet.start(WORKERS, concurrency=CONCURRENCY)
    async with site.monitor.watching(), terminating(site, app_name) as rounds:

        async def all_done() -> bool:
            exited = [w for w in site.fleet.slots if w.proc.poll() is not None]
            assert not exited, f"a worker exited: {exited}; {site.context()}"
            return await site.count(JobState.COMPLETED) == JOBS

        await site.until(all_done, f"{JOBS} completed")
    site.report(f"{sum(rounds)} connections terminated in {len(rounds)} rounds")

    assert sum(1 for killed in rounds if killed) >= 3, f"too few terminations: {rounds}"
    await site.assert_bounds(ids)
    assert site.fleet.retired == [], "no worker process exited"
    assert site.fleet.stop_all() == [0] * WORKERS, site.context()
