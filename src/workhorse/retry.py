"""Retry policies: how many attempts, how long to wait between them, and which errors
are worth another try."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from workhorse.errors import RetryLater


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter and a cap.

    The wait after failed attempt ``n`` (1-based) is ``base * factor ** (n - 1)``, capped
    at ``max``, then spread by +/- ``jitter`` (a fraction) so that many jobs failing
    together do not all come back at the same instant.
    """

    base: float = 1.0
    factor: float = 2.0
    max: float = 600.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        _require("Backoff.base", self.base, self.base >= 0, "at least 0")
        _require("Backoff.factor", self.factor, self.factor >= 1, "at least 1")
        _require("Backoff.max", self.max, self.max >= 0, "at least 0")
        _require("Backoff.jitter", self.jitter, 0 <= self.jitter <= 1, "between 0 and 1")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt``."""
        raw = min(self.max, self.base * self.factor ** max(0, attempt - 1))
        spread = raw * self.jitter
        return max(0.0, min(self.max, raw + random.uniform(-spread, spread)))


@dataclass(frozen=True, slots=True)
class Retry:
    """When a failed attempt is tried again.

    - ``max_attempts``: attempts in all, the first included (1 means never retry).
    - ``backoff``: the default wait between attempts.
    - ``retry_on``: only these exception types are retried (default: any ``Exception``).
    - ``give_up_on``: these fail the job at once, whatever attempts are left.
    - ``backoff_for``: a different backoff for some exception types (first match wins,
      in the mapping's order).

    A task may also raise :class:`~workhorse.RetryLater` to ask for a retry after a given
    delay; it counts as an attempt.
    """

    max_attempts: int = 3
    backoff: Backoff = field(default_factory=Backoff)
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    give_up_on: tuple[type[BaseException], ...] = ()
    backoff_for: Mapping[type[BaseException], Backoff] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"Retry.max_attempts must be at least 1, got {self.max_attempts}")

    def next_delay(
        self, exc: BaseException, *, attempt: int, max_attempts: int | None = None
    ) -> float | None:
        """Seconds until the next attempt after ``exc`` ended attempt ``attempt``, or None
        to give up. ``max_attempts`` overrides the policy's (a per-job setting)."""
        limit = self.max_attempts if max_attempts is None else max_attempts
        if attempt >= limit or isinstance(exc, self.give_up_on):
            return None
        if isinstance(exc, RetryLater):
            return exc.delay if exc.delay is not None else self.backoff.delay(attempt)
        if not isinstance(exc, self.retry_on):
            return None
        for exc_type, backoff in self.backoff_for.items():
            if isinstance(exc, exc_type):
                return backoff.delay(attempt)
        return self.backoff.delay(attempt)


def _require(name: str, value: float, ok: bool, rule: str) -> None:
    # NaN compares false with everything: "ok" is False for it, as for infinity here.
    if not (ok and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number {rule}, got {value!r}")
