"""The completer against a store that refuses some outcomes: the refused ones are
isolated, replaced by a failure saying why (or dropped when even that is refused), and
every other outcome of the batch is stored. Runs on every store; PostgreSQL shows a real
refusal (a NUL character in text). And how it gathers outcomes that keep coming into
fewer writes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

import pytest

from _polling import DEADLINE, eventually
from workhorse.backends.base import Backend, ClaimedJob, NewJob, Outcome
from workhorse.jobs import JobError, JobState
from workhorse.worker import completer as completer_module
from workhorse.worker.completer import Completer
from workhorse.worker.store_health import StoreHealth

CompleteMany = Callable[..., Awaitable[list[bool]]]


async def claimed(backend: Backend, count: int) -> list[ClaimedJob]:
    """``count`` jobs, inserted and claimed (in id order)."""
    await backend.job_insert_many([NewJob(task="tests.task") for _ in range(count)])
    jobs = await backend.job_claim(worker_id="w", queues=None, limit=count, lease_seconds=60)
    assert len(jobs) == count
    return sorted(jobs, key=lambda job: job.id)


def done(job: ClaimedJob) -> Outcome:
    return Outcome(job.id, job.lease_token, JobState.COMPLETED, result=str(job.id))


def refusing(
    backend: Backend, refuse: Callable[[Outcome], bool], *, transient_once: bool = False
) -> list[int]:
    """Make ``backend`` refuse (ValueError) every batch holding an outcome that
    ``refuse`` picks; with ``transient_once``, the first batch that does not hold one
    meets a ``ConnectionError`` instead. Returns the sizes of the batches it was sent."""
    complete_many: CompleteMany = backend.job_complete_many
    sizes: list[int] = []
    flaky = [transient_once]

    async def complete(outcomes: Sequence[Outcome], *, now: datetime | None = None) -> list[bool]:
        sizes.append(len(outcomes))
        bad = [o.job_id for o in outcomes if refuse(o)]
        if bad:
            raise ValueError(f"the store refuses job {bad[0]}")
        if flaky[0]:
            flaky[0] = False
            raise ConnectionError("store unreachable")
        return await complete_many(outcomes, now=now)

    backend.job_complete_many = complete  # type: ignore[method-assign]
    return sizes


async def drain(backend: Backend, outcomes: list[Outcome]) -> list[Outcome]:
    """Submit ``outcomes`` at once (one batch) and run a completer until they are all
    handled; returns the outcomes it reports as stored."""
    stored: list[Outcome] = []
    completer = Completer(backend, StoreHealth("w", backend), on_applied=stored.extend)
    for outcome in outcomes:
        completer.submit(outcome, attempt=1)
    writing = asyncio.create_task(completer.run())
    assert await completer.close(timeout=10) == [], "everything was handled"
    await writing
    return stored


async def state_of(backend: Backend, job_id: int) -> JobState:
    record = await backend.job_get(job_id=job_id)
    assert record is not None
    return record.state


async def test_a_refused_outcome_fails_its_job_and_the_others_are_stored(
    backend: Backend,
) -> None:
    jobs = await claimed(backend, 6)
    poisoned = jobs[2].id
    sizes = refusing(backend, lambda o: o.job_id == poisoned and o.state is JobState.COMPLETED)
    stored = await drain(backend, [done(job) for job in jobs])
    assert sorted(o.job_id for o in stored) == [job.id for job in jobs]
    assert sizes[0] == 6, "one batch first"
    for job in jobs:
        expected = JobState.FAILED if job.id == poisoned else JobState.COMPLETED
        assert await state_of(backend, job.id) is expected
    record = await backend.job_get(job_id=poisoned)
    assert record is not None
    assert record.error is not None
    assert record.error.type == "UnstorableOutcomeError"
    assert record.error.message == (
        f"the outcome could not be stored: the store refuses job {poisoned}"
    )


async def test_an_outcome_refused_even_as_a_failure_is_dropped_with_one_error(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    jobs = await claimed(backend, 4)
    poisoned = jobs[1].id
    refusing(backend, lambda o: o.job_id == poisoned)
    with caplog.at_level(logging.WARNING, logger="workhorse.worker"):
        stored = await drain(backend, [done(job) for job in jobs])
    assert sorted(o.job_id for o in stored) == [job.id for job in jobs if job.id != poisoned]
    # Still running under its lease: the lease expiry sends it back to the queue.
    assert await state_of(backend, poisoned) is JobState.RUNNING
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert f"job {poisoned}:" in errors[0]
    assert "lease expires" in errors[0]


async def test_a_transient_failure_while_isolating_loses_and_repeats_nothing(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    jobs = await claimed(backend, 5)
    poisoned = jobs[4].id
    refusing(
        backend,
        lambda o: o.job_id == poisoned and o.state is JobState.COMPLETED,
        transient_once=True,
    )
    with caplog.at_level(logging.WARNING, logger="workhorse.worker"):
        stored = await drain(backend, [done(job) for job in jobs])
    assert sorted(o.job_id for o in stored) == [job.id for job in jobs], "each reported once"
    assert not any("lease lost" in r.getMessage() for r in caplog.records)
    for job in jobs[:4]:
        assert await state_of(backend, job.id) is JobState.COMPLETED
    assert await state_of(backend, poisoned) is JobState.FAILED


@pytest.mark.parametrize("backend_kind", ["postgres"], indirect=True)
async def test_postgresql_refusing_a_nul_character_jams_nothing(backend: Backend) -> None:
    jobs = await claimed(backend, 3)
    raw = Outcome(
        jobs[1].id,
        jobs[1].lease_token,
        JobState.FAILED,
        error=JobError(type="ValueError", message="boom\x00"),  # not made storable
    )
    stored = await drain(backend, [done(jobs[0]), raw, done(jobs[2])])
    assert len(stored) == 3
    assert await state_of(backend, jobs[0].id) is JobState.COMPLETED
    assert await state_of(backend, jobs[2].id) is JobState.COMPLETED
    record = await backend.job_get(job_id=jobs[1].id)
    assert record is not None
    assert record.state is JobState.FAILED
    assert record.error is not None
    assert record.error.type == "UnstorableOutcomeError"
    assert "NUL" in record.error.message


def recording(backend: Backend) -> tuple[list[int], asyncio.Event]:
    """Record the size of each batch ``backend`` is sent; the first write waits until
    the returned event is set."""
    complete_many: CompleteMany = backend.job_complete_many
    sizes: list[int] = []
    release = asyncio.Event()

    async def complete(outcomes: Sequence[Outcome], *, now: datetime | None = None) -> list[bool]:
        sizes.append(len(outcomes))
        if len(sizes) == 1:
            await release.wait()
        return await complete_many(outcomes, now=now)

    backend.job_complete_many = complete  # type: ignore[method-assign]
    return sizes, release


async def _gathering(
    backend: Backend, jobs: list[ClaimedJob], gather: float, *, meanwhile: int = 0
) -> tuple[Completer, list[Outcome], asyncio.Task[None], list[int]]:
    """A running completer that has written the first job's outcome (sent at once:
    nothing came before it, however long ``gather`` is), with the next ``meanwhile``
    jobs' outcomes submitted while that write was in flight; and the batch sizes."""
    sizes, release = recording(backend)
    stored: list[Outcome] = []
    completer = Completer(
        backend, StoreHealth("w", backend), on_applied=stored.extend, gather=gather
    )
    writing = asyncio.create_task(completer.run())
    completer.submit(done(jobs[0]), attempt=1)

    async def sent() -> list[int]:
        return sizes

    await eventually(sent, lambda batches: batches == [1], what="the first outcome sent")
    for job in jobs[1 : 1 + meanwhile]:
        completer.submit(done(job), attempt=1)
    release.set()

    async def written() -> int:
        return len(stored)

    # A completer that wrote on at once would have sent the next batch in the same step.
    await eventually(written, lambda count: count >= 1, what="the first outcome written")
    return completer, stored, writing, sizes


async def test_outcomes_that_keep_coming_are_written_together(backend: Backend) -> None:
    jobs = await claimed(backend, 4)
    completer, stored, writing, sizes = await _gathering(backend, jobs, gather=60.0, meanwhile=2)
    assert sizes == [1], "the outcomes that came meanwhile wait for more"
    completer.submit(done(jobs[3]), attempt=1)
    assert await completer.close(timeout=DEADLINE) == [], "closing ends the wait"
    await writing
    assert sizes == [1, 3]
    assert [o.job_id for o in stored] == [job.id for job in jobs]


async def test_a_full_batch_is_written_without_waiting(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(completer_module, "BATCH_MAX", 3)
    jobs = await claimed(backend, 4)
    completer, stored, writing, sizes = await _gathering(backend, jobs, gather=60.0)
    for job in jobs[1:]:
        completer.submit(done(job), attempt=1)

    async def written() -> int:
        return len(stored)

    await eventually(written, lambda count: count == 4, what="the full batch written")
    assert sizes == [1, 3]
    assert await completer.close(timeout=DEADLINE) == []
    await writing
