"""Claiming ahead of the free slots, two rounds while attempts are short and the jobs that
should start during two claims while they are longer: every job still runs once and
within the slots, and held jobs that wait too long go back to the queue."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, cast

from workhorse import JobSpec, JobState, Workhorse
from workhorse.backends.base import ClaimedJob, Lease
from workhorse.context import JobContext
from workhorse.worker.producer import Producer
from workhorse.worker.running import RunningJob, RunningJobs
from workhorse.worker.store_health import StoreHealth

from ._support import FAST, eventually, wait_event


async def test_short_jobs_are_claimed_ahead_and_each_runs_once_within_the_slots(
    app: Workhorse,
) -> None:
    jobs = 120
    # Each job takes a turn of the loop: the other attempts run meanwhile.
    ran, most, limits = await _drain_counted(app, jobs, work=0.0)
    assert sorted(ran) == list(range(jobs))
    assert most <= 4
    # The first claim fills the slots; once attempts proved short, claims ask for more
    # jobs than there are slots.
    assert limits[0] == 4
    assert max(limits) > 4, limits


async def test_jobs_that_last_are_claimed_no_more_than_the_free_slots(
    local_app: Workhorse,
) -> None:
    app = local_app

    @app.task(name="tests.lasts")
    async def lasts() -> None:
        # The task's own work: far longer than the claims (4 slots would hold a job
        # ahead only if two claims took 75 ms).
        await asyncio.sleep(0.3)

    limits = await _claim_limits_draining(app, [lasts.call() for _ in range(8)])
    assert limits
    assert max(limits) <= 4, limits


async def test_jobs_longer_than_short_are_claimed_ahead_by_what_ends_during_two_claims(
    app: Workhorse,
) -> None:
    jobs = 40
    # Jobs longer than AHEAD_RUN_TIME, and claims as long as they are: two claims see
    # the 4 slots free up twice over.
    ran, most, limits = await _drain_counted(app, jobs, work=0.02, claim_delay=0.02)
    assert sorted(ran) == list(range(jobs))
    assert most <= 4
    assert max(limits) > 4, limits


def _producer_with(capacity: int, run_time: float, claim_time: float) -> Producer:
    running = RunningJobs(capacity)
    running.run_time = run_time
    store = cast(Any, None)
    producer = Producer(
        store,
        replace(FAST, concurrency=capacity),
        "tests-worker",
        running,
        StoreHealth("tests-worker", store),
        launch=lambda jobs, renewed_at: None,
        release=lambda jobs: asyncio.sleep(0),
        may_claim=lambda: True,
    )
    producer._claim_time = claim_time
    return producer


async def test_how_many_jobs_are_held_ahead_follows_how_long_attempts_and_claims_take() -> None:
    # Short attempts: two rounds of slots.
    assert _producer_with(50, run_time=0.001, claim_time=0.002)._lookahead() == 100
    # 50 ms attempts, 2 ms claims: the 4 slots expected to free up during two claims.
    assert _producer_with(50, run_time=0.05, claim_time=0.002)._lookahead() == 4
    # Never more than two rounds, however slow the claims.
    assert _producer_with(4, run_time=0.05, claim_time=1.0)._lookahead() == 8
    # Attempts that outlast the claims by far, or none ended yet: nothing held.
    assert _producer_with(50, run_time=1.0, claim_time=0.002)._lookahead() == 0
    assert _producer_with(50, run_time=math.inf, claim_time=0.002)._lookahead() == 0


async def test_jobs_held_ahead_go_back_to_the_queue_when_no_slot_frees_in_time(
    local_app: Workhorse,
) -> None:
    app = local_app

    @app.task(name="tests.held")
    async def held() -> None: ...

    enqueued = await app.enqueue_many([held.call() for _ in range(4)])
    store = await app.backend()
    settings = replace(FAST, concurrency=2)  # held jobs wait a quarter of the 1.5 s lease
    running = RunningJobs(settings.concurrency)
    running.run_time = 0.0  # attempts look short: the producer claims ahead
    launched: list[int] = []
    released: set[int] = set()
    gave_back = asyncio.Event()

    def launch(jobs: Sequence[ClaimedJob], renewed_at: float) -> None:
        # The attempts never end: the held jobs find no free slot.
        for job in jobs:
            launched.append(job.id)
            ctx = cast(JobContext, None)
            running.add(RunningJob(job=job, ctx=ctx, renewed_at=renewed_at))

    async def release(jobs: Sequence[ClaimedJob]) -> None:
        released.update(job.id for job in jobs)
        await store.job_release([Lease(job.id, job.lease_token) for job in jobs])
        gave_back.set()

    producer = Producer(
        store,
        settings,
        "tests-worker",
        running,
        StoreHealth("tests-worker", store),
        launch=launch,
        release=release,
        may_claim=lambda: True,
    )
    loop = asyncio.create_task(producer.run())
    try:
        await wait_event(gave_back)
        # Until a slot frees, nothing more is claimed ahead (no churn of claims and
        # give-backs while every slot is stuck).
        assert producer._lookahead() == 0
    finally:
        producer.stop()
        await loop
    assert len(launched) == 2
    waiting = {job.id for job in enqueued} - set(launched)
    assert released == waiting
    for job_id in waiting:  # back in the queue, their attempt not counted
        record = await app.get_job(job_id)
        assert (record.state, record.attempt) == (JobState.QUEUED, 0)


async def _claim_limits_draining(
    app: Workhorse, calls: Sequence[JobSpec[None]], *, claim_delay: float = 0.0
) -> list[int]:
    """Enqueue ``calls``, drain them with a worker of 4 slots; the limit of each claim.
    ``claim_delay`` makes each claim take that much longer (a distant store)."""
    store = await app.backend()
    limits: list[int] = []
    claim = store.job_claim

    async def recording(**kwargs: Any) -> list[ClaimedJob]:
        limits.append(kwargs["limit"])
        if claim_delay:
            await asyncio.sleep(claim_delay)
        return await claim(**kwargs)

    store.job_claim = recording  # type: ignore[method-assign]
    await app.enqueue_many(calls)
    async with app.worker(concurrency=4):
        await eventually(app.queue_stats, lambda stats: _completed(stats) == len(calls))
    return limits


async def _drain_counted(
    app: Workhorse, jobs: int, *, work: float, claim_delay: float = 0.0
) -> tuple[list[int], int, list[int]]:
    """Drain ``jobs`` calls of a task that works ``work`` seconds, with a worker of 4
    slots (see ``_claim_limits_draining``): the numbers of the jobs that ran, the most
    that ran at once, and the limit of each claim."""
    ran: list[int] = []
    in_flight = [0, 0]  # now, most at once

    @app.task(name="tests.counted")
    async def counted(n: int) -> None:
        in_flight[0] += 1
        in_flight[1] = max(in_flight[1], in_flight[0])
        await asyncio.sleep(work)  # the task's own work
        in_flight[0] -= 1
        ran.append(n)

    calls = [counted.call(n) for n in range(jobs)]
    limits = await _claim_limits_draining(app, calls, claim_delay=claim_delay)
    return ran, in_flight[1], limits


def _completed(stats: Sequence[Any]) -> int:
    return sum(queue.counts.get(JobState.COMPLETED, 0) for queue in stats)
