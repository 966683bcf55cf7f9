"""What the worker does differently for workflow parts and pipelines: give a part the
results of the jobs it waited for, and run a pipeline stage by stage. Jobs without meta
(nearly all) skip both at the first check."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workhorse.backends.base import ClaimedJob, Lease
from workhorse.context import JobContext
from workhorse.errors import DependencyFailedError
from workhorse.jobs import JobState
from workhorse.serialization import dumps
from workhorse.tasks import Task
from workhorse.workflows.builder import INPUTS_META
from workhorse.workflows.pipeline import PIPELINE_META, Pipeline, StageCall, run_stages

if TYPE_CHECKING:
    from workhorse.app import Workhorse


async def with_inputs(app: Workhorse, job: ClaimedJob, args: list[Any]) -> list[Any]:
    """``args`` preceded by the results of the jobs ``job`` waited for, when it is a
    workflow part that takes them (``inputs="result"`` or ``"results"``).

    Raises ``DependencyFailedError`` (the job fails without retry) when a dependency's
    result is no longer stored."""
    inputs = job.meta.get(INPUTS_META) if job.meta else None
    if inputs is None:
        return args
    store = await app.backend()
    dependencies = await store.job_dependencies(job_id=job.id)
    for dep in dependencies:
        if dep.state is not JobState.COMPLETED:
            what = "was deleted" if dep.state is None else f"is {dep.state.value}"
            raise DependencyFailedError(
                f"job {job.id} needs the result of job {dep.job_id}, which {what}"
            )
    results = [dep.result for dep in dependencies]
    if inputs == "result":
        return [results[0], *args] if results else args
    return [results, *args]


async def run_task(
    app: Workhorse,
    task: Task[Any, Any],
    job: ClaimedJob,
    args: list[Any],
    kwargs: dict[str, Any],
    ctx: JobContext,
    call: StageCall,
) -> Any:
    """Run one attempt's task: ``call`` itself, or a pipeline's stages through it."""
    args = await with_inputs(app, job, args)
    if not isinstance(task, Pipeline):
        return await call(task, args, kwargs)

    async def save(progress: dict[str, Any]) -> bool:
        store = await app.backend()
        lease = Lease(job_id=job.id, token=job.lease_token)
        return await store.job_set_meta(lease=lease, key=PIPELINE_META, value=dumps(progress))

    return await run_stages(task, job, args, kwargs, ctx, call, save)
