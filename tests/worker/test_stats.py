"""The job statistics an app and its worker write: every stored job counted once as
enqueued (whatever enqueued it), every attempt as started and by how it ended, with its
run time; all of it in the store once the worker has stopped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from workhorse import Backoff, Retry, Workhorse, current_job
from workhorse.backends.base import JobEvent, JobFilter, JobTotals
from workhorse.jobs import JobState
from workhorse.workflows import chain

from ._support import eventually, job_in_state

QUICK_RETRY = Retry(max_attempts=2, backoff=Backoff(base=0.01, jitter=0))


def counted(totals: JobTotals) -> dict[tuple[str, JobEvent], int]:
    return {(c.task, c.event): c.count for c in totals.counts}


async def test_a_worker_counts_attempts_by_outcome_with_run_times(app: Workhorse) -> None:
    @app.task(name="tests.ok")
    async def ok() -> None:
        return None

    @app.task(name="tests.flaky", retry=QUICK_RETRY)
    async def flaky() -> None:
        if current_job().attempt == 1:
            raise RuntimeError("first attempts fail")

    @app.task(name="tests.broken", queue="mail", retry=QUICK_RETRY)
    def broken() -> None:
        raise RuntimeError("always")

    jobs = [await ok.enqueue(), await ok.enqueue(), await flaky.enqueue(), await broken.enqueue()]
    async with app.worker():
        for job in jobs:
            await job.wait(timeout=10)
    # Stopping wrote everything: no waiting for the next flush.
    store = await app.backend()
    totals = await store.stats_totals()
    assert counted(totals) == {
        ("tests.ok", JobEvent.ENQUEUED): 2,
        ("tests.ok", JobEvent.STARTED): 2,
        ("tests.ok", JobEvent.COMPLETED): 2,
        ("tests.flaky", JobEvent.ENQUEUED): 1,
        ("tests.flaky", JobEvent.STARTED): 2,
        ("tests.flaky", JobEvent.RETRIED): 1,
        ("tests.flaky", JobEvent.COMPLETED): 1,
        ("tests.broken", JobEvent.ENQUEUED): 1,
        ("tests.broken", JobEvent.STARTED): 2,
        ("tests.broken", JobEvent.RETRIED): 1,
        ("tests.broken", JobEvent.FAILED): 1,
    }
    assert {c.queue for c in totals.counts if c.task == "tests.broken"} == {"mail"}
    attempts = {(r.queue, r.task): 0 for r in totals.run_times}
    for row in totals.run_times:
        attempts[(row.queue, row.task)] += row.count
        assert 0 <= row.seconds <= row.count * row.le
    assert attempts == {
        ("default", "tests.ok"): 2,
        ("default", "tests.flaky"): 2,
        ("mail", "tests.broken"): 2,
    }
    since = datetime.now(UTC) - timedelta(minutes=5)
    timeline = await store.stats_timeline(since=since)
    assert sum(m.count for m in timeline if m.event is JobEvent.COMPLETED) == 3
    assert sum(m.count for m in timeline if m.event is JobEvent.FAILED) == 1


async def test_each_stored_job_is_counted_once_as_enqueued(sqlite_app: Workhorse) -> None:
    app = sqlite_app

    @app.task(name="tests.step")
    async def step(n: int = 0) -> int:
        return n + 1

    await step.options(unique_key="once").enqueue()
    duplicate = await step.options(unique_key="once").enqueue()
    assert not duplicate.created
    await app.enqueue_many([step.call(1), step.call(2)])
    await chain(step.call(), step.call(), step.call()).enqueue()
    with app.eager():
        await step.enqueue()  # a test mode: it never meets a worker, so it counts nothing
    await app.aclose()  # writes what this process counted
    store = await app.backend()
    stored = await store.job_count(filter=JobFilter(task="tests.step"))
    assert stored == 7
    assert counted(await store.stats_totals()) == {("tests.step", JobEvent.ENQUEUED): 6}


async def test_periodic_ticks_are_counted_as_enqueued(app: Workhorse) -> None:
    @app.periodic(every=timedelta(seconds=1), name="beat")
    async def beat() -> None:
        return None

    store = await app.backend()
    done = JobFilter(task=beat.name, states=(JobState.COMPLETED,))
    async with app.worker():
        await eventually(
            lambda: store.job_count(filter=done), lambda n: n >= 2, what="two ticks run"
        )
    ticks = await store.job_count(filter=JobFilter(task=beat.name))
    assert counted(await store.stats_totals())[(beat.name, JobEvent.ENQUEUED)] == ticks


async def test_the_reclaim_counts_how_lost_attempts_ended(app: Workhorse) -> None:
    @app.task(name="tests.again", retry=QUICK_RETRY)
    async def again() -> None:
        return None

    @app.task(name="tests.last", retry=Retry(max_attempts=1))
    async def last() -> None:
        return None

    @app.task(name="tests.stopped")
    async def stopped() -> None:
        return None

    # Scheduled far ahead so that only the "dead worker" below claims them.
    jobs = [await task.options(delay=3600).enqueue() for task in (again, last, stopped)]
    store = await app.backend()
    # A worker that died with all three: leases that expire at once, one cancel asked.
    lost = await store.job_claim(
        worker_id="dead",
        queues=None,
        limit=3,
        lease_seconds=0.01,
        job_ids=[job.id for job in jobs],
    )
    assert len(lost) == 3
    await store.job_cancel(job_id=jobs[2].id)
    async with app.worker():
        await job_in_state(app, jobs[0].id, JobState.COMPLETED)
        await job_in_state(app, jobs[1].id, JobState.FAILED)
        await job_in_state(app, jobs[2].id, JobState.CANCELLED)
    totals = await store.stats_totals()
    assert counted(totals) == {
        ("tests.again", JobEvent.ENQUEUED): 1,
        ("tests.again", JobEvent.RETRIED): 1,  # the lost attempt; it ran again
        ("tests.again", JobEvent.STARTED): 1,  # the dead worker's start was never counted here
        ("tests.again", JobEvent.COMPLETED): 1,
        ("tests.last", JobEvent.ENQUEUED): 1,
        ("tests.last", JobEvent.FAILED): 1,
        ("tests.stopped", JobEvent.ENQUEUED): 1,
        ("tests.stopped", JobEvent.CANCELLED): 1,
    }
    # A lost attempt's run time is unknown (it started in another process).
    assert {(r.task, r.count) for r in totals.run_times} == {("tests.again", 1)}
