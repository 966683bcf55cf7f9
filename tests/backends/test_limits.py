"""Limited claims: concurrency per queue, task and key, and rates per task and key,
counted in the store so that concurrent claimers never overshoot together."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from datetime import datetime

from workhorse.backends.base import (
    Backend,
    ClaimedJob,
    ClaimLimits,
    JobFilter,
    LimitCaps,
    NewJob,
)
from workhorse.jobs import JobState

from ._support import at, claim, completed, insert, new_job

PER_TENANT = ClaimLimits(keys={"tenant": LimitCaps(concurrency=2)})


def keyed(key: str | None, **fields: object) -> NewJob:
    """A job whose limit key is ``key``, as a task with a limit writes it."""
    return new_job(meta={} if key is None else {"limit_key": key}, **fields)  # type: ignore[arg-type]


async def claim_limited(
    backend: Backend,
    limits: ClaimLimits,
    *,
    now: datetime,
    limit: int = 10,
    queues: Sequence[str] | None = None,
    worker_id: str = "worker-1",
) -> list[ClaimedJob]:
    return await backend.job_claim_limited(
        worker_id=worker_id,
        queues=queues,
        limit=limit,
        lease_seconds=30.0,
        limits=limits,
        now=now,
    )


def keys_of(jobs: Sequence[ClaimedJob]) -> Counter[str | None]:
    return Counter(job.meta.get("limit_key") for job in jobs)


async def test_each_key_runs_at_most_its_cap(backend: Backend, now: datetime) -> None:
    await insert(backend, *[keyed("tenant:a") for _ in range(4)], keyed("tenant:b"), now=now)
    first = await claim_limited(backend, PER_TENANT, now=now)
    assert keys_of(first) == {"tenant:a": 2, "tenant:b": 1}
    assert await claim_limited(backend, PER_TENANT, now=now) == []
    done = next(job for job in first if job.meta["limit_key"] == "tenant:a")
    assert await backend.job_complete_many([completed(done)], now=now) == [True]
    again = await claim_limited(backend, PER_TENANT, now=now)
    assert keys_of(again) == {"tenant:a": 1}


async def test_jobs_of_a_full_key_are_passed_over_in_claim_order(
    backend: Backend, now: datetime
) -> None:
    ids = await insert(
        backend,
        *[keyed("tenant:a", priority=9) for _ in range(30)],
        keyed("tenant:b", priority=5),
        keyed(None, priority=1),
        now=now,
    )
    claimed = await claim_limited(backend, PER_TENANT, now=now, limit=4)
    assert [job.id for job in claimed] == [ids[0], ids[1], ids[30], ids[31]]


async def test_running_jobs_claimed_without_limits_count_too(
    backend: Backend, now: datetime
) -> None:
    await insert(backend, *[keyed("tenant:a") for _ in range(3)], now=now)
    assert len(await claim(backend, now=now, limit=1)) == 1
    assert len(await claim_limited(backend, PER_TENANT, now=now)) == 1


async def test_a_key_of_an_unknown_limit_is_not_limited(backend: Backend, now: datetime) -> None:
    await insert(backend, *[keyed("retired:a") for _ in range(3)], now=now)
    assert len(await claim_limited(backend, PER_TENANT, now=now)) == 3


async def test_task_and_queue_concurrency(backend: Backend, now: datetime) -> None:
    limits = ClaimLimits(queues={"mail": 2}, tasks={"slow": LimitCaps(concurrency=1)})
    await insert(
        backend,
        *[new_job("slow") for _ in range(3)],
        *[new_job("send", queue="mail") for _ in range(3)],
        new_job("fast"),
        now=now,
    )
    claimed = await claim_limited(backend, limits, now=now)
    assert Counter(job.task for job in claimed) == {"slow": 1, "send": 2, "fast": 1}
    assert await claim_limited(backend, limits, now=now) == []


async def test_the_claim_keeps_to_the_workers_queues(backend: Backend, now: datetime) -> None:
    await insert(backend, keyed("tenant:a", queue="x"), keyed("tenant:a", queue="y"), now=now)
    claimed = await claim_limited(backend, PER_TENANT, now=now, queues=["y"])
    assert [job.queue for job in claimed] == ["y"]
    assert await claim_limited(backend, PER_TENANT, now=now, queues=[]) == []


async def test_due_scheduled_jobs_are_claimed_within_limits(
    backend: Backend, now: datetime
) -> None:
    await insert(backend, *[keyed("tenant:a", delay=5) for _ in range(3)], now=now)
    assert await claim_limited(backend, PER_TENANT, now=now) == []
    assert len(await claim_limited(backend, PER_TENANT, now=at(now, 6))) == 2


async def test_a_task_rate_counts_starts_in_a_sliding_window(
    backend: Backend, now: datetime
) -> None:
    limits = ClaimLimits(tasks={"ping": LimitCaps(rate=2, period=10.0)})
    await insert(backend, *[new_job("ping") for _ in range(5)], now=now)
    first = await claim_limited(backend, limits, now=now)
    assert len(first) == 2
    # Finishing does not give a start back: the window does.
    assert await backend.job_complete_many([completed(job) for job in first], now=now) == [True] * 2
    assert await claim_limited(backend, limits, now=at(now, 9.9)) == []
    assert len(await claim_limited(backend, limits, now=at(now, 10.1))) == 2
    assert await claim_limited(backend, limits, now=at(now, 15)) == []


async def test_a_key_rate_applies_per_key(backend: Backend, now: datetime) -> None:
    limits = ClaimLimits(keys={"api": LimitCaps(rate=1, period=60.0)})
    await insert(backend, keyed("api:a"), keyed("api:a"), keyed("api:b"), now=now)
    assert keys_of(await claim_limited(backend, limits, now=now)) == {"api:a": 1, "api:b": 1}
    assert await claim_limited(backend, limits, now=at(now, 30)) == []
    assert keys_of(await claim_limited(backend, limits, now=at(now, 61))) == {"api:a": 1}


async def test_concurrency_and_rate_together(backend: Backend, now: datetime) -> None:
    limits = ClaimLimits(keys={"t": LimitCaps(concurrency=1, rate=2, period=60.0)})
    await insert(backend, *[keyed("t:a") for _ in range(4)], now=now)
    (first,) = await claim_limited(backend, limits, now=now)
    assert await backend.job_complete_many([completed(first)], now=now) == [True]
    (second,) = await claim_limited(backend, limits, now=at(now, 1))
    assert await backend.job_complete_many([completed(second)], now=now) == [True]
    assert await claim_limited(backend, limits, now=at(now, 2)) == []  # two starts this minute


async def test_concurrent_claims_never_overshoot(backend: Backend, now: datetime) -> None:
    limits = ClaimLimits(
        keys={"tenant": LimitCaps(concurrency=2)}, tasks={"rated": LimitCaps(rate=3, period=60)}
    )
    await insert(
        backend,
        *[keyed(f"tenant:{t}") for t in "abc" for _ in range(10)],
        *[new_job("rated") for _ in range(10)],
        now=now,
    )
    batches = await asyncio.gather(
        *(claim_limited(backend, limits, now=now, limit=3, worker_id=f"w{i}") for i in range(12))
    )
    claimed = [job for batch in batches for job in batch]
    assert len({job.id for job in claimed}) == len(claimed)
    caps = {"tenant:a": 2, "tenant:b": 2, "tenant:c": 2, None: 3}
    assert all(count <= caps[key] for key, count in keys_of(claimed).items()), claimed
    # A claim may leave a bucket to another that holds it right then (PostgreSQL): the
    # next claims fill what is left, and never more.
    claimed += await claim_limited(backend, limits, now=now, limit=20)
    assert keys_of(claimed) == caps


async def test_claims_on_two_instances_never_overshoot(
    backend: Backend, twin: Backend, now: datetime
) -> None:
    await insert(backend, *[keyed(f"tenant:{t}") for t in "ab" for _ in range(10)], now=now)

    async def running() -> Counter[str]:
        jobs = await backend.job_list(filter=JobFilter(states=(JobState.RUNNING,)))
        return Counter(job.meta["limit_key"] for job in jobs)

    for _ in range(3):  # a few rounds, some finding the keys held by the other instance
        await asyncio.gather(
            *(
                claim_limited(store, PER_TENANT, now=now, limit=2, worker_id=f"w{i}")
                for i, store in enumerate([backend, twin] * 4)
            )
        )
        assert all(count <= 2 for count in (await running()).values())
    await claim_limited(twin, PER_TENANT, now=now)
    assert await running() == {"tenant:a": 2, "tenant:b": 2}
