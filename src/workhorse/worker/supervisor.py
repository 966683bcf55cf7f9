"""Side tasks that are watched: one that dies is logged with its traceback and restarted
with backoff, so a bug in the heartbeat or the listener never goes unnoticed (and never
leaves a worker running jobs without it)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from workhorse.worker.cancelling import CancelUntilDone
from workhorse.worker.store_health import RetryDelay

logger = logging.getLogger("workhorse.worker")

RESTART_FIRST = 0.1
RESTART_MAX = 5.0
_STABLE_AFTER = 30.0
"""A side task that ran this long before dying restarts at the first delay again."""


class Supervisor:
    """Runs named side tasks until they return (a service returns only when asked to
    stop) or are stopped; restarts them when they raise."""

    def __init__(self, owner: str) -> None:
        self._owner = owner
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._up: dict[str, bool] = {}
        self.crashes = 0
        """How many times a side task died (for tests and health checks)."""

    def start(self, name: str, service: Callable[[], Awaitable[None]]) -> None:
        """Run ``service()`` as the side task ``name``, restarting it if it raises."""
        if name in self._tasks and not self._tasks[name].done():
            raise RuntimeError(f"side task {name!r} is already running")
        self._up[name] = True
        self._tasks[name] = asyncio.create_task(
            self._keep_running(name, service), name=f"workhorse {self._owner} {name}"
        )

    def is_up(self, name: str) -> bool:
        """True while ``name`` runs (False while it waits to be restarted, or ended)."""
        task = self._tasks.get(name)
        return task is not None and not task.done() and self._up.get(name, False)

    async def _keep_running(self, name: str, service: Callable[[], Awaitable[None]]) -> None:
        restart = RetryDelay(RESTART_FIRST, RESTART_MAX)
        while True:
            self._up[name] = True
            started = time.monotonic()
            try:
                await service()
                return
            except Exception:
                self.crashes += 1
                self._up[name] = False
                if time.monotonic() - started > _STABLE_AFTER:
                    restart.reset()
                delay = restart.next()
                logger.exception(
                    "worker %s: side task %r died; restarting it in %.1fs",
                    self._owner,
                    name,
                    delay,
                )
            await asyncio.sleep(delay)

    async def join(self, name: str, timeout: float | None = None) -> bool:
        """Wait for ``name`` to return by itself; True if it did within ``timeout``."""
        task = self._tasks.get(name)
        if task is None:
            return True
        done, _ = await asyncio.wait({task}, timeout=timeout)
        return bool(done)

    async def stop(self, name: str) -> None:
        """Cancel ``name`` and wait for it to end (idempotent)."""
        task = self._tasks.pop(name, None)
        self._up.pop(name, None)
        if task is None:
            return
        # A cancellation can be lost (see worker.cancelling): a heartbeat that dropped
        # one in psycopg_pool's wait for a connection ran on and hung the stop.
        again = CancelUntilDone(task)
        try:
            await asyncio.wait({task})
        finally:
            again.stop()

    async def stop_all(self) -> None:
        """Cancel every side task and wait for them."""
        for name in list(self._tasks):
            await self.stop(name)
