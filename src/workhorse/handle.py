"""Job handles: what ``enqueue`` returns, to follow a job and fetch its result."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Generic, TypeVar, cast

from workhorse._portal import Portal, sync_twin
from workhorse.errors import JobCancelledError, JobFailedError, JobNotFoundError, ResultTimeoutError
from workhorse.jobs import JobRecord, JobState

if TYPE_CHECKING:
    from workhorse.app import Workhorse

R = TypeVar("R")

_POLL_FIRST = 0.002
_POLL_MAX = 0.1


class Job(Generic[R]):
    """A handle on a stored job. Cheap to create: ``app.job(id)`` makes one from an id."""

    __slots__ = ("app", "created", "id", "task_name")

    def __init__(self, app: Workhorse, id: int, task_name: str | None = None, created: bool = True):
        self.app = app
        self.id = id
        self.task_name = task_name
        self.created = created
        """False if enqueue returned an existing job holding the same unique key."""

    @property
    def _portal(self) -> Portal:
        return self.app._portal

    def __repr__(self) -> str:
        return f"<Job {self.id} {self.task_name or ''}>".replace(" >", ">")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Job) and other.id == self.id and other.app is self.app

    def __hash__(self) -> int:
        return hash(self.id)

    async def refresh(self) -> JobRecord:
        """The job's current record. Raises ``JobNotFoundError`` if it was deleted."""
        record = await (await self.app.backend()).job_get(job_id=self.id)
        if record is None:
            raise JobNotFoundError(f"job {self.id} not found")
        return record

    async def status(self) -> JobState:
        """The job's current state."""
        return (await self.refresh()).state

    async def wait(self, timeout: float | None = None) -> JobRecord:
        """Wait until the job is final and return its record.

        Raises ``ResultTimeoutError`` after ``timeout`` seconds (the job goes on)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = _POLL_FIRST
        while True:
            record = await self.refresh()
            if record.state.is_final:
                return record
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ResultTimeoutError(f"job {self.id} still {record.state} after {timeout}s")
                delay = min(delay, left)
            await self.app._wait_finished(self.id, delay)
            delay = min(delay * 2, _POLL_MAX)

    async def result(self, timeout: float | None = None) -> R:
        """Wait for the job and return its result.

        Raises ``JobFailedError`` (failed), ``JobCancelledError`` (cancelled) or
        ``ResultTimeoutError`` (still running after ``timeout`` seconds)."""
        record = await self.wait(timeout)
        if record.state is JobState.COMPLETED:
            return cast(R, record.result)
        error_type = record.error.type if record.error else None
        message = record.error.message if record.error else None
        if record.state is JobState.CANCELLED:
            raise JobCancelledError(self.id, record.state.value, error_type, message)
        raise JobFailedError(self.id, record.state.value, error_type, message)

    async def cancel(self) -> JobRecord:
        """Cancel the job: at once if it has not started, cooperatively if it runs."""
        return await self.app.cancel(self.id)

    async def retry(self) -> JobRecord:
        """Run a failed or cancelled job again."""
        return await self.app.retry(self.id)

    refresh_sync = sync_twin(refresh)
    status_sync = sync_twin(status)
    wait_sync = sync_twin(wait)
    result_sync = sync_twin(result)
    cancel_sync = sync_twin(cancel)
    retry_sync = sync_twin(retry)
