"""The worker: claims jobs, runs them (async on the loop, sync in threads, CPU-bound in
processes), renews their leases and stores their outcomes. See :class:`Worker`."""

from __future__ import annotations

from workhorse.worker.attempts import WorkerStats
from workhorse.worker.worker import Worker, WorkerState

__all__ = ["Worker", "WorkerState", "WorkerStats"]
