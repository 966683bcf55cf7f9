"""An async task's timeout: ``asyncio.timeout``, and past it a cancellation again every
:data:`~workhorse.worker.supervisor.CANCEL_AGAIN_AFTER` seconds while the task runs on.

Job code can drop a cancellation (on Python 3.11 ``asyncio.wait_for``, psycopg_pool's
wait for a connection among its users, drops one that arrives with its result): with
one cancellation only, such a job would run on past its timeout. A second cancellation
leaves ``asyncio.timeout`` as a plain ``CancelledError``, not ``TimeoutError``; it is
told apart from the worker's own (a stop) by counting the task's cancel requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from workhorse.worker.supervisor import CANCEL_AGAIN_AFTER

T = TypeVar("T")


async def within(
    call: Coroutine[Any, Any, T], timeout: float, *, timed_out: Callable[[], Exception]
) -> T:
    """``await call``, cancelled at ``timeout`` seconds and again every
    ``CANCEL_AGAIN_AFTER`` after that until it ends; raises ``timed_out()`` (chained to
    the cancellation, so the traceback shows where the call was) if it ended so. A
    cancellation of the calling task from elsewhere still propagates."""
    task = asyncio.current_task()
    assert task is not None, "within() runs in a task"
    loop = asyncio.get_running_loop()
    baseline = task.cancelling()
    ours = 0
    again: asyncio.TimerHandle | None = None

    def cancel_again() -> None:
        nonlocal ours, again
        ours += 1
        task.cancel()
        again = loop.call_later(CANCEL_AGAIN_AFTER, cancel_again)

    scope = asyncio.timeout(timeout)
    when = scope.when()
    if when is not None:
        again = loop.call_at(when + CANCEL_AGAIN_AFTER, cancel_again)
    try:
        async with scope:
            return await call
    except TimeoutError as exc:
        if scope.expired():
            raise timed_out() from exc
        raise
    except asyncio.CancelledError as exc:
        if ours and scope.expired():
            left, ours = _withdraw(task, ours), 0
            if left <= baseline:  # no one else asked to cancel it
                raise timed_out() from exc
        raise
    finally:
        if again is not None:
            again.cancel()
        _withdraw(task, ours)


def _withdraw(task: asyncio.Task[Any], count: int) -> int:
    """Take back ``count`` cancel requests of ours; the requests left."""
    left = task.cancelling()
    for _ in range(count):
        left = task.uncancel()
    return left
