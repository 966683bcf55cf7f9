"""``GET /workflows/{id}`` (a workflow's parts, their states and what each waits for) and
``POST /workflows/{id}/cancel``, scoped by tenant like every job route."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel

from workhorse.backends.base import WorkflowRecord
from workhorse.jobs import JobRecord, JobState, WorkflowState
from workhorse.web.auth import Principal
from workhorse.web.errors import ApiError
from workhorse.web.guard import Reader, Writer
from workhorse.web.schemas import MAX_DB_INT, ErrorOut, JobErrorOut

if TYPE_CHECKING:
    from workhorse.app import Workhorse

WorkflowId = Annotated[int, Path(ge=1, le=MAX_DB_INT, description="The workflow's id.")]


class WorkflowPartOut(BaseModel):
    """One job of a workflow."""

    id: int
    task: str
    state: JobState
    depends_on: list[int]
    """The jobs it waits for, in order (jobs outside the workflow included)."""
    stage: str | None
    """The current stage, for a pipeline job."""
    progress: float
    attempt: int
    max_attempts: int
    result: Any
    error: JobErrorOut | None
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, part: JobRecord, depends_on: list[int]) -> WorkflowPartOut:
        """The API view of a part."""
        error = part.error
        return cls(
            id=part.id,
            task=part.task,
            state=part.state,
            depends_on=depends_on,
            stage=part.stage,
            progress=part.progress,
            attempt=part.attempt,
            max_attempts=part.max_attempts,
            result=part.result,
            error=None
            if error is None
            else JobErrorOut(type=error.type, message=error.message, traceback=error.traceback),
            started_at=part.started_at,
            finished_at=part.finished_at,
        )


class WorkflowOut(BaseModel):
    """A workflow and its parts, oldest first."""

    id: int
    name: str | None
    tenant: str | None
    on_failure: str
    """What a failed or cancelled part does to the parts waiting on it: fail or cancel."""
    state: WorkflowState
    created_at: datetime
    cancelled_at: datetime | None
    counts: dict[JobState, int]
    parts: list[WorkflowPartOut]

    @classmethod
    def of(cls, record: WorkflowRecord, principal: Principal) -> WorkflowOut:
        """The API view of a workflow, with the parts ``principal`` may see."""
        parts = [part for part in record.parts if principal.owns(part)]
        counts = dict.fromkeys(JobState, 0)
        for part in parts:
            counts[part.state] += 1
        return cls(
            id=record.id,
            name=record.name,
            tenant=record.tenant,
            on_failure=record.on_failure,
            state=record.state,
            created_at=record.created_at,
            cancelled_at=record.cancelled_at,
            counts=counts,
            parts=[WorkflowPartOut.of(part, record.dependencies_of(part.id)) for part in parts],
        )


def install_workflow_routes(router: APIRouter, app: Workhorse) -> None:
    """Add ``GET /workflows/{id}`` and ``POST /workflows/{id}/cancel`` to ``router``."""

    async def visible(workflow_id: int, principal: Principal) -> WorkflowRecord:
        store = await app.backend()
        record = await store.workflow_get(workflow_id=workflow_id, tenant=principal.tenant_scope())
        if record is None:
            raise ApiError(404, "not_found", f"workflow {workflow_id} not found")
        return record

    @router.get(
        "/workflows/{workflow_id}",
        tags=["workflows"],
        summary="Get a workflow",
        responses={404: {"model": ErrorOut}},
    )
    async def get_workflow(workflow_id: WorkflowId, principal: Reader) -> WorkflowOut:
        """A workflow's parts with their states, and what each part waits for."""
        return WorkflowOut.of(await visible(workflow_id, principal), principal)

    @router.post(
        "/workflows/{workflow_id}/cancel",
        tags=["workflows"],
        summary="Cancel a workflow",
        responses={404: {"model": ErrorOut}},
    )
    async def cancel_workflow(workflow_id: WorkflowId, principal: Writer) -> WorkflowOut:
        """Cancel every live part: waiting parts at once, running ones cooperatively.
        Finished parts are left as they are."""
        await visible(workflow_id, principal)
        store = await app.backend()
        record = await store.workflow_cancel(
            workflow_id=workflow_id, tenant=principal.tenant_scope()
        )
        if record is None:
            raise ApiError(404, "not_found", f"workflow {workflow_id} not found")
        return WorkflowOut.of(record, principal)
