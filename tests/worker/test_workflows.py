"""Workflows run by a worker on every store: chains pass results along, a group's
callback gets every result, a 20-node graph runs in a valid order, failures end the parts
downstream (never leaving them blocked), and a cancelled workflow stops."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import timedelta

import pytest

from workhorse import (
    JobCancelledError,
    JobFailedError,
    JobNotFoundError,
    JobState,
    Retry,
    Workflow,
    WorkflowState,
    Workhorse,
    chain,
    current_job,
    group,
)
from workhorse.workflows import Part

from ._support import eventually, job_in_state, wait_event


async def test_a_chain_passes_each_result_to_the_next(app: Workhorse) -> None:
    @app.task
    async def fetch(n: int) -> list[int]:
        return list(range(n))

    @app.task
    def total(values: list[int], plus: int = 0) -> int:
        return sum(values) + plus

    @app.task
    async def describe(value: int, unit: str) -> str:
        return f"{value} {unit}"

    async with app.worker():
        handle = await chain(
            fetch.call(5), total.partial(plus=100), describe.partial("points"), name="score"
        ).enqueue()
        assert await handle.result(timeout=10) == "110 points"
    record = await handle.refresh()
    assert record.name == "score"
    assert record.state is WorkflowState.COMPLETED
    assert [p.result for p in record.parts] == [[0, 1, 2, 3, 4], 110, "110 points"]
    second = await handle.parts[1].refresh()
    assert second.args == []  # results are passed at run time, not stored as arguments
    assert second.workflow_id == handle.id


async def test_a_group_callback_gets_every_result_in_order(app: Workhorse) -> None:
    @app.task
    async def square(n: int) -> int:
        await asyncio.sleep(0.01 * (5 - n))  # finish out of order
        return n * n

    @app.task
    async def collect(results: list[int], label: str) -> dict[str, object]:
        return {"label": label, "results": results}

    async with app.worker(concurrency=5):
        handle = (
            await group(*(square.call(n) for n in range(5))).then(collect.partial("sq")).enqueue()
        )
        assert await handle.result(timeout=10) == {"label": "sq", "results": [0, 1, 4, 9, 16]}
        alone = await group(square.call(2), square.call(3)).enqueue()
        assert await alone.result(timeout=10) == [4, 9]


async def test_a_twenty_node_graph_runs_in_a_valid_order(app: Workhorse) -> None:
    rng = random.Random(5)
    edges = {i: sorted(rng.sample(range(i), k=min(i, rng.randint(0, 3)))) for i in range(20)}
    started: dict[int, float] = {}
    ended: dict[int, float] = {}

    @app.task
    async def node(i: int) -> int:
        started[i] = time.monotonic()
        await asyncio.sleep(rng.uniform(0, 0.02))
        ended[i] = time.monotonic()
        return i

    workflow = Workflow("dag")
    parts: list[Part[int]] = []
    for i in range(20):
        parts.append(workflow.add(node.call(i), after=[parts[d] for d in edges[i]]))
    async with app.worker(concurrency=6):
        handle = await workflow.enqueue()
        record = await handle.wait(timeout=30)
    assert record.state is WorkflowState.COMPLETED
    assert sorted(started) == list(range(20))
    for child, parents in edges.items():
        for parent in parents:
            assert started[child] >= ended[parent], f"node {child} started before {parent} ended"
    ids = [part.id for part in handle.parts]
    assert record.edges == [(ids[c], ids[p]) for c in range(20) for p in edges[c]]
    assert sum(1 for parents in edges.values() if parents) > 10  # a real graph


@pytest.mark.parametrize(
    ("policy", "ended"), [("fail", JobState.FAILED), ("cancel", JobState.CANCELLED)]
)
async def test_a_failed_part_ends_everything_downstream(
    app: Workhorse, policy: str, ended: JobState
) -> None:
    ran: list[str] = []

    @app.task(retry=Retry(max_attempts=1))
    async def step(name: str, fail: bool = False) -> str:
        ran.append(name)
        if fail:
            raise RuntimeError(f"{name} broke")
        return name

    workflow = Workflow(on_failure=policy)  # type: ignore[arg-type]
    a = workflow.add(step.call("a"))
    b = workflow.add(step.call("b", fail=True), after=[a])
    c = workflow.add(step.call("c"), after=[b])
    d = workflow.add(step.call("d"), after=[c, a])
    side = workflow.add(step.call("side"), after=[a])
    async with app.worker():
        handle = await workflow.enqueue()
        with pytest.raises(JobFailedError, match="b broke") as caught:
            await handle.result(timeout=10)
    assert caught.value.job_id == handle.parts[b.index].id
    assert sorted(ran) == ["a", "b", "side"]
    record = await handle.refresh()
    states = {p.id: p.state for p in record.parts}
    assert states[handle.parts[c.index].id] is ended
    assert states[handle.parts[d.index].id] is ended
    assert states[handle.parts[side.index].id] is JobState.COMPLETED
    assert record.state is WorkflowState.FAILED
    d_record = await handle.parts[d.index].refresh()
    assert d_record.error is not None
    assert d_record.error.type == "DependencyFailedError"
    assert f"job {handle.parts[b.index].id}" in d_record.error.message
    assert await app.list_jobs(states=[JobState.BLOCKED]) == []


async def test_cancelling_a_workflow_stops_its_parts(app: Workhorse) -> None:
    started = asyncio.Event()
    ran: list[str] = []

    @app.task
    async def slow() -> None:
        ran.append("slow")
        started.set()
        await current_job().wait_cancelled()
        current_job().raise_if_cancelled()

    @app.task
    async def after_slow() -> None:
        ran.append("after")

    workflow = Workflow()
    first = workflow.add(slow.call())
    workflow.add(after_slow.call(), after=[first])
    workflow.add(after_slow.call(), after=[first])
    async with app.worker():
        handle = await workflow.enqueue()
        await asyncio.wait_for(started.wait(), 10)
        cancelled = await handle.cancel()
        assert cancelled.cancelled_at is not None
        record = await eventually(
            handle.refresh, lambda r: r.state is not WorkflowState.ACTIVE, what="workflow end"
        )
        assert record.state is WorkflowState.CANCELLED
        with pytest.raises(JobCancelledError):
            await handle.result(timeout=5)
    assert ran == ["slow"]
    assert {p.state for p in record.parts} == {JobState.CANCELLED}


async def test_a_part_released_for_later_starts_when_due(app: Workhorse) -> None:
    delay = 2.0
    ran = asyncio.Event()

    @app.task
    async def first() -> None:
        return None

    @app.task
    async def then() -> None:
        ran.set()

    workflow = Workflow()
    head = workflow.add(first.call())
    tail = workflow.add(then.options(delay=delay).call(), after=[head])
    # Polls and maintenance (which promotes due scheduled jobs) are 30 s away: only a
    # wake-up when the part is released, then sleeping until its run_at, starts it.
    async with app.worker(poll_interval=30.0, reclaim_interval=30.0):
        handle = await workflow.enqueue()
        await wait_event(ran, timeout=delay + 5)
    head_record = await handle.parts[head.index].refresh()
    tail_record = await handle.parts[tail.index].refresh()
    assert head_record.finished_at is not None
    assert tail_record.started_at is not None
    # Released before its time, so scheduled, not queued; started once due.
    assert head_record.finished_at < tail_record.run_at
    assert tail_record.started_at >= tail_record.run_at - timedelta(milliseconds=5)


async def test_a_part_may_wait_for_a_job_enqueued_before(app: Workhorse) -> None:
    @app.task
    async def produce(n: int) -> int:
        return n * 10

    @app.task
    async def consume(values: list[int]) -> int:
        return sum(values)

    async with app.worker():
        first = await produce.enqueue(1)
        second = await produce.enqueue(2)
        workflow = Workflow()
        workflow.add(consume.partial(), after=[second, first], inputs="results")
        handle = await workflow.enqueue()
        assert await handle.result(timeout=10) == 30


async def test_workflows_run_in_eager_mode(local_app: Workhorse) -> None:
    app = local_app

    @app.task
    def inc(n: int) -> int:
        return n + 1

    with app.eager():
        handle = await chain(inc.call(1), inc.partial(), inc.partial()).enqueue()
        assert (await handle.status()) is WorkflowState.COMPLETED
        assert await handle.result(timeout=1) == 4


async def test_a_part_whose_dependency_result_is_gone_fails_clearly(app: Workhorse) -> None:
    @app.task
    async def make() -> int:
        return 1

    @app.task(retry=Retry(max_attempts=3))
    async def use(value: int) -> int:
        return value

    async with app.worker():
        made = await make.enqueue()
        assert await made.result(timeout=10) == 1
    workflow = Workflow()
    workflow.add(use.partial(), after=[made], inputs="result")
    handle = await workflow.enqueue()
    assert (await handle.parts[0].refresh()).state is JobState.QUEUED
    store = await app.backend()
    assert await store.job_delete(job_id=made.id)  # pruned before the part ran
    async with app.worker():
        record = await job_in_state(app, handle.parts[0].id, JobState.FAILED)
    assert record.attempt == 1  # no retry can bring the result back
    assert record.error is not None
    assert record.error.type == "DependencyFailedError"
    assert f"job {made.id}, which was deleted" in record.error.message
    again = Workflow()
    again.add(use.partial(), after=[made], inputs="result")
    with pytest.raises(JobNotFoundError, match=str(made.id)):
        await again.enqueue()
