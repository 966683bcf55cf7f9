"""Progress reports from running jobs, coalesced and written in the background.

``ctx.set_progress`` may be called from any thread, thousands of times a second; only the
latest value per job is kept, and the store sees at most one write every
:data:`FLUSH_EVERY` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

from workhorse.backends.base import Backend, ProgressUpdate
from workhorse.context import JobContext
from workhorse.worker.running import RunningJobs
from workhorse.worker.store_health import StoreHealth

FLUSH_EVERY = 0.2
_LOOP = "progress"


class ProgressReporter:
    """Collects the latest progress of each running job and flushes it to the store."""

    def __init__(
        self,
        store: Backend,
        loop: asyncio.AbstractEventLoop,
        running: RunningJobs,
        health: StoreHealth,
    ) -> None:
        self._store = store
        self._health = health
        self._loop = loop
        self._running = running
        self._lock = threading.Lock()
        self._latest: dict[int, JobContext] = {}
        self._signalled = False
        self._ready = asyncio.Event()

    def note(self, ctx: JobContext) -> None:
        """Remember that ``ctx``'s progress changed (thread-safe, cheap)."""
        with self._lock:
            self._latest[ctx.job_id] = ctx
            if self._signalled:
                return
            self._signalled = True
        with contextlib.suppress(RuntimeError):  # the loop is closed: the worker is gone
            self._loop.call_soon_threadsafe(self._ready.set)

    def _take(self) -> list[ProgressUpdate]:
        with self._lock:
            contexts = list(self._latest.values())
            self._latest.clear()
            self._signalled = False
        updates = []
        for ctx in contexts:
            running = self._running.get(ctx.job_id)
            if running is None or running.ctx is not ctx:
                continue  # that attempt is over: its progress no longer matters
            updates.append(
                ProgressUpdate(
                    job_id=ctx.job_id,
                    lease_token=running.job.lease_token,
                    progress=ctx.progress,
                    message=ctx.message,
                )
            )
        return updates

    async def run(self) -> None:
        """Flush coalesced updates, at most every ``FLUSH_EVERY`` seconds."""
        while True:
            await self._ready.wait()
            self._ready.clear()
            updates = self._take()
            if updates:
                await self._flush(updates)
            await asyncio.sleep(FLUSH_EVERY)

    async def _flush(self, updates: list[ProgressUpdate]) -> None:
        try:
            await self._store.job_set_progress(updates)
        except Exception as exc:
            if not self._health.failed(_LOOP, f"storing progress of {len(updates)} job(s)", exc):
                return  # the store refuses these updates: sending them again cannot help
            retrying = False
            with self._lock:
                for update in updates:
                    running = self._running.get(update.job_id)
                    if running is not None:  # its context still holds the latest values
                        self._latest.setdefault(update.job_id, running.ctx)
                        retrying = True
                self._signalled = True
            self._ready.set()
            if not retrying:
                self._health.settled(_LOOP)
            return
        self._health.ok(_LOOP)
