"""Pipelines: one job that moves through named stages by itself.

Why one job and not a chain of jobs: the record a user follows (API, CLI, dashboard)
is the job they enqueued, and it says where it is (``meta["pipeline"]["stage"]``); a
failure stops that job at its stage with the stage's error, and retrying that job (by
its retry policy or by hand) resumes at the failed stage. The worker runs each stage's
task where that task belongs (event loop, thread or process, with its own timeout) and,
after each stage, stores the stage's result and the next stage's index in the job's
meta, under the attempt's lease. A crash between two stages therefore costs at most the
stage that was running; stages before it never run again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from workhorse import serialization
from workhorse.backends.base import ClaimedJob, NewJob
from workhorse.context import JobContext
from workhorse.errors import LeaseExpiredError
from workhorse.retry import Retry
from workhorse.tasks import EnqueueOptions, Task

if TYPE_CHECKING:
    from workhorse.app import Workhorse

P = ParamSpec("P")
R = TypeVar("R")

PIPELINE_META = "pipeline"
"""The meta field holding a pipeline job's progress."""

StageCall = Callable[[Task[Any, Any], list[Any], dict[str, Any]], Awaitable[Any]]
"""Runs one stage's task with these arguments (where the task belongs)."""
SaveProgress = Callable[[dict[str, Any]], Awaitable[bool]]
"""Stores the progress record under the attempt's lease; False once the lease is lost."""


@dataclasses.dataclass(frozen=True, slots=True)
class Stage:
    """One named step of a pipeline, run by a task."""

    name: str
    task: Task[Any, Any]


async def _stages_run_in_a_worker(*args: Any, **kwargs: Any) -> Any:
    raise TypeError("a pipeline runs its stages in a worker: call enqueue(), not the pipeline")


class Pipeline(Task[P, R]):
    """A task whose job runs ``stages`` in order, each getting the previous stage's
    result as its only argument (the first stage gets the enqueued arguments); the job's
    result is the last stage's. Made by :meth:`Workhorse.pipeline`::

        ingest = app.pipeline("ingest", stages=[validate, parse, index])
        job = await ingest.enqueue(doc_id)

    The job's ``meta["pipeline"]`` holds ``stages`` (names), ``index`` and ``stage``
    (the stage running, next, or where it failed), ``done`` and, between stages,
    ``carry`` (the last stage's result). A failing stage fails the attempt with its own
    error; the pipeline's retry policy decides what happens next, and every further
    attempt (automatic or ``retry()``) starts at that stage.
    """

    def __init__(
        self,
        app: Workhorse,
        name: str,
        stages: Sequence[Task[Any, Any] | tuple[str, Task[Any, Any]]],
        *,
        queue: str = "default",
        priority: int = 0,
        retry: Retry | int | None = None,
        tenant: str | None = None,
        labels: Mapping[str, str] | None = None,
        result_ttl: float | timedelta | None = None,
    ) -> None:
        super().__init__(
            _stages_run_in_a_worker,
            app=app,
            name=name,
            queue=queue,
            priority=priority,
            retry=retry,
            tenant=tenant,
            labels=labels,
            result_ttl=result_ttl,
        )
        self.stages = tuple(_stage(entry) for entry in stages)
        if not self.stages:
            raise ValueError(f"pipeline {name!r} needs at least one stage")
        names = [stage.name for stage in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"pipeline {name!r}: stage names must differ, got {names}")
        for stage in self.stages:
            if isinstance(stage.task, Pipeline):
                raise ValueError(f"pipeline {name!r}: stage {stage.name!r} is a pipeline itself")
            if stage.task.app is not app:
                raise ValueError(f"pipeline {name!r}: stage {stage.name!r} is another app's task")
        self.__doc__ = f"Pipeline {name}: {' -> '.join(names)}"

    def __repr__(self) -> str:
        return f"<Pipeline {self.name} {' -> '.join(s.name for s in self.stages)}>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        """Pipelines only run in workers."""
        raise TypeError(f"pipeline {self.name!r} runs in a worker: use enqueue()")

    def _new_job(
        self, args: tuple[Any, ...], kwargs: Mapping[str, Any], options: EnqueueOptions
    ) -> NewJob:
        job = super()._new_job(args, kwargs, options)
        return dataclasses.replace(job, meta={**job.meta, PIPELINE_META: self.progress(0)})

    def progress(self, index: int, carry: Any = None) -> dict[str, Any]:
        """The progress record of a job about to run stage ``index`` (``len(stages)``
        once every stage is done), ``carry`` being the result of the stage before."""
        names = [stage.name for stage in self.stages]
        record: dict[str, Any] = {
            "stages": names,
            "index": index,
            "stage": names[min(index, len(names) - 1)],
            "done": names[:index],
        }
        if index > 0:
            record["carry"] = carry
        return record


def _stage(entry: Task[Any, Any] | tuple[str, Task[Any, Any]]) -> Stage:
    if isinstance(entry, tuple):
        name, task = entry
        return Stage(name, task)
    return Stage(getattr(entry.fn, "__name__", entry.name), entry)


async def run_stages(
    pipeline: Pipeline[Any, Any],
    job: ClaimedJob,
    args: list[Any],
    kwargs: dict[str, Any],
    ctx: JobContext,
    call: StageCall,
    save: SaveProgress,
) -> Any:
    """Run the stages of ``job`` from where its progress says, storing the progress after
    each; the last stage's result."""
    stored = job.meta.get(PIPELINE_META)
    stored = stored if isinstance(stored, dict) else {}
    index = int(stored.get("index", 0))
    carry = stored.get("carry")
    count = len(pipeline.stages)
    for position in range(index, count):
        stage = pipeline.stages[position]
        ctx.raise_if_cancelled()
        ctx.set_progress(100.0 * position / count, f"stage {stage.name} ({position + 1}/{count})")
        if position == 0:
            carry = await call(stage.task, args, kwargs)
        else:
            carry = await call(stage.task, [carry], {})
        serialization.dumps(carry, what=f"the result of stage {stage.name!r}")
        if not await save(pipeline.progress(position + 1, carry)):
            raise LeaseExpiredError(
                f"job {job.id} lost its lease after stage {stage.name!r}; another attempt "
                "resumes from the stored progress"
            )
    return carry
