"""Cancelling a task until it ends.

One cancellation may not stop a task: job code can drop one (on Python 3.11
``asyncio.wait_for``, psycopg_pool's wait for a connection among its users, drops a
cancellation that arrives with its result), and the task then runs on. Whatever the
worker stops (a side task, a job's attempt, a job past its timeout) it cancels again
every :data:`CANCEL_AGAIN_AFTER` seconds until it ends.
"""

from __future__ import annotations

import asyncio
from typing import Any

CANCEL_AGAIN_AFTER = 1.0
"""How long a stop waits for a cancelled task before cancelling it once more (time
enough for the cleanup it may be doing, such as closing a connection)."""


class CancelUntilDone:
    """Cancels ``task`` now, or, if a cancellation was already sent at loop time
    ``sent_at``, again :data:`CANCEL_AGAIN_AFTER` seconds later; then again at that
    interval until the task ends or :meth:`stop` is called."""

    def __init__(self, task: asyncio.Task[Any], *, sent_at: float | None = None) -> None:
        self._task = task
        self._loop = task.get_loop()
        self._requests = 0
        self._next: asyncio.TimerHandle | None = None
        if sent_at is None:
            self._cancel()
        else:
            self._next = self._loop.call_at(sent_at + CANCEL_AGAIN_AFTER, self._cancel)

    def take_requests(self) -> int:
        """How many cancel requests this sent since it was last asked (each stays on the
        task until the task takes it back with ``Task.uncancel``)."""
        requests, self._requests = self._requests, 0
        return requests

    def stop(self) -> None:
        """Send no more."""
        if self._next is not None:
            self._next.cancel()
            self._next = None

    def _cancel(self) -> None:
        self._next = None
        if self._task.done():
            return
        self._requests += 1
        self._task.cancel()
        self._next = self._loop.call_later(CANCEL_AGAIN_AFTER, self._cancel)
