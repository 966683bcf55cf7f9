"""What ``workhorse worker start`` takes from its flags and shows in its output: the
app-wide retry defaults, and log lines that name their job."""

from __future__ import annotations

import signal
from datetime import timedelta

from cli._support import eventually
from workhorse.backends.base import NewJob
from workhorse.jobs import JobRecord, JobState

from .conftest import FAST, Site


async def _one(site: Site, job_id: int) -> JobRecord:
    """The job, which must exist."""
    record = await site.store.job_get(job_id=job_id)
    assert record is not None
    return record


def _stop(site: Site) -> None:
    """SIGTERM every worker of ``site``; each must drain and exit 0."""
    for worker in site.workers:
        worker.signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0, site.logs()


async def test_backoff_flags_set_the_wait_of_tasks_without_their_own_retry(site: Site) -> None:
    [job_id] = await site.insert([NewJob(task="acceptance.flaky", max_attempts=3)])
    site.start_worker("--backoff-base", "30", "--backoff-jitter", "0", *FAST)

    async def retry_scheduled() -> bool:
        record = await _one(site, job_id)
        return record.state is JobState.SCHEDULED and record.attempt == 1

    await eventually(retry_scheduled, timeout=30, what="the first attempt to fail")
    _stop(site)

    record = await _one(site, job_id)
    assert record.error is not None
    assert record.error.type == "ConnectionError"
    assert record.started_at is not None
    wait = record.run_at - record.started_at
    # The built-in backoff would retry after about one second.
    assert timedelta(seconds=29) <= wait <= timedelta(seconds=32), wait


async def test_the_job_logger_names_its_job_in_the_worker_output(site: Site) -> None:
    [job_id] = await site.insert([NewJob(task="acceptance.chatty", args="[7]", max_attempts=3)])
    worker = site.start_worker(*FAST)

    async def done() -> bool:
        return (await _one(site, job_id)).state is JobState.COMPLETED

    await eventually(done, timeout=30, what="the job to complete")
    _stop(site)

    expected = f"WARNING workhorse.job: job {job_id} (acceptance.chatty, attempt 1/3): processing 7"
    assert expected in worker.output(), worker.output()
