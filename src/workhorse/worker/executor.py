"""Runs one attempt of a claimed job and says how it ended, as an :class:`Outcome`.

This is the one code path that both the worker and eager mode use: decoding the stored
arguments, finding the task, running it where it belongs, enforcing its timeout, and
turning a return value or an exception into an outcome through the task's retry policy.

Where a task runs:

- ``async`` tasks run on the event loop; a timeout cancels them (``asyncio``).
- ``thread`` tasks (sync functions) run in a thread pool, with the job context current in
  that thread. A thread cannot be killed: at the timeout (or a hard cancel) the attempt
  ends at once and its slot is freed, the context is flagged cancelled so that a task
  that checks ``ctx.cancelled`` can stop early, and the thread runs on; whatever it
  returns later is discarded, and the pool grows by a thread meanwhile (``offloop``).
- ``process`` tasks run in a process pool ("spawn" start method). The child imports the
  function by module and qualified name, so it must be defined at module level. There is
  no job context in the child (``current_job()`` raises there): pass what the function
  needs as arguments. At the timeout (or a hard cancel) the child is terminated.

Either way the timeout counts from when the call starts running, not while it waits for
a free thread or child.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from workhorse import serialization
from workhorse.backends.base import ClaimedJob, Outcome
from workhorse.context import JobContext, bound, run_with_context
from workhorse.errors import (
    Cancelled,
    ConfigurationError,
    CorruptJobError,
    DependencyFailedError,
    JobTimeoutError,
    SerializationError,
    UnknownTaskError,
)
from workhorse.jobs import JobError, JobState
from workhorse.serialization import storable_text
from workhorse.worker import _child
from workhorse.worker._processes import ProcessPool
from workhorse.worker._threads import DaemonThreadPool
from workhorse.worker.deadline import within
from workhorse.worker.offloop import in_thread, settle
from workhorse.workflows.pipeline import Pipeline
from workhorse.workflows.running import run_task

if TYPE_CHECKING:
    from workhorse.app import Workhorse
    from workhorse.tasks import Task

logger = logging.getLogger("workhorse.worker")

T = TypeVar("T")

PERMANENT_ERRORS: tuple[type[BaseException], ...] = (
    CorruptJobError,
    UnknownTaskError,
    SerializationError,
    ConfigurationError,
    DependencyFailedError,
)
"""Errors that another attempt cannot fix: the job fails whatever its retry policy says."""

_TRACEBACK_LIMIT = 32_000
"""Characters of traceback kept (the end, where the error is)."""


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """How an attempt ended, and the exception that ended it (eager mode re-raises it)."""

    outcome: Outcome
    error: BaseException | None = None


def describe(exc: BaseException) -> JobError:
    """The stored form of an exception: type name, message and traceback text, made
    storable (a NUL character, which PostgreSQL refuses in text, is replaced). Every
    error an attempt ends with is written through here."""
    text = "".join(traceback.format_exception(exc))
    if len(text) > _TRACEBACK_LIMIT:
        text = "...\n" + text[-_TRACEBACK_LIMIT:]
    return JobError(
        type=storable_text(type(exc).__name__),
        message=storable_text(str(exc)),
        traceback=storable_text(text),
    )


def decode_arguments(job: ClaimedJob) -> tuple[list[Any], dict[str, Any]]:
    """The job's positional and keyword arguments; ``CorruptJobError`` naming the
    column if the stored text is not a JSON list (args) or a JSON object (kwargs), or
    if the claim found the row corrupt (``job.corrupt``)."""
    if job.corrupt is not None:
        raise CorruptJobError(f"job {job.id} (task {job.task!r}): {job.corrupt}")
    args = _stored_json(job, "args", job.args, list, "a JSON list")
    kwargs = _stored_json(job, "kwargs", job.kwargs, dict, "a JSON object")
    return args, kwargs


def _stored_json(job: ClaimedJob, column: str, text: str, kind: type[T], what: str) -> T:
    try:
        value = serialization.loads(text)
    except ValueError as exc:
        raise CorruptJobError(
            f"job {job.id} (task {job.task!r}): column {column!r} is not valid JSON ({exc})"
        ) from None
    if not isinstance(value, kind):
        raise CorruptJobError(
            f"job {job.id} (task {job.task!r}): column {column!r} holds "
            f"{type(value).__name__} JSON, not {what}"
        )
    return value


class JobRunner:
    """Runs attempts of claimed jobs for one app.

    ``threads`` runs sync tasks (None: the event loop's default executor). ``processes``
    makes the pool for ``executor="process"`` tasks on first use; None runs them in
    ``threads`` instead, still imported by name (eager mode: same checks, no spawn cost).
    """

    def __init__(
        self,
        app: Workhorse,
        *,
        threads: DaemonThreadPool | None = None,
        processes: Callable[[], ProcessPool] | None = None,
    ) -> None:
        self.app = app
        self._threads = threads
        self._make_processes = processes
        self._processes: ProcessPool | None = None

    # -- contexts and outcomes ----------------------------------------------------------

    def context_for(
        self,
        job: ClaimedJob,
        *,
        on_progress: Callable[[JobContext], None] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> JobContext:
        """A fresh context for this attempt of ``job``, on ``loop`` (by default the
        running one: call on the event loop)."""
        return JobContext(
            job_id=job.id,
            task_name=job.task,
            attempt=job.attempt,
            max_attempts=job.max_attempts,
            queue=job.queue,
            tenant=job.tenant,
            # Python 3.11 asks the kernel for the pid on every get_running_loop().
            loop=loop or asyncio.get_running_loop(),
            on_progress=on_progress,
        )

    def ttl_for(self, job: ClaimedJob) -> float | None:
        """Seconds a finished ``job`` is kept: its task's ``result_ttl``, else the app's."""
        task = self.app.tasks.get(job.task)
        if task is not None and task.result_ttl is not None:
            return task.result_ttl
        return self.app.result_ttl

    def cancelled(self, job: ClaimedJob, reason: str) -> Outcome:
        """The outcome of an attempt stopped by a cancellation request."""
        return Outcome(
            job_id=job.id,
            lease_token=job.lease_token,
            state=JobState.CANCELLED,
            error=JobError(type=Cancelled.__name__, message=reason),
            ttl=self.ttl_for(job),
        )

    def _ended(
        self,
        job: ClaimedJob,
        state: JobState,
        exc: BaseException,
        *,
        delay: float = 0.0,
        ctx: JobContext | None = None,
    ) -> AttemptResult:
        reported = ctx is not None and (ctx.progress > 0 or ctx.message is not None)
        outcome = Outcome(
            job_id=job.id,
            lease_token=job.lease_token,
            state=state,
            error=describe(exc),
            retry_delay=delay,
            ttl=self.ttl_for(job),
            progress=ctx.progress if ctx is not None and reported else None,
            progress_message=ctx.message if ctx is not None and reported else None,
        )
        return AttemptResult(outcome, exc)

    def _failure(
        self, job: ClaimedJob, task: Task[Any, Any], exc: BaseException, ctx: JobContext
    ) -> AttemptResult:
        if isinstance(exc, Cancelled) or (ctx.cancelled and not isinstance(exc, JobTimeoutError)):
            return self._ended(job, JobState.CANCELLED, exc, ctx=ctx)
        if isinstance(exc, PERMANENT_ERRORS):
            return self._ended(job, JobState.FAILED, exc, ctx=ctx)
        delay = task.retry.next_delay(exc, attempt=job.attempt, max_attempts=job.max_attempts)
        if delay is None:
            return self._ended(job, JobState.FAILED, exc, ctx=ctx)
        return self._ended(job, JobState.SCHEDULED, exc, delay=delay, ctx=ctx)

    # -- running ------------------------------------------------------------------------

    async def run(self, job: ClaimedJob, ctx: JobContext) -> AttemptResult:
        """Run one attempt of ``job`` with ``ctx`` as its context. Never raises, except
        ``asyncio.CancelledError`` when the caller cancels the attempt."""
        try:
            args, kwargs = decode_arguments(job)
        except CorruptJobError as exc:
            logger.error("%s; failing the job without retry", exc)
            return self._ended(job, JobState.FAILED, exc)
        try:
            task = self.app.get_task(job.task)
        except UnknownTaskError as exc:
            logger.error("job %d: %s", job.id, exc)
            return self._ended(job, JobState.FAILED, exc)
        try:
            value = await self._invoke(task, job, args, kwargs, ctx)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            return self._failure(job, task, exc, ctx)
        try:
            result = serialization.dumps(value, what=f"the result of task {task.name!r}")
        except SerializationError as exc:
            return self._ended(job, JobState.FAILED, exc, ctx=ctx)
        outcome = Outcome(
            job_id=job.id,
            lease_token=job.lease_token,
            state=JobState.COMPLETED,
            result=result,
            ttl=self.ttl_for(job),
            progress=100.0,
            progress_message=ctx.message,
        )
        return AttemptResult(outcome)

    async def _invoke(
        self,
        task: Task[Any, Any],
        job: ClaimedJob,
        args: list[Any],
        kwargs: dict[str, Any],
        ctx: JobContext,
    ) -> Any:
        """Call the attempt's task; a workflow part that takes its dependencies' results
        gets them first, a pipeline runs stage by stage (``workflows.running``)."""

        def call(stage: Task[Any, Any], args: list[Any], kwargs: dict[str, Any]) -> Any:
            timeout = job.timeout if job.timeout is not None else stage.timeout
            return self._call(stage, args, kwargs, ctx, timeout)

        if not job.meta and not isinstance(task, Pipeline):  # nearly every job
            return await call(task, args, kwargs)
        return await run_task(self.app, task, job, args, kwargs, ctx, call)

    async def _call(
        self,
        task: Task[Any, Any],
        args: list[Any],
        kwargs: dict[str, Any],
        ctx: JobContext,
        timeout: float | None,
    ) -> Any:
        if task.executor == "async":
            if timeout is None:  # the common case, spared the timeout's bookkeeping
                with bound(ctx):
                    return await task.fn(*args, **kwargs)
            with bound(ctx):
                return await within(
                    task.fn(*args, **kwargs),
                    timeout,
                    timed_out=lambda: JobTimeoutError(_timed_out(task, timeout)),
                )
        label = f"job {ctx.job_id} ({task.name})"
        if task.executor == "process":
            fn = functools.partial(_child.call_by_name, *_importable_name(task), args, kwargs)
            call = (
                in_thread(self._threads, fn, label)  # eager: same checks, no spawn
                if self._make_processes is None
                else self._process_pool().start(fn, label)
            )
        else:
            fn = functools.partial(run_with_context, ctx, task.fn, *args, **kwargs)
            call = in_thread(self._threads, fn, label)
        return await settle(
            call,
            timeout,
            timed_out=lambda: JobTimeoutError(_timed_out(task, timeout)),
            on_abandon=ctx._request_cancel,
        )

    # -- pools --------------------------------------------------------------------------

    def _process_pool(self) -> ProcessPool:
        assert self._make_processes is not None
        if self._processes is None:
            self._processes = self._make_processes()
        return self._processes

    def close(self) -> None:
        """Shut the pools down without waiting: process-pool children are terminated;
        threads still running abandoned calls are daemons and die with the process."""
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)
        pool, self._processes = self._processes, None
        if pool is not None:
            pool.close()


def _timed_out(task: Task[Any, Any], timeout: float | None) -> str:
    return f"task {task.name!r} ran past its timeout of {timeout}s"


def _importable_name(task: Task[Any, Any]) -> tuple[str, str]:
    module, qualname = task.fn.__module__, task.fn.__qualname__
    if "<locals>" in qualname:
        raise ConfigurationError(
            f"task {task.name!r} runs in a process pool, so its function must be defined "
            f"at module level (a child process imports {module}.{qualname})"
        )
    return module, qualname
