"""The leader's pruning chore: it keeps pace with workers that finish jobs by the
thousand, in short batches, within a time budget per round."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from workhorse.backends.base import Backend, JobFilter, NewJob, Outcome
from workhorse.jobs import JobState
from workhorse.worker.maintenance import Maintenance, Prune
from workhorse.worker.store_health import StoreHealth


async def _expired_jobs(store: Backend, count: int) -> None:
    """``count`` jobs that completed an hour ago and were kept for a second."""
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    await store.job_insert_many([NewJob(task="tests.done") for _ in range(count)], now=an_hour_ago)
    claimed = await store.job_claim(
        worker_id="w", queues=None, limit=count, lease_seconds=60, now=an_hour_ago
    )
    outcomes = [
        Outcome(job.id, job.lease_token, JobState.COMPLETED, result="null", ttl=1.0)
        for job in claimed
    ]
    assert await store.job_complete_many(outcomes, now=an_hour_ago) == [True] * count


async def _left(store: Backend) -> int:
    return await store.job_count(filter=JobFilter())


async def test_one_round_prunes_more_than_one_batch(backend: Backend) -> None:
    await _expired_jobs(backend, 25)
    await backend.job_insert_many([NewJob(task="tests.live")])

    behind = await Prune(interval=60, worker_silence=60, batch=4)(backend)

    assert behind is False
    assert await _left(backend) == 1, "every expired job went, the live one stayed"


async def test_a_round_out_of_budget_comes_back_at_the_next_election(backend: Backend) -> None:
    await _expired_jobs(backend, 5)
    # No budget: each round deletes one batch, then reports itself behind.
    prune = Prune(interval=3600, worker_silence=60, batch=2, budget=0.0)
    maintenance = Maintenance(
        store=backend,
        health=StoreHealth("leader", backend),
        worker_id="leader",
        elect_every=1,
        leader_ttl=10,
        chores=[prune],
    )

    await maintenance.tick()
    assert await _left(backend) == 3
    await maintenance.tick()  # an hour before the interval: only being behind runs it
    assert await _left(backend) == 1
    await maintenance.tick()
    assert await _left(backend) == 0
    await _expired_jobs(backend, 1)
    await maintenance.tick()  # caught up: the next round waits for the interval again
    assert await _left(backend) == 1
