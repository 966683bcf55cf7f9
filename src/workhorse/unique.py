"""Unique jobs: which key a job holds, in which states, for how long, and what enqueuing
a duplicate does."""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, get_args

from workhorse import serialization
from workhorse.jobs import LIVE_STATES, JobState, OnDuplicate


@dataclass(frozen=True, slots=True)
class Unique:
    """How a task's jobs stay unique::

        @app.task(unique=Unique(states=LIVE_STATES | {JobState.COMPLETED}, period=3600))
        async def send_digest(user_id: int) -> None: ...

    - ``key``: a function of the task's arguments giving the key (prefixed with the task
      name); None uses a hash of all the arguments.
    - ``states``: where the key is held. Always every live state (scheduled, queued,
      blocked, running): a state change can then never collide with another holder.
      Add ``completed`` (or ``failed``, ``cancelled``) to keep the key after the job ends,
      until it is pruned or the period is over.
    - ``period``: seconds (or a timedelta); the key is held for one window of that length
      (windows are aligned on the Unix epoch), so at most one job per key and window.
    - ``on_duplicate``: ``"return"`` the holder (the default), ``"replace"`` the holder's
      arguments, priority and run time while it is still scheduled or queued, or
      ``"raise"`` :class:`~workhorse.errors.DuplicateJobError` (nothing of that enqueue
      is stored).
    """

    key: Callable[..., str] | None = None
    states: Collection[JobState | str] = field(default=LIVE_STATES)
    period: float | timedelta | None = None
    on_duplicate: OnDuplicate = "return"

    def __post_init__(self) -> None:
        states = frozenset(JobState(state) for state in self.states)
        missing = LIVE_STATES - states
        if missing:
            names = ", ".join(sorted(state.value for state in missing))
            raise ValueError(
                f"unique states must include every live state (missing {names}): a job "
                "moving into a state that holds its key could otherwise collide with "
                "another holder"
            )
        object.__setattr__(self, "states", states)
        period = self.period.total_seconds() if isinstance(self.period, timedelta) else self.period
        if period is not None and not (math.isfinite(period) and period > 0):
            raise ValueError(f"unique period must be a positive number of seconds, not {period}")
        object.__setattr__(self, "period", period)
        if self.on_duplicate not in get_args(OnDuplicate):
            raise ValueError(
                f"on_duplicate must be 'return', 'replace' or 'raise', not {self.on_duplicate!r}"
            )

    def key_for(self, task_name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
        """The key a call holds (without its period window)."""
        if self.key is not None:
            return f"{task_name}:{self.key(*args, **kwargs)}"
        body = serialization.dumps([list(args), dict(sorted(kwargs.items()))], what="arguments")
        return f"{task_name}:{hashlib.sha256(body.encode()).hexdigest()[:32]}"

    def windowed(self, key: str, now: float | None = None) -> str:
        """``key`` within the current period window (``key`` itself without a period)."""
        period = self.period
        if period is None:
            return key
        seconds = period.total_seconds() if isinstance(period, timedelta) else float(period)
        window = int((time.time() if now is None else now) // seconds)
        return f"{key}@{window}"


UniqueSetting = bool | Callable[..., str] | Unique
"""What ``@app.task(unique=...)`` takes: True (a hash of the arguments), a function of
the arguments giving the key, or a :class:`Unique`."""


def as_unique(setting: UniqueSetting | None) -> Unique | None:
    """The :class:`Unique` a task option stands for (None: not unique)."""
    if setting is None or setting is False:
        return None
    if isinstance(setting, Unique):
        return setting
    if setting is True:
        return Unique()
    if callable(setting):
        return Unique(key=setting)
    raise TypeError(f"unique must be True, a function or a Unique, not {setting!r}")


@dataclass(frozen=True, slots=True)
class UniqueFields:
    """The unique fields of one job to insert."""

    key: str | None = None
    states: frozenset[JobState] = LIVE_STATES
    on_duplicate: OnDuplicate = "return"


_NOT_UNIQUE = UniqueFields()


def unique_fields(
    task_name: str,
    rule: Unique | None,
    explicit_key: str | None,
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
) -> UniqueFields:
    """The key, states and duplicate behaviour of a call: ``explicit_key`` (an enqueue
    option) wins over the rule's key; the rule's period window applies to either."""
    if rule is None:
        return _NOT_UNIQUE if explicit_key is None else UniqueFields(key=explicit_key)
    key = explicit_key if explicit_key is not None else rule.key_for(task_name, args, kwargs)
    return UniqueFields(
        key=rule.windowed(key),
        states=frozenset(JobState(state) for state in rule.states),
        on_duplicate=rule.on_duplicate,
    )
