"""The attempts a worker runs: starting them, stopping them when they are cancelled, lost
or outlive the shutdown grace, and handing their outcomes to the completer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from workhorse.backends.base import ClaimedJob, Lease, Outcome
from workhorse.jobs import JobState
from workhorse.settings import WorkerSettings
from workhorse.worker.cancelling import CancelUntilDone
from workhorse.worker.completer import Completer
from workhorse.worker.executor import AttemptResult, JobRunner
from workhorse.worker.progress import ProgressReporter
from workhorse.worker.running import RunningJob, RunningJobs, StopReason

logger = logging.getLogger("workhorse.worker")

HARD_STOP_WAIT = 2.0
"""How long stopped attempts get to unwind at shutdown before their leases are released
anyway (an async task that swallows cancellation cannot hold the shutdown forever)."""


@dataclass
class WorkerStats:
    """Counters of one worker run."""

    claimed: int = 0
    completed: int = 0
    failed: int = 0
    retried: int = 0
    cancelled: int = 0
    lost: int = 0
    """Attempts stopped because their lease was (or may have been) lost."""
    released: int = 0
    """Jobs given back to the queue at shutdown."""
    running: int = 0

    def count(self, outcome: Outcome) -> None:
        """Count a written outcome."""
        if outcome.state is JobState.COMPLETED:
            self.completed += 1
        elif outcome.state is JobState.FAILED:
            self.failed += 1
        elif outcome.state is JobState.SCHEDULED:
            self.retried += 1
        elif outcome.state is JobState.CANCELLED:
            self.cancelled += 1


class Attempts:
    """Runs each claimed job as an asyncio task within the worker's slots."""

    def __init__(
        self,
        settings: WorkerSettings,
        runner: JobRunner,
        running: RunningJobs,
        completer: Completer,
        progress: ProgressReporter,
        stats: WorkerStats,
    ) -> None:
        self._settings = settings
        self._runner = runner
        self._running = running
        self._completer = completer
        self._progress = progress
        self._stats = stats
        self._loop = asyncio.get_running_loop()
        self._unfinished: list[Lease] = []

    def launch(self, jobs: Sequence[ClaimedJob], renewed_at: float) -> None:
        """Start an attempt for each claimed job (the claim began at ``renewed_at``)."""
        on_progress = self._progress.note
        for job in jobs:
            ctx = self._runner.context_for(job, on_progress=on_progress, loop=self._loop)
            running = RunningJob(job=job, ctx=ctx, renewed_at=renewed_at)
            stale = self._running.get(job.id)
            if stale is not None:
                # Claimed again, so the lease of the attempt still running here is gone.
                self.lost(stale, "the job was claimed again under a new lease")
            self._running.add(running)
            running.task = self._loop.create_task(self._attempt(running))
        self._stats.claimed += len(jobs)
        self._stats.running = len(self._running)

    async def _attempt(self, running: RunningJob) -> None:
        result: AttemptResult | None = None
        try:
            result = await self._runner.run(running.job, running.ctx)
        except asyncio.CancelledError:
            pass  # the worker stopped it: stop_reason says why
        finally:
            self._running.remove(running)
            self._stats.running = len(self._running)
            if running.cancel_timer is not None:
                running.cancel_timer.cancel()
        reason = running.stop_reason
        if reason is StopReason.LOST:
            return
        if reason is StopReason.SHUTDOWN and (
            result is None or result.outcome.state is not JobState.COMPLETED
        ):
            # Whatever the interrupted attempt ended with, it goes back to the queue.
            self._unfinished.append(running.lease)
            return
        if result is not None:
            outcome = result.outcome
        elif reason is StopReason.CANCEL:
            outcome = self._runner.cancelled(
                running.job,
                f"cancelled; stopped after the {self._settings.cancel_grace}s cancel grace",
            )
        else:
            self._unfinished.append(running.lease)
            return
        _log_outcome(running.job, outcome)
        self._completer.submit(outcome, attempt=running.job.attempt)

    # -- stopping attempts --------------------------------------------------------------

    def stop(self, running: RunningJob, reason: StopReason) -> None:
        """Stop an attempt now. An async task is cancelled; a sync call is abandoned (its
        thread or process runs on, its result is discarded)."""
        if running.stop_reason is not StopReason.LOST:
            running.stop_reason = reason
        running.ctx._request_cancel()
        if running.task is not None:
            CancelUntilDone(running.task)  # job code may drop one cancellation

    def lost(self, running: RunningJob, why: str) -> None:
        """The lease of this attempt is gone: stop it, and never write its outcome."""
        if running.task is None or running.task.done():
            return
        if running.stop_reason is StopReason.LOST:
            return
        logger.warning(
            "job %d: stopping attempt %d, %s; its outcome will not be written",
            running.job.id,
            running.job.attempt,
            why,
        )
        self._stats.lost += 1
        self.stop(running, StopReason.LOST)

    def cancel_requested(self, running: RunningJob) -> None:
        """Someone asked to cancel this attempt's job: flag it, stop it after the grace."""
        if running.cancel_requested or running.task is None or running.task.done():
            return
        running.cancel_requested = True
        running.ctx._request_cancel()
        running.cancel_timer = self._loop.call_later(
            self._settings.cancel_grace, self.stop, running, StopReason.CANCEL
        )

    async def drain(self, grace: float, skip: asyncio.Event) -> list[Lease]:
        """Let running attempts finish within ``grace`` seconds (or until ``skip`` is
        set), stop the rest, and return the leases to give back to the queue."""
        deadline = self._loop.time() + grace
        skipper = asyncio.ensure_future(skip.wait())
        try:
            while self._running.jobs and not skip.is_set():
                left = deadline - self._loop.time()
                if left <= 0:
                    break
                tasks = {r.task for r in self._running.jobs.values() if r.task is not None}
                await asyncio.wait(
                    {*tasks, skipper}, timeout=left, return_when=asyncio.FIRST_COMPLETED
                )
        finally:
            skipper.cancel()
        leftover = list(self._running.jobs.values())
        if leftover:
            logger.warning(
                "%d job(s) still running at the end of the shutdown grace (%ss): "
                "stopping them and releasing them to the queue",
                len(leftover),
                grace,
            )
            for running in leftover:
                self.stop(running, StopReason.SHUTDOWN)
            tasks = {r.task for r in leftover if r.task is not None}
            await asyncio.wait(tasks, timeout=HARD_STOP_WAIT)
        stubborn = [r.lease for r in self._running.jobs.values()]
        unfinished, self._unfinished = self._unfinished + stubborn, []
        return unfinished


def _log_outcome(job: ClaimedJob, outcome: Outcome) -> None:
    error = outcome.error
    what = f"{error.type}: {error.message}" if error is not None else ""
    if outcome.state is JobState.SCHEDULED:
        logger.info(
            "job %d (%s) attempt %d/%d failed with %s; retrying in %.2fs",
            job.id,
            job.task,
            job.attempt,
            job.max_attempts,
            what,
            outcome.retry_delay,
        )
    elif outcome.state is JobState.FAILED:
        logger.warning(
            "job %d (%s) failed on attempt %d/%d: %s",
            job.id,
            job.task,
            job.attempt,
            job.max_attempts,
            what,
        )
    elif outcome.state is JobState.CANCELLED:
        logger.info("job %d (%s) cancelled", job.id, job.task)
