"""One voice for a worker's store outages, and the backoff its loops retry with.

The claim loop, the completer, the heartbeat, progress and maintenance each call the
store on their own schedule, so one outage would otherwise be told once per failed call
of each of them. They report through one :class:`StoreHealth` instead: the first failure
logs one WARNING, the others log at DEBUG, and one INFO says when the store is back and
how long it was gone. Each loop keeps its own backoff (a :class:`RetryDelay`).

Only failures the store calls transient (unreachable, restarting, locked) make an
outage. Any other error is a problem of its own (bad data, a bug) and is logged where
it happens, every time.
"""

from __future__ import annotations

import logging
import time

from workhorse.backends.base import Backend

logger = logging.getLogger("workhorse.worker")


class RetryDelay:
    """Delays that double from ``first`` up to ``most`` while failures go on."""

    def __init__(self, first: float, most: float) -> None:
        self._first = first
        self._most = most
        self._next = first

    def next(self) -> float:
        """The delay before the next retry (each call doubles the one after it)."""
        delay = self._next
        self._next = min(delay * 2, self._most)
        return delay

    def reset(self) -> None:
        """A call succeeded: the next failure waits ``first`` again."""
        self._next = self._first


class StoreHealth:
    """Whether a worker's store is reachable, as its loops find out.

    An outage begins at the first transient failure of any loop and ends once every
    loop that failed has had a call succeed (a loop with nothing left to retry steps
    out with :meth:`settled`; the next success of any call then ends the outage). A
    loop that only reads can thus not declare the store back while writes still fail.
    """

    def __init__(self, owner: str, store: Backend) -> None:
        self._owner = owner
        self._store = store
        self._failing: set[str] = set()
        self._down_since: float | None = None
        self.failures = 0
        """Transient failures in the current (or last) outage."""
        self.outages = 0
        """Outages so far."""

    @property
    def down(self) -> bool:
        """True during an outage."""
        return self._down_since is not None

    def failed(self, loop: str, doing: str, exc: BaseException) -> bool:
        """The call that ``loop`` made for ``doing`` raised ``exc``. Returns True if the
        failure is transient (retry the call later), False if it is not (the error is
        logged here as a WARNING; retrying the same call would fail the same way)."""
        if not self._store.error_is_transient(exc):
            logger.warning("worker %s: %s failed: %s", self._owner, doing, _gist(exc))
            return False
        self._failing.add(loop)
        if self._down_since is None:
            self._down_since = time.monotonic()
            self.failures = 1
            self.outages += 1
            logger.warning(
                "worker %s: store unavailable (%s: %s); retrying, running jobs go on",
                self._owner,
                doing,
                _gist(exc),
            )
        else:
            self.failures += 1
            logger.debug("worker %s: still no store (%s: %s)", self._owner, doing, _gist(exc))
        return True

    def ok(self, loop: str) -> None:
        """A call that ``loop`` made succeeded."""
        if self._down_since is None:
            return
        self._failing.discard(loop)
        if self._failing:
            return
        gone = time.monotonic() - self._down_since
        self._down_since = None
        logger.info(
            "worker %s: store available again after %.1fs (%d failed call(s))",
            self._owner,
            gone,
            self.failures,
        )

    def settled(self, loop: str) -> None:
        """``loop`` gave up retrying (it has nothing left to write): its failure no
        longer keeps the outage open."""
        self._failing.discard(loop)


def _gist(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
