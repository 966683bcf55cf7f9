"""Prometheus metrics at ``/metrics`` (admin keys only), in a registry of their own.

Two kinds of figures:

- read from the store at scrape time, so they cover every worker on every machine: jobs
  per queue and state, the age of the oldest ready job per queue, live workers;
- counted as things happen in this process: jobs enqueued through this API, the
  attempts of the worker running in this process (``workhorse_worker_attempts_total``
  by outcome, from the worker's own counters), and, per queue and task, whatever is
  reported through :meth:`Metrics.record` (started, completed, failed, retried, run time).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest

from workhorse.backends.base import QueueStats, WorkerRecord
from workhorse.jobs import JobState
from workhorse.web.guard import Admin
from workhorse.web.lifespan import WorkerLifespan, WorkerProbe
from workhorse.web.stats import live_workers

if TYPE_CHECKING:
    from workhorse.app import Workhorse

WORKER_OUTCOMES = ("claimed", "completed", "failed", "retried", "cancelled", "lost", "released")
RUN_TIME_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


@dataclass(slots=True)
class _Snapshot:
    """What the store said at the last scrape."""

    queues: list[QueueStats] = field(default_factory=list)
    workers: list[WorkerRecord] = field(default_factory=list)
    live: int = 0
    now: datetime = field(default_factory=lambda: datetime.now(UTC))


class _StoreCollector:
    """Exposes the last snapshot as gauges (prometheus collectors are synchronous, the
    store is not: the scrape handler refreshes the snapshot first), and the counters of
    the worker running in this process, if any."""

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

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        depth = GaugeMetricFamily(
            "workhorse_queue_jobs", "Jobs per queue and state.", labels=["queue", "state"]
        )
        age = GaugeMetricFamily(
            "workhorse_queue_oldest_job_age_seconds",
            "How long the oldest ready (queued) job of each queue has waited.",
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
        labels = ["queue", "task"]
        self.enqueued = Counter(
            "workhorse_jobs_enqueued",
            "Jobs enqueued through this process's API.",
            labels,
            registry=self.registry,
        )
        self.started = Counter(
            "workhorse_jobs_started",
            "Attempts started by this process's worker.",
            labels,
            registry=self.registry,
        )
        self.completed = Counter(
            "workhorse_jobs_completed",
            "Jobs completed by this process's worker.",
            labels,
            registry=self.registry,
        )
        self.failed = Counter(
            "workhorse_jobs_failed",
            "Jobs failed for good in this process's worker.",
            labels,
            registry=self.registry,
        )
        self.retried = Counter(
            "workhorse_jobs_retried",
            "Attempts that failed and will be retried.",
            labels,
            registry=self.registry,
        )
        self.run_time = Histogram(
            "workhorse_job_run_seconds",
            "Run time of attempts in this process's worker.",
            labels,
            buckets=RUN_TIME_BUCKETS,
            registry=self.registry,
        )
        self._store = _StoreCollector(worker)
        self.registry.register(self._store)
        self._lock = asyncio.Lock()

    def record(self, *, event: str, queue: str, task: str, seconds: float | None = None) -> None:
        """Count one job event: ``enqueued``, ``started``, ``completed``, ``failed`` or
        ``retried`` (with the attempt's run time in ``seconds`` for the last three)."""
        counter = {
            "enqueued": self.enqueued,
            "started": self.started,
            "completed": self.completed,
            "failed": self.failed,
            "retried": self.retried,
        }.get(event)
        if counter is None:
            return
        counter.labels(queue, task).inc()
        if seconds is not None and event in {"completed", "failed", "retried"}:
            self.run_time.labels(queue, task).observe(seconds)

    async def render(self) -> bytes:
        """The exposition text, with store figures read now."""
        async with self._lock:
            store = await self.app.backend()
            queues = await store.queue_stats()
            workers = await store.worker_list()
            now = datetime.now(UTC)
            self._store.snapshot = _Snapshot(
                queues=queues,
                workers=workers,
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
