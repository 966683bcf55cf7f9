"""How users declare limits (:class:`Limit`, :class:`Rate`), and the app's registry of
them, which gives each job its limit key at enqueue and workers the caps they claim
under."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from workhorse.backends.base import ClaimLimits, LimitCaps

KeyFunction = Callable[..., "str | None"]
"""Called with the task's arguments; returns the key, or None for "not limited"."""

LIMIT_KEY = "limit_key"
"""The job meta entry holding its limit key (the stores index it as a column)."""


@dataclass(frozen=True, slots=True)
class Rate:
    """At most ``starts`` jobs start in any window of ``per`` (seconds or a timedelta),
    counted across every worker process."""

    starts: int
    per: float | timedelta

    def __post_init__(self) -> None:
        if self.starts < 1:
            raise ValueError("Rate.starts must be at least 1")
        if self.seconds <= 0:
            raise ValueError("Rate.per must be positive")

    @property
    def seconds(self) -> float:
        """The window, in seconds."""
        return self.per.total_seconds() if isinstance(self.per, timedelta) else float(self.per)


@dataclass(frozen=True, slots=True)
class Limit:
    """A concurrency and/or rate limit on a group of jobs, held across every worker.

    ``key`` splits the group: ``"tenant"`` (the job's tenant), ``"label:NAME"`` (the
    value of one of its labels), a function of the task's arguments, or None (one bucket
    for every job under this limit). A job with no value for the key (no tenant, say) is
    not limited by it. Every task given the same limit (same ``name``) shares its
    buckets: ``Limit("per-tenant", key="tenant", concurrency=5)`` on several tasks lets
    each tenant run at most five of their jobs at once.
    """

    name: str
    key: str | KeyFunction | None = None
    concurrency: int | None = None
    """Most jobs running at once, per key."""
    rate: Rate | None = None
    """Most starts per window, per key."""

    def __post_init__(self) -> None:
        if not self.name or ":" in self.name:
            raise ValueError(f"limit name {self.name!r} must be non-empty and without ':'")
        if self.concurrency is None and self.rate is None:
            raise ValueError(f"limit {self.name!r} needs a concurrency, a rate or both")
        if self.concurrency is not None and self.concurrency < 1:
            raise ValueError(f"limit {self.name!r}: concurrency must be at least 1")
        key = self.key
        if isinstance(key, str) and key != "tenant" and not _label_name(key):
            raise ValueError(
                f"limit {self.name!r}: key must be 'tenant', 'label:NAME', a function or None"
            )

    @property
    def caps(self) -> LimitCaps:
        """The caps a claim applies to each of this limit's buckets."""
        return caps(self.concurrency, self.rate)

    def key_for(
        self,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        *,
        tenant: str | None,
        labels: Mapping[str, str],
    ) -> str | None:
        """The limit key of a job (``name`` or ``name:value``); None if not limited."""
        key = self.key
        if key is None:
            return self.name
        if callable(key):
            value = key(*args, **kwargs)
        elif key == "tenant":
            value = tenant
        else:
            value = labels.get(_label_name(key))
        if value is None:
            return None
        if not isinstance(value, str):
            raise TypeError(f"limit {self.name!r}: the key function must return a str or None")
        return f"{self.name}:{value}"


def caps(concurrency: int | None, rate: Rate | None) -> LimitCaps:
    """The stored form of a concurrency and a rate."""
    if rate is None:
        return LimitCaps(concurrency=concurrency)
    return LimitCaps(concurrency=concurrency, rate=rate.starts, period=rate.seconds)


def _label_name(key: str) -> str:
    prefix, sep, name = key.partition(":")
    return name if prefix == "label" and sep and name else ""


class LimitRegistry:
    """The limits of one app: per queue, per task, and named (keyed) limits."""

    def __init__(self) -> None:
        self._queues: dict[str, int] = {}
        self._tasks: dict[str, LimitCaps] = {}
        self._named: dict[str, Limit] = {}

    def __bool__(self) -> bool:
        return bool(self._queues or self._tasks or self._named)

    def set_queue(self, queue: str, concurrency: int) -> None:
        """At most ``concurrency`` jobs of ``queue`` run at once."""
        if concurrency < 1:
            raise ValueError(f"queue {queue!r}: concurrency must be at least 1")
        self._queues[queue] = concurrency

    def set_task(self, task: str, concurrency: int | None, rate: Rate | None) -> None:
        """Caps on every job of ``task`` together (nothing when both are None)."""
        if concurrency is not None and concurrency < 1:
            raise ValueError(f"task {task!r}: concurrency must be at least 1")
        if concurrency is not None or rate is not None:
            self._tasks[task] = caps(concurrency, rate)

    def add(self, limit: Limit) -> None:
        """Register a named limit; the same name may not mean two different limits."""
        known = self._named.get(limit.name)
        if known is not None and known != limit:
            raise ValueError(f"two different limits are named {limit.name!r}")
        self._named[limit.name] = limit

    def claim_limits(self) -> ClaimLimits | None:
        """What a worker claims under; None when nothing is limited (the fast claim)."""
        if not self:
            return None
        return ClaimLimits(
            queues=dict(self._queues),
            tasks=dict(self._tasks),
            keys={name: limit.caps for name, limit in self._named.items()},
        )
