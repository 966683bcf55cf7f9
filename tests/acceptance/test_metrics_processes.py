"""``/metrics`` tells what every process did: the test process enqueues through the
library (and a CLI process once), a ``workhorse worker start`` process runs the jobs
(some complete, some fail once and complete, some fail for good), and a
``workhorse serve`` process without a worker reports all of it, exactly, again after a
restart. The attempts of a worker killed mid-job count too: their end is counted by the
worker whose reclaim finds them lost."""

from __future__ import annotations

import math
import signal
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from cli._support import COMMAND, WorkerProcess, eventually
from web._metrics import Samples, scrape, scrape_until, value
from web._server import ServerProcess
from workhorse import Workhorse
from workhorse.backends.base import JobEvent
from workhorse.jobs import FINAL_STATES, JobState
from workhorse.web import create_api_key

from .conftest import FAST, Site, SiteFactory
from .metrics_app import make_app

pytestmark = pytest.mark.slow

KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
APP = "tests.acceptance.metrics_app:app"
EVENTS = ("enqueued", "started", "completed", "retried", "failed", "cancelled")

EXPECTED_COUNTS = {
    ("default", "metrics.ok"): {"enqueued": 3, "started": 3, "completed": 3},
    ("default", "metrics.flaky"): {"enqueued": 2, "started": 4, "retried": 2, "completed": 2},
    ("mail", "metrics.broken"): {"enqueued": 2, "started": 4, "retried": 2, "failed": 2},
    ("later", "metrics.ok"): {"enqueued": 1},
    ("idle", "metrics.ok"): {"enqueued": 1},
}
"""Every job counter per (queue, task); events left out are zero."""
RUN_TIMES = {
    ("default", "metrics.ok"): 3,
    ("default", "metrics.flaky"): 4,
    ("mail", "metrics.broken"): 4,
}
"""Attempts in the run-time histogram per (queue, task)."""


def counters_match(found: Samples) -> bool:
    """True once every job counter and histogram count has its expected value."""
    for (queue, task), counts in EXPECTED_COUNTS.items():
        for event in EVENTS:
            seen = value(found, f"workhorse_jobs_{event}_total", queue=queue, task=task)
            if seen != counts.get(event, 0):
                return False
    return all(
        value(found, "workhorse_job_run_seconds_count", queue=queue, task=task) == n
        for (queue, task), n in RUN_TIMES.items()
    )


def admin_client(server: ServerProcess, token: str) -> httpx.AsyncClient:
    """A client of ``server`` that sends the admin key ``token``."""
    return httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


@pytest.fixture
async def library(make_site: SiteFactory, kind: str) -> AsyncIterator[tuple[Site, Workhorse]]:
    """The site, and the test process's own app on its store (the enqueuing library)."""
    site = await make_site(kind)
    jobs = make_app(site.url)
    try:
        yield site, jobs
    finally:
        await jobs.aclose()


def serve(site: Site, name: str) -> ServerProcess:
    """``workhorse serve`` of the metrics app, without a worker."""
    return ServerProcess(
        [*COMMAND, "serve", APP], cwd=site.tmp, env=site.env, log=site.tmp / f"{name}.log"
    ).start()


def assert_every_series(found: Samples) -> None:
    for (queue, task), n in RUN_TIMES.items():
        labels: dict[str, Any] = {"queue": queue, "task": task}
        assert value(found, "workhorse_job_run_seconds_bucket", le="+Inf", **labels) == n
        assert value(found, "workhorse_job_run_seconds_bucket", le="3600.0", **labels) == n
        assert 0 < (value(found, "workhorse_job_run_seconds_sum", **labels) or 0) < n * 30
        buckets = [
            (float(dict(key)["le"]), count)
            for (name, key), count in found.items()
            if name == "workhorse_job_run_seconds_bucket" and dict(key).items() >= labels.items()
        ]
        counts = [count for _, count in sorted(buckets, key=lambda b: b[0])]
        assert counts == sorted(counts), f"buckets are not cumulative: {buckets}"
        assert math.inf in {le for le, _ in buckets}
    assert value(found, "workhorse_queue_jobs", queue="default", state="completed") == 5
    assert value(found, "workhorse_queue_jobs", queue="mail", state="failed") == 2
    assert value(found, "workhorse_queue_jobs", queue="later", state="scheduled") == 1
    assert value(found, "workhorse_queue_jobs", queue="idle", state="queued") == 1
    assert value(found, "workhorse_queue_jobs", queue="default", state="running") == 0
    assert (value(found, "workhorse_queue_oldest_job_age_seconds", queue="idle") or 0) > 0
    assert value(found, "workhorse_queue_oldest_job_age_seconds", queue="default") == 0
    assert value(found, "workhorse_workers_registered") == 1
    # The server runs no worker of its own: nothing is reported as this process's.
    assert not any(name.startswith("workhorse_worker_attempts") for name, _ in found)


