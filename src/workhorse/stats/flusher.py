"""Writes what a process counted to the store: one small write about a second after
the first count, again every second while counts keep coming, and a last one when the
app closes its store.

Counting never waits for the store and never writes per job, so enqueues, claims and
completions cost a dictionary update. The price: counts that were not written yet die
with the process (at most one interval of them on a crash or a kill), and a write whose
connection drops just as it commits may be repeated. A write that fails keeps its
counts for the next one, so a store outage delays them without losing them.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

from workhorse.backends.base import Backend
from workhorse.stats.tally import Tally

logger = logging.getLogger("workhorse.stats")

FLUSH_INTERVAL = 1.0
"""Seconds between a count and its write."""


class Flusher:
    """Flushes ``tally`` through the store of whichever event loop counted (the app's
    own, a sync bridge's, a server's), found by ``store_for`` at the time of the write:
    a loop whose store was closed meanwhile leaves the counts to the next flush. Each
    loop has at most one flush due at a time."""

    def __init__(
        self,
        tally: Tally,
        store_for: Callable[[], Backend | None],
        *,
        interval: float = FLUSH_INTERVAL,
    ) -> None:
        self.tally = tally
        self.interval = interval
        self._store_for = store_for
        self._lock = threading.Lock()
        self._due: dict[asyncio.AbstractEventLoop, asyncio.TimerHandle | asyncio.Task[None]] = {}
        self._failing = False

    def soon(self) -> None:
        """Make sure a flush follows within the interval on the running loop; one
        already due takes the new counts along."""
        loop = asyncio.get_running_loop()
        if loop in self._due:  # the usual case; only this loop adds or drops its entry
            return
        with self._lock:
            if loop not in self._due:
                self._due[loop] = loop.call_later(self.interval, self._start, loop)

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        store = self._store_for()
        with self._lock:
            if store is None:
                self._due.pop(loop, None)
            else:
                self._due[loop] = loop.create_task(self._scheduled(loop, store))

    async def _scheduled(self, loop: asyncio.AbstractEventLoop, store: Backend) -> None:
        try:
            await self.flush(store)
        finally:
            with self._lock:
                self._due.pop(loop, None)
        if self.tally:  # counted meanwhile, or kept after a failed write
            self.soon()

    async def flush(self, store: Backend) -> bool:
        """Write everything counted so far in one ``stats_add`` now. False if the write
        failed: the counts are kept for the next flush."""
        batch = self.tally.take()
        if batch is None:
            return True
        try:
            await store.stats_add(counts=batch.counts(), run_times=batch.run_times())
        except BaseException as exc:
            self.tally.put_back(batch)
            if not isinstance(exc, Exception):
                raise
            if not self._failing:
                # An outage is the worker's or the caller's to report; the counts only
                # wait. Anything else (a broken statistics table) is worth a warning.
                level = logging.INFO if store.error_is_transient(exc) else logging.WARNING
                logger.log(level, "could not write job statistics (will retry): %s", exc)
            self._failing = True
            return False
        if self._failing:
            logger.info("job statistics are written again")
        self._failing = False
        return True

    async def close(self, store: Backend) -> None:
        """Before the app closes ``store`` (the running loop's): settle the flush due on
        this loop (waiting for one under way), then write what is left."""
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                due = self._due.pop(loop, None)
            if due is None:
                break
            if isinstance(due, asyncio.Task):
                await asyncio.wait([due])
            else:
                due.cancel()
        await self.flush(store)
