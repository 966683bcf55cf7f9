"""Retries: backoff between attempts, and the per-exception policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from workhorse import Backoff, JobState, Retry, RetryLater, Workhorse

from ._support import job_in_state

QUICK = Backoff(base=0.02, factor=2.0, max=0.1, jitter=0.0)


async def test_a_failing_job_is_retried_with_backoff_until_it_succeeds(app: Workhorse) -> None:
    attempts: list[int] = []

    @app.task(retry=Retry(max_attempts=3, backoff=QUICK))
    async def flaky() -> str:
        from workhorse import current_job

        attempts.append(current_job().attempt)
        if len(attempts) < 3:
            raise ConnectionError(f"try {len(attempts)}")
        return "ok"

    async with app.worker() as worker:
        job = await flaky.enqueue()
        assert await job.result(timeout=10) == "ok"
    assert attempts == [1, 2, 3]
    record = await job.refresh()
    assert record.attempt == 3
    assert record.error is not None, "the last error stays on record"
    assert record.error.type == "ConnectionError"
    assert worker.stats.retried == 2
    assert worker.stats.completed == 1


async def test_attempts_run_out(app: Workhorse) -> None:
    @app.task(retry=Retry(max_attempts=2, backoff=QUICK))
    def always_fails() -> None:
        raise RuntimeError("nope")

    async with app.worker() as worker:
        job = await always_fails.enqueue()
        record = await job_in_state(app, job.id, JobState.FAILED)
    assert record.attempt == 2
    assert record.error is not None
    assert (record.error.type, record.error.message) == ("RuntimeError", "nope")
    assert "always_fails" in (record.error.traceback or "")
    assert worker.stats.failed == 1


async def test_give_up_on_fails_at_once(local_app: Workhorse) -> None:
    app = local_app

    @app.task(retry=Retry(max_attempts=5, backoff=QUICK, give_up_on=(ValueError,)))
    async def picky() -> None:
        raise ValueError("bad input")

    async with app.worker():
        job = await picky.enqueue()
        record = await job_in_state(app, job.id, JobState.FAILED)
    assert record.attempt == 1


async def test_retry_on_retries_only_those_errors(local_app: Workhorse) -> None:
    app = local_app

    @app.task(retry=Retry(max_attempts=5, backoff=QUICK, retry_on=(ConnectionError,)))
    async def other_error() -> None:
        raise KeyError("not retryable")

    async with app.worker():
        job = await other_error.enqueue()
        record = await job_in_state(app, job.id, JobState.FAILED)
    assert record.attempt == 1
    assert record.error is not None
    assert record.error.type == "KeyError"


async def test_backoff_for_picks_the_delay_by_exception(local_app: Workhorse) -> None:
    app = local_app
    slow = Backoff(base=300.0, jitter=0.0)

    @app.task(retry=Retry(max_attempts=3, backoff=QUICK, backoff_for={TimeoutError: slow}))
    async def rate_limited() -> None:
        raise TimeoutError("upstream slow")

    async with app.worker():
        before = datetime.now(UTC)
        job = await rate_limited.enqueue()
        record = await job_in_state(app, job.id, JobState.SCHEDULED)
    assert record.attempt == 1
    assert record.run_at >= before + timedelta(seconds=290)


async def test_retry_later_asks_for_its_own_delay(local_app: Workhorse) -> None:
    app = local_app
    calls = 0

    @app.task(retry=Retry(max_attempts=3, backoff=Backoff(base=300.0)))
    async def polite() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RetryLater(delay=0.05, reason="not yet")
        return calls

    async with app.worker():
        job = await polite.enqueue()
        assert await job.result(timeout=10) == 2
    assert (await job.refresh()).attempt == 2


async def test_max_attempts_per_job_overrides_the_task(local_app: Workhorse) -> None:
    app = local_app

    @app.task(retry=Retry(max_attempts=5, backoff=QUICK))
    async def fails() -> None:
        raise RuntimeError("x")

    async with app.worker():
        job = await fails.options(max_attempts=1).enqueue()
        record = await job_in_state(app, job.id, JobState.FAILED)
    assert record.attempt == 1