@pytest.mark.parametrize("kind", KINDS)
async def test_metrics_count_what_every_process_did(library: tuple[Site, Workhorse]) -> None:
    site, jobs = library
    token = (await create_api_key(jobs, admin=True, read_only=True)).token
    worker = WorkerProcess(
        APP,
        *FAST,
        "--queues",
        "default,mail",
        cwd=site.tmp,
        env=site.env,
        log=site.tmp / "worker.log",
    )
    site.workers.append(worker)
    server = serve(site, "server")
    client = admin_client(server, token)
    try:
        ok = jobs.get_task("metrics.ok")
        await jobs.enqueue_many([ok.call(n) for n in range(3)])
        for _ in range(2):
            await jobs.enqueue("metrics.flaky")
            await jobs.enqueue("metrics.broken")
        await jobs.enqueue("metrics.ok", args=[0], queue="later", delay=3600)
        # One more from a CLI process, which writes its count as it exits.
        cli = site.cli("enqueue", "metrics.ok", "--args", "[0]", "--queue", "idle", "--app", APP)
        assert cli.code == 0, cli.stderr

        async def ran() -> bool:
            return await site.count(*FINAL_STATES) == 7

        await eventually(ran, timeout=60, what="the jobs to end\n" + site.logs())
        found = await scrape_until(client, counters_match, "every job counter", timeout=60)
        found = await scrape_until(
            client, lambda f: value(f, "workhorse_workers_live") == 1, "the worker to be live"
        )
        assert_every_series(found)

        # Counts live in the store: a new server (and no worker at all) still has them.
        worker.signal(signal.SIGTERM)
        assert worker.wait(30) == 0, worker.output()
        await client.aclose()
        server.signal(signal.SIGTERM)
        assert server.wait(30) == 0, server.log()
        server = serve(site, "server-again")
        client = admin_client(server, token)
        found = await scrape(client)
        assert counters_match(found), found
        assert value(found, "workhorse_workers_registered") == 0
    finally:
        await client.aclose()
        server.kill()


@pytest.mark.parametrize("kind", KINDS)
async def test_metrics_count_the_attempts_a_killed_worker_lost(
    library: tuple[Site, Workhorse],
) -> None:
    site, jobs = library
    token = (await create_api_key(jobs, admin=True, read_only=True)).token
    flags = (*FAST, "--queues", "stuck")

    def start_worker(name: str) -> WorkerProcess:
        worker = WorkerProcess(APP, *flags, cwd=site.tmp, env=site.env, log=site.tmp / name)
        site.workers.append(worker)
        return worker

    doomed = start_worker("doomed.log")
    again = await jobs.enqueue("metrics.stuck", max_attempts=2)
    last = await jobs.enqueue("metrics.stuck", max_attempts=1)

    async def both_started() -> bool:
        # Running, and their starts written to the store (a kill loses unwritten counts).
        running = await site.count(JobState.RUNNING) == 2
        totals = await site.store.stats_totals()
        starts = sum(c.count for c in totals.counts if c.event is JobEvent.STARTED)
        return running and starts == 2

    await eventually(both_started, timeout=60, what="both jobs to start\n" + site.logs())
    doomed.kill()  # SIGKILL: the attempts never end on that worker
    start_worker("rescuer.log")
    server = serve(site, "server")
    client = admin_client(server, token)
    try:

        async def ended() -> bool:
            states = {job.id: job.state for job in await site.jobs()}
            return states == {again.id: JobState.COMPLETED, last.id: JobState.FAILED}

        await eventually(ended, timeout=60, what="the reclaim and the rerun\n" + site.logs())
        expected = {"enqueued": 2, "started": 3, "retried": 1, "failed": 1, "completed": 1}

        def lost_attempts_counted(found: Samples) -> bool:
            return all(
                value(found, f"workhorse_jobs_{event}_total", queue="stuck", task="metrics.stuck")
                == expected.get(event, 0)
                for event in EVENTS
            )

        found = await scrape_until(client, lost_attempts_counted, "the lost attempts' ends")
        labels = {"queue": "stuck", "task": "metrics.stuck"}
        # Only the attempt that ended on a live worker has a run time.
        assert value(found, "workhorse_job_run_seconds_count", **labels) == 1
        assert value(found, "workhorse_queue_jobs", queue="stuck", state="failed") == 1
        record = await site.store.job_get(job_id=last.id)
        assert record is not None
        assert record.error is not None
        assert record.error.type == "LeaseExpiredError"
    finally:
        await client.aclose()
        server.kill()
