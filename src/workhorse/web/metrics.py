"""Prometheus metrics at ``/metrics`` (admin keys only), in a registry of their own.

Everything but the last two families is read from the store at scrape time, so any
process's ``/metrics`` (every ``workhorse serve``, every mounted router) tells the same
story, of every process:

- ``workhorse_jobs_{enqueued,started,completed,retried,failed,cancelled}_total`` and the
  ``workhorse_job_run_seconds`` histogram per queue and task: the job statistics that
  every process which enqueues or runs jobs writes about once a second
  (:mod:`workhorse.stats`), so a scrape may miss the last second of them;
- jobs per queue and state (a due scheduled job counts as queued), how long the oldest
  ready job of each queue has waited, live and registered workers, the jobs each runs;
- and, named as this process's, the attempts of the worker running in this process
  (``workhorse_worker_attempts_total`` by outcome, ``workhorse_worker_running``).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest

from workhorse.backends.base import JobEvent, JobTotals, QueueStats, WorkerRecord
from workhorse.jobs import JobState
from workhorse.stats.tally import RUN_TIME_BUCKETS
from workhorse.web.guard import Admin
from workhorse.web.lifespan import WorkerLifespan, WorkerProbe
from workhorse.web.stats import live_workers

if TYPE_CHECKING:
    from workhorse.app import Workhorse

WORKER_OUTCOMES = ("claimed", "completed", "failed", "retried", "cancelled", "lost", "released")

_EVENT_HELP = {
    JobEvent.ENQUEUED: "Jobs enqueued, by every process.",
    JobEvent.STARTED: "Attempts started, by every worker.",
    JobEvent.COMPLETED: "Jobs completed.",
    JobEvent.RETRIED: "Attempts that failed with another attempt scheduled.",
    JobEvent.FAILED: "Jobs failed for good.",
    JobEvent.CANCELLED: "Attempts their worker ended cancelled (not waiting jobs cancelled).",
}


@dataclass(slots=True)
class _Snapshot:
    """What the store said at the last scrape."""

    queues: list[QueueStats] = field(default_factory=list)
    workers: list[WorkerRecord] = field(default_factory=list)
    totals: JobTotals = field(default_factory=lambda: JobTotals(counts=[], run_times=[]))
    live: int = 0
    now: datetime = field(default_factory=lambda: datetime.now(UTC))


def _job_counters(totals: JobTotals) -> Iterator[Metric]:
    """One counter family per event; every queue and task that has any count has a
    sample in each (zero included), so a rate over them never starts from nothing."""
    pairs = sorted(
        {(c.queue, c.task) for c in totals.counts} | {(r.queue, r.task) for r in totals.run_times}
    )
    counts = {(c.queue, c.task, c.event): c.count for c in totals.counts}
    for event in JobEvent:
        family = CounterMetricFamily(
            f"workhorse_jobs_{event.value}", _EVENT_HELP[event], labels=["queue", "task"]
        )
        for queue, task in pairs:
            family.add_metric([queue, task], counts.get((queue, task, event), 0))
        yield family


def _bound_label(bound: float) -> str:
    """A bucket's ``le`` as Prometheus writes it: ``0.5``, ``1.0``, ``+Inf``."""
    return "+Inf" if math.isinf(bound) else repr(float(bound))


def _run_time_histogram(totals: JobTotals) -> Metric:
    family = HistogramMetricFamily(
        "workhorse_job_run_seconds",
        "Run time of attempts that ended with an outcome: from their start to the outcome "
        "being stored.",
        labels=["queue", "task"],
    )
    per_pair: dict[tuple[str, str], list[tuple[float, int, float]]] = {}
    for row in totals.run_times:
        per_pair.setdefault((row.queue, row.task), []).append((row.le, row.count, row.seconds))
    for (queue, task), rows in sorted(per_pair.items()):
        buckets = [
            (_bound_label(bound), sum(n for le, n, _ in rows if le <= bound))
            for bound in RUN_TIME_BUCKETS
        ]
        family.add_metric([queue, task], buckets, sum_value=sum(s for _, _, s in rows))
    return family


