"""Figures computed from the store for the API, the dashboard and the metrics: worker
liveness and recent throughput."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from workhorse.backends._stats import MINUTE
from workhorse.backends.base import Backend, JobEvent, WorkerRecord
from workhorse.web.schemas import Throughput, ThroughputBucket

THROUGHPUT_BARS = 30
"""The most bars a throughput figure has."""


def live_workers(
    workers: Sequence[WorkerRecord], *, now: datetime, stale_after: float
) -> list[WorkerRecord]:
    """Workers whose last heartbeat is at most ``stale_after`` seconds old."""
    return [w for w in workers if (now - w.heartbeat_at).total_seconds() <= stale_after]


def bucket_seconds(minutes: int) -> int:
    """The width of one bar when ``minutes`` are shown as at most 30 bars: whole minutes,
    the finest grain of the store's job statistics."""
    return MINUTE * max(1, math.ceil(minutes / THROUGHPUT_BARS))


async def throughput(
    store: Backend, *, tenant: str | None, minutes: int, now: datetime
) -> Throughput:
    """Attempts completed, retried and failed for good per time slice over the last
    ``minutes`` (the last slice is the one under way), from the per-minute job
    statistics that every worker writes about once a second."""
    width = bucket_seconds(minutes)
    count = math.ceil(minutes * 60 / width)
    first = (math.floor(now.timestamp() / width) - count + 1) * width
    start = datetime.fromtimestamp(first, UTC)
    series = {
        event: [0] * count for event in (JobEvent.COMPLETED, JobEvent.RETRIED, JobEvent.FAILED)
    }
    for row in await store.stats_timeline(since=start, tenant=tenant):
        index = math.floor((row.minute.timestamp() - first) / width)
        if row.event in series and 0 <= index < count:
            series[row.event][index] += row.count
    return Throughput(
        bucket_seconds=width,
        buckets=[
            ThroughputBucket(
                start=start + timedelta(seconds=i * width),
                completed=series[JobEvent.COMPLETED][i],
                retried=series[JobEvent.RETRIED][i],
                failed=series[JobEvent.FAILED][i],
            )
            for i in range(count)
        ],
    )
