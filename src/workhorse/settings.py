"""Worker timing and sizing knobs, and the app-wide retry defaults, settable from code,
CLI flags and environment variables (``WORKHORSE_<NAME>``, e.g. ``WORKHORSE_LEASE=20``,
``WORKHORSE_MAX_ATTEMPTS=5``)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from workhorse.errors import ConfigurationError
from workhorse.retry import Retry

ENV_PREFIX = "WORKHORSE_"


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """How a worker runs. Durations are in seconds."""

    concurrency: int = 16
    """Jobs run at the same time by one worker."""
    queues: tuple[str, ...] | None = None
    """Queues to take jobs from; None means every queue."""
    lease: float = 15.0
    """How long a claim stays valid without a heartbeat: a crashed worker's jobs run
    again about this long after it died."""
    heartbeat_interval: float = 2.0
    """How often leases are renewed and cancellation requests picked up."""
    reclaim_interval: float = 1.0
    """How often the leader looks for expired leases and promotes due scheduled jobs."""
    poll_interval: float = 1.0
    """Longest wait between two looks for work when no wake-up arrives."""
    shutdown_grace: float = 30.0
    """On SIGTERM/SIGINT or stop: how long running jobs may finish before they are
    cancelled and released back to the queue."""
    cancel_grace: float = 5.0
    """How long a running job asked to cancel may wind down before it is stopped."""
    prune_interval: float = 60.0
    """How often the leader deletes finished jobs past their TTL."""
    leader_ttl: float = 10.0
    """How long leadership (for maintenance chores) lasts without renewal."""
    processes: int = 0
    """Size of the process pool for tasks declared ``executor="process"``; 0 means the
    number of CPUs."""
    threads: int = 0
    """Size of the thread pool for sync tasks; 0 means ``concurrency + 4``."""

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ConfigurationError("concurrency must be at least 1")
        for name in ("lease", "heartbeat_interval", "reclaim_interval", "poll_interval"):
            if getattr(self, name) <= 0:
                raise ConfigurationError(f"{name} must be positive")
        if self.heartbeat_interval >= self.lease:
            raise ConfigurationError(
                f"heartbeat_interval ({self.heartbeat_interval}s) must be shorter than "
                f"the lease ({self.lease}s)"
            )

    def replace(self, **changes: Any) -> WorkerSettings:
        """A copy with ``changes`` applied (None values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> WorkerSettings:
        """Defaults, then ``WORKHORSE_*`` environment variables, then ``overrides``."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = _parse(f.name, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


RETRY_KNOBS = ("max_attempts", "backoff_base", "backoff_factor", "backoff_max", "backoff_jitter")
"""The app-wide retry defaults that the environment (``WORKHORSE_MAX_ATTEMPTS``,
``WORKHORSE_BACKOFF_BASE``, ...) and ``workhorse worker start`` flags can set."""


def retry_from_env(environ: Mapping[str, str] | None = None) -> Retry:
    """The retry policy of an app built without ``retry=``: the built-in :class:`Retry`
    with the ``WORKHORSE_MAX_ATTEMPTS`` and ``WORKHORSE_BACKOFF_BASE``/``_FACTOR``/``_MAX``/
    ``_JITTER`` environment variables applied. A bad value raises ``ConfigurationError``
    naming the variable."""
    env = os.environ if environ is None else environ

    def variable(name: str) -> str:
        var = ENV_PREFIX + name.upper()
        return f"environment variable {var}={env[var]!r}"

    values = {
        name: _parse(name, raw)
        for name in RETRY_KNOBS
        if (raw := env.get(ENV_PREFIX + name.upper()))
    }
    return override_retry(Retry(), values, variable)


def override_retry(
    policy: Retry, changes: Mapping[str, float | None], describe: Callable[[str], str]
) -> Retry:
    """``policy`` with ``changes`` (keys from :data:`RETRY_KNOBS`; None values are
    skipped) applied to its attempts and default backoff; per-exception backoffs keep
    theirs. An invalid value raises ``ConfigurationError`` starting with
    ``describe(name)``."""
    for name, value in changes.items():
        if value is None:
            continue
        if name not in RETRY_KNOBS:
            raise ConfigurationError(f"unknown retry setting {name!r}; known: {RETRY_KNOBS}")
        try:
            if name == "max_attempts":
                policy = dataclasses.replace(policy, max_attempts=int(value))
            else:
                field = name.removeprefix("backoff_")
                backoff = dataclasses.replace(policy.backoff, **{field: float(value)})
                policy = dataclasses.replace(policy, backoff=backoff)
        except ValueError as exc:
            raise ConfigurationError(f"{describe(name)}: {exc}") from None
    return policy


def _parse(name: str, raw: str) -> Any:
    try:
        if name == "queues":
            queues = tuple(q.strip() for q in raw.split(",") if q.strip())
            return queues or None
        if name in {"concurrency", "processes", "threads", "max_attempts"}:
            return int(raw)
        return float(raw)
    except ValueError:
        raise ConfigurationError(
            f"environment variable {ENV_PREFIX}{name.upper()}={raw!r} is not a valid value"
        ) from None
