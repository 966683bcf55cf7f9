"""Leases: a job whose lease is lost is stopped at once and no outcome of that attempt
is written; a worker that cannot renew stops its jobs once the lease may have expired."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from workhorse import JobState, Workhorse, current_job
from workhorse.backends.base import HeartbeatReply, Lease

from ._support import eventually, job_in_state, wait_event


async def test_a_lost_lease_stops_the_job_and_writes_no_outcome(
    app: Workhorse, caplog: pytest.LogCaptureFixture
) -> None:
    first_started = asyncio.Event()
    first_stopped = asyncio.Event()

    @app.task
    async def long_job() -> str:
        if current_job().attempt == 1:
            first_started.set()
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                first_stopped.set()
                return "from the stale attempt"  # swallowed: must still not be written
        return "from attempt 2"

    store = await app.backend()
    with caplog.at_level(logging.WARNING, logger="workhorse.worker"):
        async with app.worker() as worker:
            job = await long_job.enqueue()
            await wait_event(first_started)
            # Another worker's leader reclaims the lease (as if it had expired).
            reclaimed = await store.job_reclaim_expired(now=datetime.now(UTC) + timedelta(hours=1))
            assert reclaimed.requeued == (job.id,)
            await wait_event(first_stopped)
            assert await job.result(timeout=10) == "from attempt 2"
    record = await job.refresh()
    assert record.attempt == 2
    assert worker.stats.lost == 1
    assert worker.stats.completed == 1
    messages = [r.getMessage() for r in caplog.records]
    assert any(f"job {job.id}: stopping attempt 1" in m for m in messages)
    assert not any("outcome of attempt" in m for m in messages), "nothing was even tried"


async def test_jobs_are_stopped_before_a_lease_that_cannot_be_renewed_expires(
    sqlite_app: Workhorse, caplog: pytest.LogCaptureFixture
) -> None:
    app = sqlite_app
    started = asyncio.Event()
    stopped = asyncio.Event()

    @app.task
    async def long_job() -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            stopped.set()
            raise

    store = await app.backend()

    async def store_down(
        *, worker_id: str, leases: Sequence[Lease], lease_seconds: float
    ) -> HeartbeatReply:
        raise ConnectionError("store unreachable")

    settings = {"lease": 1.2, "heartbeat_interval": 0.3, "reclaim_interval": 60.0}
    with caplog.at_level(logging.WARNING, logger="workhorse.worker"):
        async with app.worker(**settings) as worker:
            job = await long_job.enqueue()
            await wait_event(started)
            renewing = store.job_heartbeat
            store.job_heartbeat = store_down  # type: ignore[method-assign]
            try:
                await wait_event(stopped, timeout=5)
                # Stopped while the store still holds the lease: nobody else has it yet.
                reclaimed = await store.job_reclaim_expired()
                assert reclaimed.requeued == ()
            finally:
                store.job_heartbeat = renewing  # type: ignore[method-assign]
            assert worker.stats.lost == 1
    record = await job.refresh()
    assert record.state is JobState.RUNNING, "no outcome was written, nothing released"
    assert worker.stats.released == 0
    outage = [r for r in caplog.records if "store unavailable" in r.getMessage()]
    assert len(outage) == 1, "one warning for the whole outage"
    assert "renewing 1 lease(s)" in outage[0].getMessage()
    assert outage[0].levelno == logging.WARNING
    assert any("could not be renewed" in r.getMessage() for r in caplog.records)
    # Once the lease runs out in the store, any leader sends the job back to the queue.
    result = await eventually(
        store.job_reclaim_expired, lambda r: r.requeued == (job.id,), what="reclaim"
    )
    assert result.failed == ()


async def test_heartbeats_keep_a_long_job_alive(app: Workhorse) -> None:
    @app.task
    async def longer_than_the_lease() -> str:
        await asyncio.sleep(1.2)
        return "done"

    async with app.worker(lease=0.8, heartbeat_interval=0.1) as worker:
        job = await longer_than_the_lease.enqueue()
        assert await job.result(timeout=10) == "done"
    assert worker.stats.lost == 0
    assert (await job.refresh()).attempt == 1


async def test_the_leader_reclaims_a_dead_workers_job(app: Workhorse) -> None:
    @app.task
    async def ping() -> str:
        return "pong"

    store = await app.backend()
    job = await ping.enqueue()
    # A worker that died right after claiming: its lease expires and nobody renews it.
    claimed = await store.job_claim(
        worker_id="dead-worker", queues=None, limit=1, lease_seconds=0.3
    )
    assert [c.id for c in claimed] == [job.id]
    async with app.worker():
        assert await job.result(timeout=10) == "pong"
    record = await job.refresh()
    assert record.attempt == 2, "the crashed attempt counts"


async def test_the_worker_row_shows_its_running_jobs(app: Workhorse) -> None:
    started = asyncio.Event()
    gate = asyncio.Event()

    @app.task
    async def wait() -> None:
        started.set()
        await gate.wait()

    async with app.worker() as worker:
        job = await wait.enqueue()
        await wait_event(started)
        row = await eventually(
            app.workers,
            lambda rows: any(w.id == worker.id and w.running == 1 for w in rows),
            what="worker row with one running job",
        )
        assert row
        gate.set()
        await job_in_state(app, job.id, JobState.COMPLETED)


async def _lose_an_attempt(app: Workhorse, job_id: int) -> None:
    """As if a worker had claimed ``job_id`` and died with it: a lease that expires at
    once, for the running worker's reclaim sweep (or the next one) to find."""
    store = await app.backend()
    (claimed,) = await store.job_claim(
        worker_id="dead", queues=None, limit=1, lease_seconds=0.01, job_ids=[job_id]
    )
    assert claimed.previous_attempt_lost is False


