"""Races: many callers at once on one instance, on two instances of one store, and (where
an instance serves several event loops) from several threads. Whatever the interleaving,
a job is handed out once, a unique key admits one live job, and one leader rules."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

import pytest

from workhorse.backends.base import Backend, ClaimedJob, JobFilter
from workhorse.jobs import JobState

from ._support import at, claim, claim_one, completed, get, insert, insert_one, new_job

T = TypeVar("T")


async def test_concurrent_unique_inserts_create_one_job(backend: Backend, now: datetime) -> None:
    rows = await asyncio.gather(
        *(backend.job_insert_many([new_job(unique_key="once")], now=now) for _ in range(10))
    )
    flat = [row for batch in rows for row in batch]
    assert sum(row.created for row in flat) == 1
    assert len({row.id for row in flat}) == 1
    assert await backend.job_count(filter=JobFilter()) == 1


async def test_unique_inserts_on_two_instances_create_one_job(
    backend: Backend, twin: Backend, now: datetime
) -> None:
    rows = await asyncio.gather(
        *(
            store.job_insert_many([new_job(unique_key="once")], now=now)
            for _ in range(5)
            for store in (backend, twin)
        )
    )
    flat = [row for batch in rows for row in batch]
    assert sum(row.created for row in flat) == 1
    assert len({row.id for row in flat}) == 1


async def test_concurrent_completions_apply_once(backend: Backend, now: datetime) -> None:
    await insert_one(backend, now=now)
    job = await claim_one(backend, now=now)
    applied = await asyncio.gather(
        *(backend.job_complete_many([completed(job, result=str(i))], now=now) for i in range(8))
    )
    assert sorted(flag for batch in applied for flag in batch) == [False] * 7 + [True]


async def test_reclaim_racing_a_late_completion(backend: Backend, now: datetime) -> None:
    """The stale worker's completion and the reclaim both want the job: exactly one wins,
    and the stored job agrees with the winner."""
    ids = await insert(backend, *[new_job(max_attempts=5) for _ in range(10)], now=now)
    jobs = await claim(backend, now=now, limit=10, lease_seconds=10)
    reclaim, outcomes = await asyncio.gather(
        backend.job_reclaim_expired(now=at(now, 20)),
        asyncio.gather(
            *(backend.job_complete_many([completed(job)], now=at(now, 20)) for job in jobs)
        ),
    )
    completed_ids = {job.id for job, (ok,) in zip(jobs, outcomes, strict=True) if ok}
    assert completed_ids.isdisjoint(reclaim.requeued)
    assert completed_ids | set(reclaim.requeued) == set(ids)
    for job_id in ids:
        state = (await get(backend, job_id)).state
        assert state is (JobState.COMPLETED if job_id in completed_ids else JobState.QUEUED)


async def test_one_leader_among_concurrent_candidates(backend: Backend, now: datetime) -> None:
    won = await asyncio.gather(
        *(backend.leader_attempt_elect(worker_id=f"w{i}", ttl=30, now=now) for i in range(10))
    )
    assert sum(won) == 1


async def test_one_leader_across_instances(backend: Backend, twin: Backend, now: datetime) -> None:
    won = await asyncio.gather(
        *(
            store.leader_attempt_elect(worker_id=f"{n}-{i}", ttl=30, now=now)
            for i in range(5)
            for n, store in enumerate((backend, twin))
        )
    )
    assert sum(won) == 1


def _in_threads(count: int, work: Callable[[int], Awaitable[T]]) -> list[T]:
    """Run ``work(i)`` for each i in its own thread and event loop, all released at once."""
    barrier = threading.Barrier(count)
    results: list[T | None] = [None] * count
    errors: list[BaseException] = []

    def run(i: int) -> None:
        async def main() -> T:
            barrier.wait(timeout=30)
            return await work(i)

        try:
            results[i] = asyncio.run(main())
        except BaseException as exc:  # reported to the test below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    if errors:
        raise errors[0]
    return [result for result in results if result is not None]


async def test_claims_from_several_event_loops(backend: Backend, now: datetime) -> None:
    if not backend.shared_across_loops:
        pytest.skip(f"{type(backend).__name__} serves one event loop per instance")
    ids = await insert(backend, *[new_job() for _ in range(200)], now=now)

    async def drain(i: int) -> list[ClaimedJob]:
        taken: list[ClaimedJob] = []
        while batch := await claim(backend, now=now, worker_id=f"t{i}", limit=3):
            taken.extend(batch)
        return taken

    batches = await asyncio.to_thread(_in_threads, 4, drain)
    claimed = [job.id for batch in batches for job in batch]
    assert len(claimed) == len(set(claimed)), "a job was handed out twice"
    assert sorted(claimed) == ids
