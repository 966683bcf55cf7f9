"""Graceful shutdown of a real worker process: SIGTERM or SIGINT (Ctrl-C), a second
SIGTERM, and ``workhorse worker stop`` through the store."""

from __future__ import annotations

import json
import signal
import time

import pytest

from cli._support import eventually
from workhorse.backends.base import NewJob
from workhorse.jobs import JobState

from .conftest import FAST, Site


def _slow(seconds: float) -> NewJob:
    return NewJob(task="acceptance.slow", args=f"[{seconds}]")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_stop_signal_finishes_jobs_in_flight_and_leaves_the_rest_queued(
    site: Site, signum: signal.Signals
) -> None:
    grace = 10.0
    # Jobs long enough that none ends between the check and the signal, even under load.
    await site.insert([_slow(3.0) for _ in range(12)])
    worker = site.start_worker("--concurrency", "4", "--shutdown-grace", str(grace), *FAST)

    # Begun in the worker, not only claimed: a stop during a claim gives its jobs back.
    async def four_running() -> bool:
        return len(site.started()) == 4

    await eventually(four_running, timeout=30, what="4 running jobs")
    in_flight = set(site.started())
    worker.signal(signum)
    sent = time.monotonic()
    code = worker.wait(timeout=grace + 10)
    took = time.monotonic() - sent

    assert code == 0, site.logs()
    assert took < grace, f"exit took {took:.1f}s, more than the {grace}s grace"
    completed = {job.id for job in await site.jobs(JobState.COMPLETED)}
    assert completed == in_flight
    assert site.effects() == dict.fromkeys(in_flight, 1)
    queued = await site.jobs(JobState.QUEUED)
    assert len(queued) == 8
    assert all(job.attempt == 0 for job in queued), "unclaimed jobs stay untouched"
    assert await site.count(JobState.RUNNING) == 0
    assert await site.store.worker_list() == []


async def test_sigterm_releases_a_job_that_outlives_the_grace(site: Site) -> None:
    [job_id] = await site.insert([_slow(60)])
    worker = site.start_worker("--concurrency", "1", "--shutdown-grace", "1", *FAST)

    async def running() -> bool:  # begun in the worker, not only claimed
        return job_id in site.started()

    await eventually(running, timeout=30, what="the job to run")
    worker.signal(signal.SIGTERM)
    sent = time.monotonic()
    code = worker.wait(timeout=15)

    assert code == 0, site.logs()
    assert time.monotonic() - sent < 6
    record = await site.store.job_get(job_id=job_id)
    assert record is not None
    assert record.state is JobState.QUEUED, "released, so it runs again at once elsewhere"
    assert site.effects() == {}


async def test_a_second_sigterm_skips_the_grace(site: Site) -> None:
    [job_id] = await site.insert([_slow(60)])
    worker = site.start_worker("--concurrency", "1", "--shutdown-grace", "60", *FAST)

    async def running() -> bool:  # begun in the worker, not only claimed
        return job_id in site.started()

    async def draining() -> bool:
        return "stopping" in worker.output()

    await eventually(running, timeout=30, what="the job to run")
    worker.signal(signal.SIGTERM)
    await eventually(draining, timeout=10, what="the worker to start draining")
    worker.signal(signal.SIGTERM)
    sent = time.monotonic()
    code = worker.wait(timeout=15)

    assert code == 0, site.logs()
    assert time.monotonic() - sent < 6
    record = await site.store.job_get(job_id=job_id)
    assert record is not None
    assert record.state is JobState.QUEUED


async def test_worker_status_and_stop_through_the_store(site: Site) -> None:
    first = site.start_worker("--concurrency", "2", *FAST)
    second = site.start_worker("--concurrency", "3", "--queues", "default,mail", *FAST)

    async def both_registered() -> bool:
        return len(await site.registered()) == 2

    await eventually(both_registered, timeout=30, what="two registered workers")
    ids = await site.registered()
    # Long enough to still run through two status calls on a loaded machine.
    [job_id] = await site.insert([_slow(8)])

    async def running() -> bool:
        return await site.count(JobState.RUNNING) == 1

    await eventually(running, timeout=30, what="the job to run")
    status = site.cli("worker", "status")
    as_json = json.loads(site.cli("worker", "status", "--json").stdout)

    assert status.code == 0, status.stderr
    for worker_id in ids.values():
        assert worker_id in status.stdout
    assert "default,mail" in status.stdout
    assert f"{job_id} acceptance.slow" in status.stdout
    assert status.stdout.count("live") == 2
    assert {entry["worker"]["id"] for entry in as_json} == set(ids.values())
    assert sum(len(entry["jobs"]) for entry in as_json) == 1

    stop_one = site.cli("worker", "stop", "--id", ids[first.pid], "--wait", "--timeout", "30")

    assert stop_one.code == 0, stop_one.stderr
    assert "all stopped" in stop_one.stdout
    assert first.wait(timeout=10) == 0, site.logs()
    assert second.proc.poll() is None, "the other worker keeps running"

    stop_all = site.cli("worker", "stop", "--all", "--wait", "--timeout", "30")

    assert stop_all.code == 0, stop_all.stderr
    assert second.wait(timeout=10) == 0, site.logs()
    record = await site.store.job_get(job_id=job_id)
    assert record is not None
    assert record.state is JobState.COMPLETED, "the running job was drained, not dropped"
    assert "no workers are registered" in site.cli("worker", "status").stderr
