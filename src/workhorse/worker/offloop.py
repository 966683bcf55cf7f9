"""Sync calls off the event loop, in a thread or a child process, that an attempt can
give up on.

A call's timeout starts when the call starts running, never while it waits for a free
thread or child. A call given up on (its timeout, a cancellation, the end of the
shutdown grace, a lost lease) is abandoned, and what that means depends on where it
runs:

- in a thread: a thread cannot be stopped. The call runs on and its result is
  discarded; the thread pool grows by one thread until it returns, so that abandoned
  calls never take the threads that new attempts need (one WARNING per call says so).
- in a child process: the child is terminated, so the call stops and its slot truly
  comes back (see ``_processes.ProcessPool``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from workhorse.worker._threads import DaemonThreadPool

logger = logging.getLogger("workhorse.worker")


@dataclass(eq=False)
class OffLoopCall:
    """One call running (or about to run) off the event loop."""

    label: str
    """What runs, for the logs ("job 12 (reports.build)")."""
    started: asyncio.Future[None]
    """Done once the call runs in its thread or child."""
    result: asyncio.Future[Any] = field(init=False)
    """The call's return value or exception."""
    why: str = "it was abandoned"
    """Why the call was given up on (set by :meth:`abandon`)."""

    def abandon(self, why: str) -> None:
        """Give up on the call: its result will never be used."""
        self.why = why
        self.result.cancel()


async def settle(
    call: OffLoopCall,
    timeout: float | None,
    *,
    timed_out: Callable[[], Exception],
    on_abandon: Callable[[], None],
) -> Any:
    """The call's result; ``timed_out()`` is raised once it has run ``timeout`` seconds
    (waiting for a thread or child does not count). Cancelling the caller abandons the
    call too; ``on_abandon()`` runs first either way (to flag the job's context)."""
    try:
        await asyncio.wait({call.started, call.result}, return_when=asyncio.FIRST_COMPLETED)
        done, _ = await asyncio.wait({call.result}, timeout=timeout)
    except asyncio.CancelledError:
        on_abandon()
        call.abandon("its attempt was stopped")
        raise
    if not done:
        on_abandon()
        call.abandon(f"it ran past its timeout of {timeout}s")
        raise timed_out()
    return call.result.result()


def in_thread(pool: DaemonThreadPool | None, fn: Callable[[], Any], label: str) -> OffLoopCall:
    """Run ``fn()`` in ``pool`` (None: the event loop's default executor, which does
    not grow for abandoned calls)."""
    loop = asyncio.get_running_loop()
    call = OffLoopCall(label, loop.create_future())

    def run() -> Any:
        loop.call_soon_threadsafe(_begin, call.started)
        return fn()

    if pool is None:
        call.result = loop.create_task(_in_default_executor(call, loop.run_in_executor(None, run)))
    else:
        call.result = loop.create_task(_in_pool(call, pool, pool.submit(run)))
    return call


async def _in_pool(call: OffLoopCall, pool: DaemonThreadPool, future: Future[Any]) -> Any:
    try:
        return await asyncio.wrap_future(future)
    except asyncio.CancelledError:
        if not future.cancel() and not future.done():  # running: a thread cannot stop
            size = pool.abandoned(future)
            logger.warning(
                "%s: the call was abandoned (%s) and still runs in its thread; its result "
                "will be discarded, and the pool grows to %d threads until it returns",
                call.label,
                call.why,
                size,
            )
            future.add_done_callback(_discard_late_result)
        raise


async def _in_default_executor(call: OffLoopCall, future: asyncio.Future[Any]) -> Any:
    try:
        return await future
    except asyncio.CancelledError:
        if call.started.done():
            logger.warning(
                "%s: the call was abandoned (%s) and still runs in its thread; its "
                "result will be discarded",
                call.label,
                call.why,
            )
        raise


def _begin(started: asyncio.Future[None]) -> None:
    if not started.done():
        started.set_result(None)


def _discard_late_result(future: Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        logger.debug("an abandoned call ended later with %r (discarded)", future.exception())
