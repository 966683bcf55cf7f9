"""Figures computed from the store for the API, the dashboard and the metrics: worker
liveness and recent throughput."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from workhorse.backends.base import Backend, JobFilter, WorkerRecord
from workhorse.jobs import JobState
from workhorse.web.schemas import Throughput, ThroughputBucket

THROUGHPUT_SCAN = 5000
"""How many of the newest finished jobs a throughput figure looks at."""
THROUGHPUT_BARS = 30


def live_workers(
    workers: Sequence[WorkerRecord], *, now: datetime, stale_after: float
) -> list[WorkerRecord]:
    """Workers whose last heartbeat is at most ``stale_after`` seconds old."""
    return [w for w in workers if (now - w.heartbeat_at).total_seconds() <= stale_after]


def bucket_seconds(minutes: int) -> int:
    """The width of one bar when ``minutes`` are shown as about 30 bars (10 s at least)."""
    return max(10, math.ceil(minutes * 60 / THROUGHPUT_BARS))


async def throughput(
    store: Backend, *, tenant: str | None, minutes: int, now: datetime
) -> Throughput:
    """Jobs completed and failed per time slice over the last ``minutes``.

    Counts the newest ``THROUGHPUT_SCAN`` finished jobs (by id); on a store finishing more
    than that in the window, the oldest slices undercount.
    """
    width = bucket_seconds(minutes)
    count = math.ceil(minutes * 60 / width)
    epoch = now.timestamp()
    first = (math.floor(epoch / width) - count + 1) * width
    start = now - timedelta(seconds=epoch - first)
    completed = [0] * count
    failed = [0] * count
    records = await store.job_list(
        filter=JobFilter(tenant=tenant, states=(JobState.COMPLETED, JobState.FAILED)),
        limit=THROUGHPUT_SCAN,
    )
    for record in records:
        if record.finished_at is None:
            continue
        index = math.floor((record.finished_at - start).total_seconds() / width)
        if 0 <= index < count:
            target = completed if record.state is JobState.COMPLETED else failed
            target[index] += 1
    return Throughput(
        bucket_seconds=width,
        buckets=[
            ThroughputBucket(
                start=start + timedelta(seconds=i * width),
                completed=completed[i],
                failed=failed[i],
            )
            for i in range(count)
        ],
    )
