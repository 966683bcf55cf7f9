"""Eager mode: an enqueue runs its jobs at once, in the caller's process.

Each job goes through the store exactly as on a worker (claimed, run by the worker's own
:class:`~workhorse.worker.executor.JobRunner`, completed), so its record, result, error
and attempts look the same. Differences, all for the sake of tests:

- a retry runs again at once (the backoff delay is recorded but not waited for);
- when a job ends failed and ``app.eager_propagate`` is set, the task's own exception is
  raised from ``enqueue`` (after every job of that enqueue has run);
- ``executor="process"`` tasks run in a thread, still imported by module and name;
- leases are not renewed (no heartbeat runs), and progress stays in the job context.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from workhorse.backends.base import Backend
from workhorse.jobs import JobState
from workhorse.worker.executor import JobRunner

if TYPE_CHECKING:
    from workhorse.app import Workhorse
    from workhorse.handle import Job

EAGER_LEASE = 24 * 3600.0
"""Eager jobs hold their lease without heartbeats, so it must outlast any test."""


def eager_worker_id() -> str:
    """The worker id eager jobs are recorded under."""
    return f"eager-{socket.gethostname()}-{os.getpid()}"


async def run_eagerly(app: Workhorse, store: Backend, jobs: Sequence[Job[Any]]) -> None:
    """Run ``jobs`` (just inserted) to a final state, in order. Raises the first failed
    job's exception when ``app.eager_propagate`` is set."""
    runner = JobRunner(app)
    first_error: BaseException | None = None
    for job in jobs:
        error = await _run_to_the_end(app, store, runner, job.id)
        if first_error is None:
            first_error = error
    if first_error is not None and app.eager_propagate:
        raise first_error


async def _run_to_the_end(
    app: Workhorse, store: Backend, runner: JobRunner, job_id: int
) -> BaseException | None:
    """Attempts of one job until it is final; the exception of a failed job, if any."""
    worker_id = eager_worker_id()
    while True:
        claimed = await store.job_claim(
            worker_id=worker_id,
            queues=None,
            limit=1,
            lease_seconds=EAGER_LEASE,
            job_ids=[job_id],
        )
        if not claimed:  # cancelled, or blocked on dependencies: nothing to run now
            return None
        job = claimed[0]
        attempt = await runner.run(job, runner.context_for(job))
        await store.job_complete_many([attempt.outcome])
        state = attempt.outcome.state
        if state is JobState.SCHEDULED:
            continue
        app._jobs_finished([job.id])
        return attempt.error if state is JobState.FAILED else None
