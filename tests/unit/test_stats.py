"""The in-process side of the job statistics: the tally that sums counts, the flusher
that writes them (and keeps them when a write fails), and a worker's attempt meter."""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest

from _polling import eventually
from workhorse import Workhorse
from workhorse.backends import open_backend
from workhorse.backends.base import (
    ClaimedJob,
    EventCount,
    JobEvent,
    Lease,
    Outcome,
    ReclaimedJob,
    RunTimeCount,
)
from workhorse.backends.memory import MemoryBackend
from workhorse.errors import BackendUnavailableError
from workhorse.jobs import JobState
from workhorse.stats.flusher import Flusher
from workhorse.stats.tally import RUN_TIME_BUCKETS, JobKey, StatsBatch, Tally, bucket_bound
from workhorse.worker.executor import JobRunner
from workhorse.worker.meter import AttemptMeter
from workhorse.worker.running import RunningJob, RunningJobs

NOON = datetime(2026, 5, 1, 12, 0, tzinfo=UTC).timestamp()
MAIL = JobKey("mail", "send", "acme")
REPORT = JobKey("default", "report", None)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def totals(counts: list[EventCount]) -> dict[tuple[datetime | None, JobEvent, JobKey], int]:
    return {(c.minute, c.event, JobKey(c.queue, c.task, c.tenant)): c.count for c in counts}


@pytest.mark.parametrize(
    ("seconds", "bound"),
    [(0, 0.005), (0.005, 0.005), (0.0051, 0.01), (1, 1), (59.9, 60), (3600, 3600), (1e6, math.inf)],
)
def test_a_run_time_falls_in_the_first_bucket_that_holds_it(seconds: float, bound: float) -> None:
    assert bucket_bound(seconds) == bound
    assert RUN_TIME_BUCKETS[-1] == math.inf
    assert list(RUN_TIME_BUCKETS) == sorted(RUN_TIME_BUCKETS)


def test_a_tally_sums_counts_per_minute_until_taken() -> None:
    clock = Clock(NOON + 5)
    tally = Tally(clock)
    assert not tally
    assert tally.take() is None
    tally.add(JobEvent.ENQUEUED, [MAIL, MAIL, REPORT])
    clock.now = NOON + 59.9
    tally.add(JobEvent.ENQUEUED, [MAIL])
    clock.now = NOON + 60
    tally.add(JobEvent.ENQUEUED, [MAIL])
    tally.observe(queue="mail", task="send", seconds=0.3125)
    tally.observe(queue="mail", task="send", seconds=0.4375)
    tally.observe(queue="mail", task="send", seconds=7)
    assert tally
    batch = tally.take()
    assert batch is not None
    assert not tally
    noon = datetime.fromtimestamp(NOON, UTC)
    later = datetime.fromtimestamp(NOON + 60, UTC)
    assert totals(batch.counts()) == {
        (noon, JobEvent.ENQUEUED, MAIL): 3,
        (noon, JobEvent.ENQUEUED, REPORT): 1,
        (later, JobEvent.ENQUEUED, MAIL): 1,
    }
    assert sorted(batch.run_times(), key=lambda r: r.le) == [
        RunTimeCount(queue="mail", task="send", le=0.5, count=2, seconds=0.75),
        RunTimeCount(queue="mail", task="send", le=10, count=1, seconds=7),
    ]
    tally.add(JobEvent.STARTED, [REPORT])
    tally.put_back(batch)
    merged = tally.take()
    assert merged is not None
    assert totals(merged.counts()) == {
        **totals(batch.counts()),
        (later, JobEvent.STARTED, REPORT): 1,
    }
    assert sorted(merged.run_times(), key=lambda r: r.le) == sorted(
        batch.run_times(), key=lambda r: r.le
    )


async def test_the_flusher_writes_within_its_interval() -> None:
    store = MemoryBackend()
    tally = Tally()
    flusher = Flusher(tally, lambda: store, interval=0.01)
    tally.add(JobEvent.ENQUEUED, [MAIL, REPORT])
    flusher.soon()
    flusher.soon()  # one flush takes both
    written = await eventually(
        store.stats_totals, lambda totals: bool(totals.counts), what="the flushed counts"
    )
    assert {(c.queue, c.event, c.count) for c in written.counts} == {
        ("mail", JobEvent.ENQUEUED, 1),
        ("default", JobEvent.ENQUEUED, 1),
    }
    assert not tally
    await flusher.close(store)


async def test_a_failed_write_keeps_the_counts_for_the_next(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="workhorse.stats")
    closed = open_backend(f"sqlite:///{tmp_path / 'jobs.db'}")  # never connected
    store = MemoryBackend()
    tally = Tally()
    flusher = Flusher(tally, lambda: None, interval=3600)
    tally.add(JobEvent.COMPLETED, [MAIL])
    tally.observe(queue="mail", task="send", seconds=1.5)
    with pytest.raises(BackendUnavailableError):
        await closed.stats_totals()
    assert await flusher.flush(closed) is False
    assert await flusher.flush(closed) is False
    reports = [r for r in caplog.records if "could not write job statistics" in r.getMessage()]
    assert len(reports) == 1, "an outage is reported once"
    # at INFO: an outage is the worker's (or the caller's) to warn of, once
    assert reports[0].levelno == logging.INFO
    assert tally
    tally.add(JobEvent.COMPLETED, [MAIL])
    assert await flusher.flush(store) is True
    written = await store.stats_totals()
    assert [(c.event, c.count) for c in written.counts] == [(JobEvent.COMPLETED, 2)]
    assert [(r.le, r.count) for r in written.run_times] == [(2.5, 1)]
    assert any("written again" in r.getMessage() for r in caplog.records)


