"""Job statistics the same way in every store: checking what ``stats_add`` is given, and
turning it into the rows the stores keep.

A count row is ``(minute, tenant, queue, task, event, count)``: ``minute`` is the epoch
second its minute starts at, or ``TOTAL_MINUTE`` for the all-time total, which every
add raises together with the minute (so reading the totals never sums minutes, and
pruning minutes never lowers them). A run-time row is ``(queue, task, le, count,
seconds)``, one per histogram bucket.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from workhorse.backends.base import EventCount, JobEvent, JobTotals, MinuteCount, RunTimeCount

MINUTE = 60
TOTAL_MINUTE = 0
"""The ``minute`` of the all-time total rows."""
NO_TENANT = ""
"""How jobs without a tenant are keyed."""

CountRow = tuple[int, str, str, str, str, int]
RunTimeRow = tuple[str, str, float, int, float]


def minute_of(at: datetime) -> int:
    """The epoch second at which the minute holding ``at`` starts (naive means UTC)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return math.floor(at.timestamp() / MINUTE) * MINUTE


def minute_at(minute: int) -> datetime:
    """The start of a stored minute, as an aware UTC datetime."""
    return datetime.fromtimestamp(minute, UTC)


def count_rows(counts: Sequence[EventCount]) -> list[CountRow]:
    """The rows ``counts`` add to, each key once (the totals included), sorted so that
    concurrent adds lock rows in the same order. ``ValueError`` for a count without a
    minute or below zero."""
    summed: dict[tuple[int, str, str, str, str], int] = {}
    for count in counts:
        if count.minute is None:
            raise ValueError(f"a count added to the statistics needs its minute: {count}")
        if count.count < 0:
            raise ValueError(f"counts only grow, got {count.count} for {count}")
        if count.count == 0:
            continue
        event = JobEvent(count.event).value
        tenant = count.tenant or NO_TENANT
        for minute in (minute_of(count.minute), TOTAL_MINUTE):
            key = (minute, tenant, count.queue, count.task, event)
            summed[key] = summed.get(key, 0) + count.count
    return [(*key, n) for key, n in sorted(summed.items())]


def run_time_rows(run_times: Sequence[RunTimeCount]) -> list[RunTimeRow]:
    """The histogram rows ``run_times`` add to, each bucket once, sorted. ``ValueError``
    for a negative count or run time, or a bound that is not a positive number."""
    summed: dict[tuple[str, str, float], tuple[int, float]] = {}
    for bucket in run_times:
        if bucket.count < 0 or not bucket.seconds >= 0:
            raise ValueError(f"run-time counts only grow, got {bucket}")
        if not bucket.le > 0:
            raise ValueError(f"a histogram bucket's bound must be above zero, got {bucket}")
        if bucket.count == 0:
            continue
        key = (bucket.queue, bucket.task, float(bucket.le))
        count, seconds = summed.get(key, (0, 0.0))
        summed[key] = (count + bucket.count, seconds + bucket.seconds)
    return [(*key, count, seconds) for key, (count, seconds) in sorted(summed.items())]


def job_totals(
    count_sums: Iterable[tuple[str, str, str, int]], run_times: Iterable[RunTimeRow]
) -> JobTotals:
    """Typed totals from ``(queue, task, event, count)`` sums and run-time rows."""
    return JobTotals(
        counts=[
            EventCount(event=JobEvent(event), queue=queue, task=task, count=int(n))
            for queue, task, event, n in count_sums
        ],
        run_times=[
            RunTimeCount(queue=queue, task=task, le=float(le), count=int(n), seconds=float(s))
            for queue, task, le, n, s in run_times
        ],
    )


def timeline(rows: Iterable[tuple[int, str, int]]) -> list[MinuteCount]:
    """Typed minute counts from ``(minute, event, count)`` rows."""
    return [
        MinuteCount(minute=minute_at(minute), event=JobEvent(event), count=int(n))
        for minute, event, n in rows
    ]
