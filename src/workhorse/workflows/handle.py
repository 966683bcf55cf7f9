"""A handle on an enqueued workflow: its parts, its state, its result, its cancel."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Literal

from workhorse._portal import Portal, sync_twin
from workhorse.backends.base import WorkflowRecord
from workhorse.errors import JobCancelledError, JobFailedError, ResultTimeoutError
from workhorse.handle import Job
from workhorse.jobs import JobRecord, JobState, WorkflowState

if TYPE_CHECKING:
    from workhorse.app import Workhorse

ResultShape = Literal["last", "all"]
"""What ``result()`` gives: the last part's result, or every part's (a group)."""

_DEPENDENT = "DependencyFailedError"


class WorkflowHandle:
    """What ``Workflow.enqueue()`` returns. ``parts`` are handles on the jobs, in the
    order they were added."""

    __slots__ = ("app", "id", "parts", "shape")

    def __init__(
        self, app: Workhorse, id: int, parts: list[Job[Any]], *, shape: ResultShape = "last"
    ) -> None:
        self.app = app
        self.id = id
        self.parts = parts
        self.shape: ResultShape = shape

    @property
    def _portal(self) -> Portal:
        return self.app._portal

    def __repr__(self) -> str:
        return f"<WorkflowHandle {self.id} parts={len(self.parts)}>"

    async def refresh(self) -> WorkflowRecord:
        """The workflow's record (``JobNotFoundError`` once its parts were deleted)."""
        return await self.app.get_workflow(self.id)

    async def status(self) -> WorkflowState:
        """Active while a part is live; then completed, failed or cancelled."""
        return (await self.refresh()).state

    async def wait(self, timeout: float | None = None) -> WorkflowRecord:
        """Wait until every part is final; ``ResultTimeoutError`` after ``timeout``
        seconds (the workflow goes on)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for part in self.parts:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                await part.wait(left)
            except ResultTimeoutError:
                raise ResultTimeoutError(
                    f"workflow {self.id} still active after {timeout}s (job {part.id} is not done)"
                ) from None
        return await self.refresh()

    async def result(self, timeout: float | None = None) -> Any:
        """Wait for the workflow and return the last part's result (a group's: the list
        of its results). If it did not complete, raises ``JobFailedError`` (or
        ``JobCancelledError``) for the part where it broke down."""
        record = await self.wait(timeout)
        by_id = {part.id: part for part in record.parts}
        if record.state is not WorkflowState.COMPLETED:
            raise _failure(record)
        if self.shape == "all":
            return [by_id[part.id].result for part in self.parts]
        return by_id[self.parts[-1].id].result

    async def cancel(self) -> WorkflowRecord:
        """Cancel every live part (running parts stop cooperatively)."""
        return await self.app.cancel_workflow(self.id)

    refresh_sync = sync_twin(refresh)
    status_sync = sync_twin(status)
    wait_sync = sync_twin(wait)
    result_sync = sync_twin(result)
    cancel_sync = sync_twin(cancel)


def _failure(record: WorkflowRecord) -> JobFailedError:
    """The error of the part where the workflow broke down: the first that failed (or
    was cancelled) by itself rather than because of a dependency."""
    ended = [p for p in record.parts if p.state in (JobState.FAILED, JobState.CANCELLED)]
    own = [p for p in ended if p.error is None or p.error.type != _DEPENDENT]
    part: JobRecord = (own or ended)[0]
    error_type = part.error.type if part.error else None
    message = part.error.message if part.error else None
    kind = JobCancelledError if part.state is JobState.CANCELLED else JobFailedError
    return kind(part.id, f"{part.state.value} (in workflow {record.id})", error_type, message)