async def test_closing_writes_what_is_left_and_drops_the_timer() -> None:
    store = MemoryBackend()
    tally = Tally()
    flusher = Flusher(tally, lambda: store, interval=3600)
    tally.add(JobEvent.STARTED, [REPORT])
    flusher.soon()
    await flusher.close(store)
    assert [(c.event, c.count) for c in (await store.stats_totals()).counts] == [
        (JobEvent.STARTED, 1)
    ]
    flusher.soon()  # a new timer is allowed once the old one is gone
    await flusher.close(store)


def _job(job_id: int, key: JobKey) -> ClaimedJob:
    return ClaimedJob(
        id=job_id,
        task=key.task,
        queue=key.queue,
        args="[]",
        kwargs="{}",
        attempt=1,
        max_attempts=3,
        lease_token=f"token-{job_id}",
        tenant=key.tenant,
    )


def _taken(tally: Tally) -> StatsBatch:
    """What ``tally`` counted (something must be there)."""
    batch = tally.take()
    assert batch is not None
    return batch


def _events(batch: StatsBatch) -> dict[tuple[JobEvent, str], int]:
    """The counts of ``batch`` by event and task."""
    return {(c.event, c.task): c.count for c in batch.counts()}


def _outcome(job: ClaimedJob, state: JobState) -> Outcome:
    return Outcome(job_id=job.id, lease_token=job.lease_token, state=state)


async def test_the_meter_counts_starts_outcomes_and_run_times() -> None:
    clock = Clock(100.0)
    tally = Tally()
    flushes: list[None] = []
    running = RunningJobs(capacity=4)
    pending: list[Lease] = []
    meter = AttemptMeter(
        tally, lambda: flushes.append(None), running=running, pending=lambda: pending, clock=clock
    )
    jobs = [_job(1, MAIL), _job(2, MAIL), _job(3, REPORT), _job(4, REPORT)]
    meter.started(jobs)
    runner = JobRunner(Workhorse("memory://"))
    for job in jobs:
        running.add(RunningJob(job=job, ctx=runner.context_for(job), renewed_at=0.0))
    clock.now = 100.25
    for job in jobs[:2]:
        running.remove(running.jobs[job.id])
    meter.ended([_outcome(jobs[0], JobState.COMPLETED), _outcome(jobs[1], JobState.SCHEDULED)])
    # Job 3's lease was lost: it ends without an outcome. Job 4's waits to be stored.
    running.remove(running.jobs[3])
    running.remove(running.jobs[4])
    pending.append(Lease(job_id=4, token="token-4"))
    clock.now = 101.0
    meter.ended([])
    assert len(meter) == 1, "the lost attempt's start is forgotten, the pending one kept"
    meter.ended([_outcome(jobs[3], JobState.FAILED)])
    assert len(meter) == 0
    batch = _taken(tally)
    assert _events(batch) == {
        (JobEvent.STARTED, "send"): 2,
        (JobEvent.STARTED, "report"): 2,
        (JobEvent.COMPLETED, "send"): 1,
        (JobEvent.RETRIED, "send"): 1,
        (JobEvent.FAILED, "report"): 1,
    }
    assert sorted((r.task, r.le, r.count, r.seconds) for r in batch.run_times()) == [
        ("report", 1, 1, 1.0),
        ("send", 0.25, 2, 0.5),
    ]
    assert len(flushes) == 4


async def test_a_reclaim_reported_after_the_job_was_claimed_back_keeps_its_new_start() -> None:
    # The reclaim commits, this worker claims the requeued job back and runs it, and only
    # then does the maintenance loop report the reclaim: the new attempt's end counts.
    tally = Tally()
    running = RunningJobs(capacity=2)
    meter = AttemptMeter(tally, lambda: None, running=running, pending=list)
    job = _job(1, MAIL)
    meter.started([job])
    runner = JobRunner(Workhorse("memory://"))
    running.add(RunningJob(job=job, ctx=runner.context_for(job), renewed_at=0.0))
    meter.reclaimed([ReclaimedJob(1, JobState.QUEUED, MAIL.queue, MAIL.task, MAIL.tenant)])
    running.remove(running.jobs[1])
    meter.ended([_outcome(job, JobState.COMPLETED)])
    assert _events(_taken(tally)) == {
        (JobEvent.STARTED, "send"): 1,
        (JobEvent.RETRIED, "send"): 1,
        (JobEvent.COMPLETED, "send"): 1,
    }
    assert len(meter) == 0
