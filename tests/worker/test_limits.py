"""Limits kept by workers: two workers on one store never run more of a key, task or
queue than its cap at once, nor start more than a rate allows."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import timedelta

from workhorse import Workhorse
from workhorse.limits import Limit, Rate


async def test_a_per_tenant_limit_holds_across_two_workers(app: Workhorse) -> None:
    running: Counter[str] = Counter()
    peak: Counter[str] = Counter()

    @app.task(name="tests.tenant_work", limit=Limit("per-tenant", key="tenant", concurrency=2))
    async def work(tenant: str) -> None:
        running[tenant] += 1
        peak[tenant] = max(peak[tenant], running[tenant])
        await asyncio.sleep(0.1)
        running[tenant] -= 1

    @app.task(name="tests.free")
    async def free() -> None:
        await asyncio.sleep(0.05)

    async with app.worker(concurrency=8), app.worker(concurrency=8):
        jobs = [await work.options(tenant=t).enqueue(t) for t in "ab" for _ in range(8)]
        jobs += [await free.enqueue() for _ in range(6)]
        await asyncio.gather(*(job.result(timeout=20) for job in jobs))
    # Never above the cap; and the cap was reached (a claim may leave a key that another
    # claim holds at that instant to a later claim, so not necessarily for each key).
    assert set(peak) == {"a", "b"}
    assert max(peak.values()) == 2


async def test_task_and_queue_concurrency_hold(app: Workhorse) -> None:
    running: Counter[str] = Counter()
    peak: Counter[str] = Counter()

    async def record(name: str) -> None:
        running[name] += 1
        peak[name] = max(peak[name], running[name])
        await asyncio.sleep(0.1)
        running[name] -= 1

    @app.task(name="tests.single", concurrency=1)
    async def single() -> None:
        await record("single")

    @app.task(name="tests.mail", queue="mail")
    async def mail() -> None:
        await record("mail")

    app.limit_queue("mail", concurrency=3)
    async with app.worker(concurrency=8), app.worker(concurrency=8):
        jobs = [await single.enqueue() for _ in range(5)] + [await mail.enqueue() for _ in range(9)]
        await asyncio.gather(*(job.result(timeout=20) for job in jobs))
    assert peak["single"] == 1
    assert 2 <= peak["mail"] <= 3


async def test_a_rate_limit_spreads_starts_over_time(app: Workhorse) -> None:
    starts: list[float] = []

    @app.task(name="tests.rated", rate_limit=Rate(3, per=timedelta(seconds=1)))
    async def rated() -> None:
        starts.append(time.monotonic())

    async with app.worker(concurrency=8), app.worker(concurrency=8):
        jobs = [await rated.enqueue() for _ in range(7)]
        await asyncio.gather(*(job.result(timeout=20) for job in jobs))
    starts.sort()
    # Any three starts apart: the fourth is at least a window after the first.
    gaps = [later - earlier for earlier, later in zip(starts, starts[3:], strict=False)]
    assert len(starts) == 7
    # The window, less the time between a claim and its task reading the clock (the
    # store counts starts by its own clock, at the claim).
    assert min(gaps) >= 0.8


async def test_a_job_held_back_starts_as_soon_as_a_local_one_ends(app: Workhorse) -> None:
    """A limited worker does not wait for its next poll when it frees a key itself."""

    @app.task(name="tests.serial", limit=Limit("serial", concurrency=1))
    async def serial() -> None:
        await asyncio.sleep(0.01)

    async with app.worker(concurrency=4, poll_interval=5.0):
        jobs = [await serial.enqueue() for _ in range(10)]
        started = time.monotonic()
        await asyncio.gather(*(job.result(timeout=20) for job in jobs))
        elapsed = time.monotonic() - started
    assert elapsed < 4.0  # one 5-second poll per job would take 45 seconds
