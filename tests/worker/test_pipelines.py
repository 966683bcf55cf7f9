"""Pipelines on every store: one job moves through its stages by itself, shows its
current stage, stops at a failing stage with that stage's error, and resumes there when
retried (earlier stages never run again)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from workhorse import Backoff, JobState, Retry, Workhorse, current_job
from workhorse.tasks import Task

from ._support import eventually, job_in_state, wait_event

QUICK = Backoff(base=0.02, factor=1.0, max=0.02, jitter=0.0)


def stages(app: Workhorse, effects: Counter[str], failures: dict[str, int]) -> list[Task[Any, Any]]:
    """validate -> parse -> index; a stage fails while ``failures`` holds attempts for it."""

    @app.task(name="doc.validate")
    async def validate(doc_id: int, strict: bool = False) -> dict[str, object]:
        effects["validate"] += 1
        return {"doc": doc_id, "strict": strict}

    @app.task(name="doc.parse")
    def parse(doc: dict[str, object]) -> dict[str, object]:  # a sync stage, in a thread
        effects["parse"] += 1
        if failures.get("parse", 0) > 0:
            failures["parse"] -= 1
            raise ValueError(f"cannot parse document {doc['doc']}")
        return {**doc, "words": 3}

    @app.task(name="doc.index")
    async def index(doc: dict[str, object]) -> str:
        effects["index"] += 1
        return f"indexed {doc['doc']} ({doc['words']} words)"

    return [validate, parse, index]


async def test_a_failed_stage_stops_the_job_and_retry_resumes_there(app: Workhorse) -> None:
    effects: Counter[str] = Counter()
    failures = {"parse": 1}
    ingest = app.pipeline(
        "ingest", stages=stages(app, effects, failures), retry=Retry(max_attempts=1)
    )
    async with app.worker():
        job = await ingest.enqueue(7, strict=True)
        failed = await job_in_state(app, job.id, JobState.FAILED)
        assert failed.stage == "parse"
        assert failed.error is not None
        assert (failed.error.type, failed.error.message) == (
            "ValueError",
            "cannot parse document 7",
        )
        progress = failed.meta["pipeline"]
        assert progress["done"] == ["validate"]
        assert progress["carry"] == {"doc": 7, "strict": True}
        assert effects == Counter(validate=1, parse=1)
        await app.retry(job.id)
        assert await job.result(timeout=10) == "indexed 7 (3 words)"
    assert effects == Counter(validate=1, parse=2, index=1)  # validate did not run again
    done = await job.refresh()
    assert done.stage == "index"
    assert done.meta["pipeline"]["done"] == ["validate", "parse", "index"]
    assert done.attempt == 2


async def test_automatic_retries_resume_at_the_failed_stage(app: Workhorse) -> None:
    effects: Counter[str] = Counter()
    ingest = app.pipeline(
        "ingest-retrying",
        stages=stages(app, effects, {"parse": 2}),
        retry=Retry(max_attempts=3, backoff=QUICK),
    )
    async with app.worker():
        job = await ingest.enqueue(8)
        assert await job.result(timeout=10) == "indexed 8 (3 words)"
    assert effects == Counter(validate=1, parse=3, index=1)
    assert (await job.refresh()).attempt == 3


async def test_the_record_shows_the_stage_that_runs(app: Workhorse) -> None:
    # Each stage waits for the test to have read the record while it runs, so that the
    # worker cannot move on before the test looks.
    first_entered, first_gate = asyncio.Event(), asyncio.Event()
    second_entered, second_gate = asyncio.Event(), asyncio.Event()

    @app.task
    async def first(n: int) -> int:
        first_entered.set()
        await first_gate.wait()
        return n + 1

    @app.task
    async def second(n: int) -> int:
        second_entered.set()
        await second_gate.wait()
        return n * 10

    pipe = app.pipeline("two", stages=[("start", first), ("wait", second)])
    async with app.worker():
        job = await pipe.enqueue(1)
        enqueued = await job.refresh()
        assert enqueued.stage == "start"
        await wait_event(first_entered)
        starting = await job.refresh()
        assert starting.state is JobState.RUNNING
        assert starting.stage == "start"
        first_gate.set()
        await wait_event(second_entered)
        running = await eventually(job.refresh, lambda r: r.stage == "wait", what="stage wait")
        assert running.state is JobState.RUNNING
        assert running.meta["pipeline"]["carry"] == 2
        second_gate.set()
        assert await job.result(timeout=10) == 20


async def test_cancelling_between_stages_stops_the_pipeline(app: Workhorse) -> None:
    ran: list[str] = []
    started = asyncio.Event()

    @app.task
    async def long_stage() -> str:
        ran.append("long")
        started.set()
        await current_job().wait_cancelled()
        return "done anyway"

    @app.task
    async def never(value: str) -> str:
        ran.append("never")
        return value

    pipe = app.pipeline("cancellable", stages=[long_stage, never])
    async with app.worker():
        job = await pipe.enqueue()
        await asyncio.wait_for(started.wait(), 10)
        await job.cancel()
        record = await job_in_state(app, job.id, JobState.CANCELLED)
    assert ran == ["long"]
    assert record.stage == "never"


async def test_pipelines_check_their_stages(app: Workhorse) -> None:
    @app.task
    async def one() -> None: ...

    with pytest.raises(ValueError, match="at least one stage"):
        app.pipeline("empty", stages=[])
    with pytest.raises(ValueError, match="must differ"):
        app.pipeline("twice", stages=[one, one])
    pipe = app.pipeline("ok", stages=[one])
    with pytest.raises(ValueError, match="already registered"):
        app.pipeline("ok", stages=[one])
    with pytest.raises(ValueError, match="pipeline itself"):
        app.pipeline("nested", stages=[pipe])
    with pytest.raises(TypeError, match="enqueue"):
        pipe()
    other = Workhorse("memory://")

    @other.task
    async def foreign() -> None: ...

    with pytest.raises(ValueError, match="another app"):
        app.pipeline("mixed", stages=[one, foreign])


async def test_pipelines_run_in_eager_mode(local_app: Workhorse) -> None:
    app = local_app
    effects: Counter[str] = Counter()
    ingest = app.pipeline("eager-ingest", stages=stages(app, effects, {}))
    with app.eager():
        job = await ingest.enqueue(3)
    assert await job.result(timeout=1) == "indexed 3 (3 words)"
    assert effects == Counter(validate=1, parse=1, index=1)
