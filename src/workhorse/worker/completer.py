"""Writes the outcomes of attempts to the store in batches.

One write is in flight at a time and takes everything queued meanwhile, so batches grow
by themselves under load and a lone outcome is written at once. Outcomes are never
dropped: when the store fails, they stay queued and the write is retried with backoff
(if the process dies first, the leases expire and the jobs run again: at-least-once).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from workhorse.backends.base import Backend, Lease, Outcome

logger = logging.getLogger("workhorse.worker")

BATCH_MAX = 1000
RETRY_FIRST = 0.05
RETRY_MAX = 2.0


@dataclass(frozen=True, slots=True)
class Pending:
    """An outcome waiting to be written, with the attempt it ends (for the logs)."""

    outcome: Outcome
    attempt: int


class Completer:
    """The outcome queue of one worker and the loop that empties it."""

    def __init__(
        self,
        store: Backend,
        *,
        on_applied: Callable[[Sequence[Outcome]], None],
    ) -> None:
        self._store = store
        self._on_applied = on_applied
        self._queue: list[Pending] = []
        self._wakeup = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()
        self._closing = False

    def __len__(self) -> int:
        return len(self._queue)

    def submit(self, outcome: Outcome, *, attempt: int) -> None:
        """Queue an outcome for writing (call on the event loop)."""
        self._queue.append(Pending(outcome, attempt))
        self._empty.clear()
        self._wakeup.set()

    def leases(self) -> list[Lease]:
        """Leases of the jobs whose outcome is not written yet (they must stay renewed)."""
        return [Lease(job_id=p.outcome.job_id, token=p.outcome.lease_token) for p in self._queue]

    async def run(self) -> None:
        """Write outcomes as they come; return once closed and empty."""
        delay = RETRY_FIRST
        while True:
            if not self._queue:
                self._empty.set()
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = self._queue[:BATCH_MAX]
            try:
                applied = await self._store.job_complete_many([p.outcome for p in batch])
            except Exception as exc:
                logger.warning(
                    "could not store %d job outcome(s), retrying in %.2fs: %s",
                    len(batch),
                    delay,
                    exc,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                continue
            delay = RETRY_FIRST
            del self._queue[: len(batch)]
            self._report(batch, applied)

    def _report(self, batch: Sequence[Pending], applied: Sequence[bool]) -> None:
        written: list[Outcome] = []
        for pending, ok in zip(batch, applied, strict=True):
            if ok:
                written.append(pending.outcome)
            else:
                logger.warning(
                    "job %d: lease lost; outcome of attempt %d discarded (%s)",
                    pending.outcome.job_id,
                    pending.attempt,
                    pending.outcome.state,
                )
        if written:
            self._on_applied(written)

    async def close(self, timeout: float) -> list[Pending]:
        """Stop once everything queued is written, waiting up to ``timeout``; returns
        what could not be written (the run loop is left to the caller to stop)."""
        self._closing = True
        self._wakeup.set()
        try:
            await asyncio.wait_for(self._empty.wait(), timeout)
        except TimeoutError:
            return list(self._queue)
        return []