class _StoreCollector:
    """Exposes the last snapshot (prometheus collectors are synchronous, the store is
    not: the scrape handler refreshes the snapshot first), and the counters of the
    worker running in this process, if any."""

    def __init__(self, worker: WorkerProbe | None) -> None:
        self.snapshot = _Snapshot()
        self.worker = worker

    def _worker_metrics(self) -> Iterator[Metric]:
        probe = self.worker
        worker = probe.worker if isinstance(probe, WorkerLifespan) else probe
        if worker is None:
            return
        attempts = CounterMetricFamily(
            "workhorse_worker_attempts",
            "Attempts of the worker in this process, by outcome.",
            labels=["outcome"],
        )
        for outcome in WORKER_OUTCOMES:
            attempts.add_metric([outcome], getattr(worker.stats, outcome))
        yield attempts
        yield GaugeMetricFamily(
            "workhorse_worker_running",
            "Jobs the worker in this process runs now.",
            value=worker.stats.running,
        )

    def _queue_metrics(self) -> Iterator[Metric]:
        snap = self.snapshot
        depth = GaugeMetricFamily(
            "workhorse_queue_jobs",
            "Jobs per queue and state (a scheduled job whose time has come counts as queued).",
            labels=["queue", "state"],
        )
        age = GaugeMetricFamily(
            "workhorse_queue_oldest_job_age_seconds",
            "How long the oldest ready job of each queue has waited for a worker.",
            labels=["queue"],
        )
        for stats in snap.queues:
            for state in JobState:
                depth.add_metric([stats.queue, state.value], stats.counts.get(state, 0))
            oldest = stats.oldest_queued_at
            waited = 0.0 if oldest is None else max(0.0, (snap.now - oldest).total_seconds())
            age.add_metric([stats.queue], waited)
        yield depth
        yield age

    def _worker_gauges(self) -> Iterator[Metric]:
        snap = self.snapshot
        yield GaugeMetricFamily(
            "workhorse_workers_live", "Workers with a recent heartbeat.", value=snap.live
        )
        yield GaugeMetricFamily(
            "workhorse_workers_registered",
            "Workers registered in the store.",
            value=len(snap.workers),
        )
        running = GaugeMetricFamily(
            "workhorse_worker_running_jobs", "Jobs each live worker runs.", labels=["worker"]
        )
        for worker in snap.workers:
            running.add_metric([worker.id], worker.running)
        yield running

    def collect(self) -> Iterator[Metric]:
        yield from _job_counters(self.snapshot.totals)
        yield _run_time_histogram(self.snapshot.totals)
        yield from self._queue_metrics()
        yield from self._worker_gauges()
        yield from self._worker_metrics()


class Metrics:
    """The metrics of one app. ``stale_after``: seconds without a heartbeat after which a
    worker no longer counts as live; ``worker``: the worker of this process, if any."""

    def __init__(
        self, app: Workhorse, *, stale_after: float, worker: WorkerProbe | None = None
    ) -> None:
        self.app = app
        self.stale_after = stale_after
        self.registry = CollectorRegistry(auto_describe=True)
        self._store = _StoreCollector(worker)
        self.registry.register(self._store)
        self._lock = asyncio.Lock()

    async def render(self) -> bytes:
        """The exposition text, with store figures read now."""
        async with self._lock:
            store = await self.app.backend()
            queues = await store.queue_stats()
            workers = await store.worker_list()
            totals = await store.stats_totals()
            now = datetime.now(UTC)
            self._store.snapshot = _Snapshot(
                queues=queues,
                workers=workers,
                totals=totals,
                live=len(live_workers(workers, now=now, stale_after=self.stale_after)),
                now=now,
            )
            return generate_latest(self.registry)

    def install(self, router: APIRouter) -> None:
        """Add ``GET /metrics`` (admin keys, read-only ones included) to ``router``."""

        @router.get(
            "/metrics",
            tags=["stats"],
            summary="Prometheus metrics",
            response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
        )
        async def metrics(principal: Admin) -> Response:
            """Metrics in the Prometheus text format (needs an admin key)."""
            return Response(await self.render(), media_type=CONTENT_TYPE_LATEST)
