"""How an idle worker waits: until the next scheduled job as the store measures it, and
never in a tight loop when the store calls a job due that the claim cannot take."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from workhorse import JobState, Workhorse

from ._support import eventually, job_in_state, wait_event

F = TypeVar("F", bound=Callable[..., Coroutine[Any, Any, Any]])


def counted(calls: list[int], call: F) -> F:
    """``call``, counting its calls in ``calls[0]``."""

    async def counting(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return await call(*args, **kwargs)

    return counting  # type: ignore[return-value]


async def test_a_due_job_held_back_by_a_limit_does_not_spin_the_claim_loop(
    app: Workhorse,
) -> None:
    started = asyncio.Event()
    gate = asyncio.Event()

    @app.task(name="tests.single", concurrency=1)
    async def single(first: bool) -> None:
        if first:
            started.set()
            await gate.wait()

    store = await app.backend()
    claims = [0]
    store.job_claim_limited = counted(claims, store.job_claim_limited)  # type: ignore[method-assign]
    # No promotion meanwhile (reclaim_interval): the held job stays scheduled and due.
    async with app.worker(concurrency=4, reclaim_interval=60.0, poll_interval=0.5):
        first = await single.enqueue(True)
        await wait_event(started)
        held = await single.options(delay=0.1).enqueue(False)
        await eventually(lambda: store.job_next_due_in(queues=None), lambda due_in: due_in == 0.0)
        claims[0] = 0
        await asyncio.sleep(1.0)  # a window to count claims in, not a synchronisation
        in_a_second = claims[0]
        assert (await app.get_job(held.id)).state is JobState.SCHEDULED, "still held back"
        gate.set()
        await job_in_state(app, held.id, JobState.COMPLETED)
    assert (await first.refresh()).state is JobState.COMPLETED
    # A tight loop makes hundreds of claims a second; backing off from 10 ms to the
    # poll interval makes about ten.
    assert in_a_second in range(1, 26), in_a_second


async def test_an_idle_worker_starts_what_it_claimed_before_asking_the_store_anything_more(
    app: Workhorse,
) -> None:
    """The pickup path: after a claim, the attempts start first; the question of when
    the next job is due (a store round trip) waits until they have."""
    events: list[str] = []
    ran = asyncio.Event()

    @app.task(name="tests.mark")
    async def mark() -> None:
        events.append("started")
        ran.set()

    store = await app.backend()
    claim, next_due_in = store.job_claim, store.job_next_due_in

    async def claiming(**kwargs: Any) -> Any:
        jobs = await claim(**kwargs)
        events.append(f"claimed {len(jobs)}")
        return jobs

    async def asking(**kwargs: Any) -> Any:
        events.append("next due?")
        return await next_due_in(**kwargs)

    store.job_claim = claiming  # type: ignore[method-assign]
    store.job_next_due_in = asking  # type: ignore[method-assign]
    async with app.worker(concurrency=4):
        await mark.enqueue()
        await wait_event(ran)
    after = events[events.index("claimed 1") + 1 :]
    assert after[0] == "started", events


async def test_the_producer_waits_for_wake_ups_only_while_it_has_room(app: Workhorse) -> None:
    """``idle`` tells the store's change feed when wake-ups are wanted (it may rest while
    they are not): set while the worker sleeps with a free slot, clear while every slot
    is taken."""
    started = asyncio.Event()
    gate = asyncio.Event()

    @app.task(name="tests.hold")
    async def hold() -> None:
        started.set()
        await gate.wait()

    async def idle() -> bool:
        return producer.idle.is_set()

    worker = app.worker(concurrency=1)
    async with worker:
        assert worker._session is not None
        producer = worker._session.producer
        await eventually(idle, what="an idle worker waiting for wake-ups")
        job = await hold.enqueue()
        await wait_event(started)
        assert not producer.idle.is_set(), "a full worker ignores wake-ups"
        gate.set()
        await job_in_state(app, job.id, JobState.COMPLETED)
        await eventually(idle, what="the worker waiting for wake-ups again")
