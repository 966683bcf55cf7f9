"""Test support: assert what business code enqueued, and run a task with a real job
context but without a store or worker.

Two ways to test code that enqueues, neither needing a flag in business code:

- build the app with ``Workhorse("memory://")`` and check what was enqueued with
  :func:`assert_enqueued`;
- or run jobs inline as they are enqueued, with ``Workhorse(url, eager=True)`` or
  ``with app.eager():``.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from workhorse._portal import Portal
from workhorse.app import Workhorse
from workhorse.context import JobContext, bound, current_job, run_with_context
from workhorse.jobs import JobRecord, JobState
from workhorse.tasks import Task

R = TypeVar("R")

__all__ = [
    "assert_enqueued",
    "assert_enqueued_sync",
    "current_job",
    "enqueued",
    "enqueued_sync",
    "refute_enqueued",
    "refute_enqueued_sync",
    "run_job",
]


def _task_name(task: Task[Any, Any] | str) -> str:
    return task if isinstance(task, str) else task.name


def _matches(
    record: JobRecord,
    args: Sequence[Any] | None,
    kwargs: Mapping[str, Any] | None,
    queue: str | None,
    tenant: str | None,
) -> bool:
    return (
        (args is None or record.args == list(args))
        and (kwargs is None or record.kwargs == dict(kwargs))
        and (queue is None or record.queue == queue)
        and (tenant is None or record.tenant == tenant)
    )


async def enqueued(
    app: Workhorse,
    task: Task[Any, Any] | str | None = None,
    *,
    args: Sequence[Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    queue: str | None = None,
    tenant: str | None = None,
    states: Sequence[JobState] | None = (JobState.QUEUED, JobState.SCHEDULED, JobState.BLOCKED),
    limit: int = 1000,
) -> list[JobRecord]:
    """Jobs waiting to run (by default) that match, oldest first."""
    records = await app.list_jobs(
        task=None if task is None else _task_name(task), states=states, limit=limit
    )
    found = [r for r in records if _matches(r, args, kwargs, queue, tenant)]
    found.reverse()
    return found


async def assert_enqueued(
    app: Workhorse,
    task: Task[Any, Any] | str,
    *,
    args: Sequence[Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    queue: str | None = None,
    tenant: str | None = None,
    count: int | None = None,
) -> list[JobRecord]:
    """Assert that matching jobs wait to run (exactly ``count`` of them, when given) and
    return them. The message lists what waits instead."""
    found = await enqueued(app, task, args=args, kwargs=kwargs, queue=queue, tenant=tenant)
    ok = len(found) == count if count is not None else bool(found)
    if not ok:
        wanted = _describe(task, args=args, kwargs=kwargs, queue=queue, tenant=tenant)
        expected = "a job" if count is None else f"{count} job(s)"
        raise AssertionError(
            f"expected {expected} of {wanted}, found {len(found)}; "
            f"{_listing('waiting', await enqueued(app))}"
        )
    return found


async def refute_enqueued(
    app: Workhorse,
    task: Task[Any, Any] | str,
    *,
    args: Sequence[Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
) -> None:
    """Assert that no matching job waits to run. The message lists those that do."""
    found = await enqueued(app, task, args=args, kwargs=kwargs)
    if found:
        wanted = _describe(task, args=args, kwargs=kwargs)
        raise AssertionError(f"expected no job of {wanted}; {_listing('found', found)}")


_LISTED = 20
"""Jobs shown in a failure message, at most."""


def _describe(task: Task[Any, Any] | str, **filters: Any) -> str:
    given = ", ".join(f"{name}={value!r}" for name, value in filters.items() if value is not None)
    return _task_name(task) + (f" with {given}" if given else "")


def _listing(what: str, records: Sequence[JobRecord]) -> str:
    if not records:
        return f"{what}: none"
    lines = [
        f"  job {r.id}: {r.task} args={r.args!r} kwargs={r.kwargs!r} queue={r.queue!r}"
        + (f" tenant={r.tenant!r}" if r.tenant is not None else "")
        for r in records[:_LISTED]
    ]
    if len(records) > _LISTED:
        lines.append(f"  ... and {len(records) - _LISTED} more")
    return f"{what} ({len(records)}):\n" + "\n".join(lines)


async def run_job(
    task: Task[Any, R], *args: Any, attempt: int = 1, max_attempts: int | None = None, **kwargs: Any
) -> R:
    """Run ``task``'s function now, with a real :class:`JobContext` (so ``current_job()``
    works), without a store or worker. Sync functions run in a thread like on a worker.
    Returns the function's result; exceptions propagate."""
    ctx = JobContext(
        job_id=0,
        task_name=task.name,
        attempt=attempt,
        max_attempts=max_attempts or task.retry.max_attempts,
        queue=task.queue,
        tenant=task.tenant,
        loop=asyncio.get_running_loop(),
    )
    if task.is_async:
        with bound(ctx):
            result: R = await task.fn(*args, **kwargs)
        return result
    sync_call = functools.partial(run_with_context, ctx, task.fn, *args, **kwargs)
    sync_result: R = await asyncio.to_thread(sync_call)
    return sync_result


def _portal_of(app: Workhorse) -> Portal:
    return app._portal


def enqueued_sync(
    app: Workhorse, task: Task[Any, Any] | str | None = None, **filters: Any
) -> list[JobRecord]:
    """Blocking version of :func:`enqueued`."""
    return _portal_of(app).run(enqueued(app, task, **filters))


def assert_enqueued_sync(
    app: Workhorse, task: Task[Any, Any] | str, **filters: Any
) -> list[JobRecord]:
    """Blocking version of :func:`assert_enqueued`."""
    return _portal_of(app).run(assert_enqueued(app, task, **filters))


def refute_enqueued_sync(app: Workhorse, task: Task[Any, Any] | str, **filters: Any) -> None:
    """Blocking version of :func:`refute_enqueued`."""
    _portal_of(app).run(refute_enqueued(app, task, **filters))
