"""When periodic jobs fire: the ticks of a cron expression in a time zone, or of a fixed
interval, as UTC instants.

Everything here is a pure function of the trigger and a moment, so every worker computes
the same ticks, and the store can accept each one once (``cron_claim_tick``).

Cron expressions are matched by croniter on *naive local wall times*; zoneinfo then puts
each match on the time line. croniter's own time zone handling is not used: the DST
rules are these, and they are tested on the 2026 transitions of America/New_York.

- A wall time that does not exist (the spring-forward gap: 02:30 on 2026-03-08 in New
  York) fires once, shifted forward by the gap (03:30 EDT). When the shifted instant is
  also a tick of its own (03:30 for ``30 * * * *``), it still fires once.
- A wall time that occurs twice (fall back: 01:30 on 2026-11-01) fires once, at its
  first occurrence, unless the expression's hour field is ``*`` (it runs every hour):
  those follow elapsed time and fire in both passes of the repeated hour, so an hourly
  schedule neither skips nor doubles a real hour on either transition day.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from workhorse.errors import MissingDependencyError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DST_MARGIN = timedelta(hours=3)
"""More than any clock change: near a transition, wall times this far around a moment
are looked at, since their instants may land on either side of it."""
MIN_INTERVAL = timedelta(seconds=1)


class Trigger(Protocol):
    """What a schedule fires on."""

    def ticks(self, after: datetime) -> Iterator[datetime]:
        """Every tick strictly after ``after`` (timezone-aware), ascending, in UTC."""
        ...

    def describe(self) -> str:
        """The trigger as people write it (``*/5 * * * * America/New_York``)."""
        ...


def next_tick(trigger: Trigger, after: datetime) -> datetime | None:
    """The first tick strictly after ``after``, or None if there is none."""
    return next(iter(trigger.ticks(after)), None)


def ticks_between(trigger: Trigger, after: datetime, until: datetime) -> list[datetime]:
    """The ticks in ``(after, until]``."""
    found: list[datetime] = []
    for tick in trigger.ticks(after):
        if tick > until:
            break
        found.append(tick)
    return found


def _croniter() -> Any:
    try:
        from croniter import croniter
    except ImportError:  # pragma: no cover - the dev environment has the extra
        raise MissingDependencyError("cron schedules", "cron") from None
    return croniter


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (use an IANA name like 'Europe/Paris')"
        ) from None


@dataclass(frozen=True, slots=True)
class CronTrigger:
    """A five-field cron expression (or ``@hourly``, ``@daily``...) read in time zone
    ``tz``."""

    expression: str
    tz: str = "UTC"
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    _every_hour: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        croniter = _croniter()
        fields = self.expression.split()
        if not (self.expression.startswith("@") or len(fields) == 5):
            raise ValueError(
                f"cron expression {self.expression!r} must have five fields "
                "(minute hour day month weekday); use every= for shorter periods"
            )
        try:
            expanded = croniter.expand(self.expression)[0]
        except ValueError as exc:
            raise ValueError(f"invalid cron expression {self.expression!r}: {exc}") from None
        object.__setattr__(self, "_zone", _zone(self.tz))
        object.__setattr__(self, "_every_hour", expanded[1] == ["*"])

    def describe(self) -> str:
        return f"{self.expression} {self.tz}"

    def ticks(self, after: datetime) -> Iterator[datetime]:
        after = _aware(after)
        wall = after.astimezone(self._zone).replace(tzinfo=None)
        matches = _croniter()(self.expression, wall - self._margin(wall))
        pending: list[datetime] = []
        last = after
        while True:
            try:
                local = matches.get_next(datetime)
            except ValueError:  # croniter found no further match (30 February)
                break
            instants = self._instants(local)
            for instant in instants:
                if instant > last:
                    heapq.heappush(pending, instant)
            # A later wall time cannot land before this, so everything up to it is final.
            settled = min(instants) - self._margin(local)
            while pending and pending[0] <= settled:
                tick = heapq.heappop(pending)
                if tick > last:  # the shifted gap time may repeat a tick
                    last = tick
                    yield tick
        while pending:
            tick = heapq.heappop(pending)
            if tick > last:
                last = tick
                yield tick

    def _margin(self, wall: datetime) -> timedelta:
        """How far instants near ``wall`` may be out of wall-clock order: zero unless the
        clocks change within ``DST_MARGIN`` of it."""
        before = self._zone.utcoffset(wall - DST_MARGIN)
        after = self._zone.utcoffset(wall + DST_MARGIN)
        return timedelta(0) if before == after else DST_MARGIN

    def _instants(self, wall: datetime) -> list[datetime]:
        """Where wall time ``wall`` is on the time line, by the rules of the module doc."""
        first = wall.replace(tzinfo=self._zone, fold=0)
        second = wall.replace(tzinfo=self._zone, fold=1)
        if first.utcoffset() == second.utcoffset():
            return [first.astimezone(UTC)]
        if first.astimezone(UTC).astimezone(self._zone).replace(tzinfo=None) != wall:
            # In the gap: fold=0 reads it with the offset from before the change, which
            # is the wall time moved forward by the gap.
            return [first.astimezone(UTC)]
        if self._every_hour:
            return [first.astimezone(UTC), second.astimezone(UTC)]
        return [first.astimezone(UTC)]


@dataclass(frozen=True, slots=True)
class IntervalTrigger:
    """Every ``every``, on multiples of it since the Unix epoch (UTC): every worker
    agrees on the ticks, and ``every=timedelta(hours=1)`` fires on the hour."""

    every: timedelta

    def __post_init__(self) -> None:
        if self.every < MIN_INTERVAL:
            raise ValueError(f"a schedule's interval must be at least {MIN_INTERVAL}")

    def describe(self) -> str:
        return f"every {_duration(self.every)}"

    def ticks(self, after: datetime) -> Iterator[datetime]:
        step = self.every // timedelta(microseconds=1)
        elapsed = (_aware(after) - EPOCH) // timedelta(microseconds=1)
        count = elapsed // step + 1
        while True:
            yield EPOCH + timedelta(microseconds=count * step)
            count += 1


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: pass a timezone-aware one")
    return moment


def _duration(span: timedelta) -> str:
    seconds = span.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
