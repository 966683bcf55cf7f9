"""``workhorse.testing``: the helpers the README shows for testing code that enqueues,
async and sync, and the messages they fail with."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator

import pytest

from workhorse import Retry, Workhorse, current_job
from workhorse.testing import (
    assert_enqueued,
    assert_enqueued_sync,
    enqueued,
    enqueued_sync,
    refute_enqueued,
    refute_enqueued_sync,
    run_job,
)


@pytest.fixture
async def app() -> AsyncIterator[Workhorse]:
    application = Workhorse("memory://")
    try:
        yield application
    finally:
        await application.aclose()


@pytest.fixture
def sync_app() -> Iterator[Workhorse]:
    application = Workhorse("memory://")
    try:
        yield application
    finally:
        application.close()


# -- run_job -----------------------------------------------------------------------------


async def test_run_job_runs_the_readme_task_with_a_real_context(app: Workhorse) -> None:
    @app.task(queue="media", retry=Retry(max_attempts=5), timeout=60)
    async def resize(path: str, width: int) -> str:
        job = current_job()
        job.set_progress(50, "resizing")
        assert (job.attempt, job.max_attempts, job.queue) == (1, 5, "media")
        return f"{path}@{width}"

    assert await run_job(resize, "cat.png", width=10) == "cat.png@10"


async def test_run_job_runs_sync_tasks_in_a_thread_at_the_given_attempt(app: Workhorse) -> None:
    @app.task(name="reports.build", retry=3)
    def build(n: int) -> tuple[int, str, int, bool]:
        job = current_job()
        return threading.get_ident(), job.task_name, job.attempt, job.is_last_attempt

    thread, name, attempt, last = await run_job(build, 1, attempt=3)

    assert thread != threading.get_ident(), "a sync task runs off the event loop"
    assert (name, attempt, last) == ("reports.build", 3, True)


async def test_run_job_lets_the_tasks_error_through(app: Workhorse) -> None:
    @app.task
    def broken() -> None:
        raise LookupError("no such invoice")

    with pytest.raises(LookupError, match="no such invoice"):
        await run_job(broken)


# -- what was enqueued ---------------------------------------------------------------------


async def test_assert_enqueued_matches_and_counts(app: Workhorse) -> None:
    @app.task(name="mail.send")
    async def send(to: str, *, urgent: bool = False) -> None: ...

    await send.enqueue("a@b.c")
    await send.options(queue="urgent").enqueue("a@b.c", urgent=True)

    both = await assert_enqueued(app, send, args=["a@b.c"], count=2)
    [urgent] = await assert_enqueued(app, "mail.send", kwargs={"urgent": True}, queue="urgent")
    assert [job.id for job in both] == [job.id for job in await enqueued(app, send)]
    assert urgent.id == both[1].id, "oldest first"
    await refute_enqueued(app, send, args=["x@y.z"])


async def test_a_failing_assert_enqueued_says_what_waits_instead(app: Workhorse) -> None:
    @app.task(name="mail.send")
    async def send(to: str) -> None: ...

    job = await send.options(tenant="acme").enqueue("a@b.c")

    with pytest.raises(AssertionError) as wrong_args:
        await assert_enqueued(app, send, args=["x@y.z"])
    with pytest.raises(AssertionError) as wrong_count:
        await assert_enqueued(app, send, count=2)

    assert str(wrong_args.value) == (
        "expected a job of mail.send with args=['x@y.z'], found 0; waiting (1):\n"
        f"  job {job.id}: mail.send args=['a@b.c'] kwargs={{}} queue='default' tenant='acme'"
    )
    assert str(wrong_count.value).startswith("expected 2 job(s) of mail.send, found 1; waiting")


async def test_a_failing_refute_enqueued_lists_what_it_found(app: Workhorse) -> None:
    @app.task(name="mail.send")
    async def send(to: str) -> None: ...

    job = await send.enqueue("a@b.c")

    with pytest.raises(AssertionError) as raised:
        await refute_enqueued(app, send)

    assert str(raised.value) == (
        "expected no job of mail.send; found (1):\n"
        f"  job {job.id}: mail.send args=['a@b.c'] kwargs={{}} queue='default'"
    )


def test_the_sync_helpers_from_sync_code(sync_app: Workhorse) -> None:
    app = sync_app

    @app.task(name="mail.send")
    def send(to: str) -> None: ...

    job = send.enqueue_sync("a@b.c")

    [record] = assert_enqueued_sync(app, send, args=["a@b.c"])
    assert record.id == job.id
    assert [r.id for r in enqueued_sync(app)] == [job.id]
    assert enqueued_sync(app, "mail.send", args=["x@y.z"]) == []
    refute_enqueued_sync(app, send, args=["x@y.z"])
    with pytest.raises(AssertionError, match=r"expected no job of mail\.send"):
        refute_enqueued_sync(app, send)
    with pytest.raises(AssertionError, match=r"expected 2 job\(s\) of mail\.send, found 1"):
        assert_enqueued_sync(app, send, count=2)
