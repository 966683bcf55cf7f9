"""An async task's timeout: ``asyncio.timeout``, and past it a cancellation again every
second while the task runs on (see :mod:`workhorse.worker.cancelling`).

A second cancellation leaves ``asyncio.timeout`` as a plain ``CancelledError``, not
``TimeoutError``; it is told apart from the worker's own (a stop) by counting the task's
cancel requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from workhorse.worker.cancelling import CancelUntilDone

T = TypeVar("T")


async def within(
    call: Coroutine[Any, Any, T], timeout: float, *, timed_out: Callable[[], Exception]
) -> T:
    """``await call``, cancelled at ``timeout`` seconds and again every second after that
    until it ends; raises ``timed_out()`` (chained to the cancellation, so the traceback
    shows where the call was) if it ended so. A cancellation of the calling task from
    elsewhere still propagates."""
    task = asyncio.current_task()
    assert task is not None, "within() runs in a task"
    baseline = task.cancelling()
    deadline = task.get_loop().time() + timeout
    again = CancelUntilDone(task, sent_at=deadline)  # the scope sends the first
    scope = asyncio.timeout_at(deadline)
    try:
        async with scope:
            return await call
    except TimeoutError as exc:
        if scope.expired():
            raise timed_out() from exc
        raise
    except asyncio.CancelledError as exc:
        again.stop()
        ours = again.take_requests()
        left = _withdraw(task, ours)
        if ours and scope.expired() and left <= baseline:
            raise timed_out() from exc  # no one else asked to cancel it
        raise
    finally:
        again.stop()
        _withdraw(task, again.take_requests())


def _withdraw(task: asyncio.Task[Any], count: int) -> int:
    """Take back ``count`` cancel requests of ours; the requests left."""
    left = task.cancelling()
    for _ in range(count):
        left = task.uncancel()
    return left