async def test_an_idle_worker_runs_a_job_whose_last_attempt_was_lost_alone(
    local_app: Workhorse,
) -> None:
    app = local_app
    running: set[str] = set()
    beside: dict[str, frozenset[str]] = {}
    """Who else was running when each job started."""

    @app.task
    async def step(name: str) -> None:
        beside[name] = frozenset(running)
        running.add(name)
        try:
            await asyncio.sleep(0.05)
        finally:
            running.discard(name)

    store = await app.backend()
    # Scheduled far ahead so that nothing claims it before it is "lost"; first in line.
    suspect = await step.options(delay=3600, priority=10).enqueue("suspect")
    await _lose_an_attempt(app, suspect.id)
    await store.job_reclaim_expired(now=datetime.now(UTC) + timedelta(seconds=1))
    others = [await step.enqueue(f"job-{i}") for i in range(6)]
    # The worker's first claim takes the suspect and three others: only the suspect runs.
    async with app.worker(concurrency=4) as worker:
        for handle in [suspect, *others]:
            await handle.result(timeout=10)

    assert beside["suspect"] == frozenset(), beside
    assert not any("suspect" in names for names in beside.values()), beside
    assert any(len(names) > 0 for names in beside.values()), "the others ran side by side"
    assert worker.stats.released == 3, "the rest of the first claim went back"
    record = await suspect.refresh()
    assert (record.state, record.attempt) == (JobState.COMPLETED, 2)
    for handle in others:
        assert (await handle.refresh()).attempt == 1, "a release does not count an attempt"


async def test_a_busy_worker_runs_it_without_stalling(local_app: Workhorse) -> None:
    app = local_app
    release_slow = asyncio.Event()
    slow_started = asyncio.Event()
    started: list[str] = []

    @app.task
    async def step(name: str) -> None:
        started.append(name)
        if name == "slow":
            slow_started.set()
            await wait_event(release_slow)

    suspect = await step.options(delay=3600, priority=10).enqueue("suspect")
    async with app.worker(concurrency=4) as worker:
        slow = await step.enqueue("slow")
        await wait_event(slow_started)
        await _lose_an_attempt(app, suspect.id)  # this worker's reclaim sweep finds it
        others = [await step.enqueue(f"job-{i}") for i in range(6)]
        # All of them run while the slow job holds a slot.
        for handle in [suspect, *others]:
            await handle.result(timeout=10)
        release_slow.set()
        await slow.result(timeout=10)
    assert sorted(started) == sorted(["slow", "suspect", *(f"job-{i}" for i in range(6))])
    assert worker.stats.released == 0
