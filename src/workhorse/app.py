"""The app: a task registry bound to a store, and the entry point users call."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar, overload

from workhorse._portal import Portal, sync_twin
from workhorse.backends import DEFAULT_URL, open_backend, redact_url
from workhorse.backends.base import (
    Backend,
    JobEvent,
    JobFilter,
    NewJob,
    QueueStats,
    WorkerRecord,
    WorkflowRecord,
)
from workhorse.errors import JobNotFoundError, UnknownTaskError
from workhorse.handle import Job
from workhorse.jobs import JobRecord, JobState
from workhorse.limits.config import Limit, LimitRegistry, Rate
from workhorse.retry import Retry
from workhorse.scheduling.schedule import Schedule, ScheduleRegistry, build_schedule
from workhorse.settings import WorkerSettings, retry_from_env
from workhorse.stats.flusher import Flusher
from workhorse.stats.tally import JobKey, Tally
from workhorse.tasks import EnqueueOptions, Executor, JobSpec, Task, _seconds
from workhorse.unique import UniqueSetting
from workhorse.webhooks.delivery import Webhooks

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from workhorse.worker import Worker
    from workhorse.workflows.pipeline import Pipeline

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_RESULT_TTL = timedelta(days=7)


class _TaskDecorator(Protocol):
    @overload
    def __call__(self, fn: Callable[P, Awaitable[R]], /) -> Task[P, R]: ...
    @overload
    def __call__(self, fn: Callable[P, R], /) -> Task[P, R]: ...


class Workhorse:
    """A workhorse app: register tasks on it, enqueue jobs, run workers.

    ``url`` picks the store: ``sqlite:///jobs.db`` (the default is ``sqlite:///workhorse.db``
    in the working directory, or ``$WORKHORSE_URL``), ``postgresql://...`` (needs
    ``workhorse[postgres]``), or ``memory://`` for tests.

    ``retry`` is the :class:`Retry` policy of tasks that declare none (see
    :attr:`default_retry`); ``settings`` are the worker's (see :class:`WorkerSettings`).

    With ``eager=True`` (or inside ``with app.eager():``) an enqueue runs the job at once,
    in the caller's process, retries included, and re-raises the task's error when the
    job ends failed (unless ``eager_propagate=False``).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        eager: bool = False,
        eager_propagate: bool = True,
        settings: WorkerSettings | None = None,
        result_ttl: float | timedelta | None = DEFAULT_RESULT_TTL,
        auto_migrate: bool = True,
        backend_options: Mapping[str, Any] | None = None,
        retry: Retry | None = None,
    ) -> None:
        self.url = url or os.environ.get("WORKHORSE_URL") or DEFAULT_URL
        self.tasks: dict[str, Task[Any, Any]] = {}
        self.settings = settings or WorkerSettings.from_env()
        self.default_retry = retry or retry_from_env()
        """The retry policy of tasks that declare none. Without ``retry=``: the built-in
        one (3 attempts, 1 s backoff doubling up to 600 s, 20 % jitter) adjusted by the
        ``WORKHORSE_MAX_ATTEMPTS`` and ``WORKHORSE_BACKOFF_*`` environment variables."""
        self.result_ttl = _seconds(result_ttl)
        """Seconds a finished job is kept before pruning (None: forever)."""
        self.auto_migrate = auto_migrate
        self.eager_propagate = eager_propagate
        self._eager_depth = 1 if eager else 0
        self._backend_options = dict(backend_options or {})
        self._portal = Portal()
        self._lock = threading.Lock()
        self._backends: dict[asyncio.AbstractEventLoop, asyncio.Future[Backend]] = {}
        self._shared_backend: Backend | None = None
        self._migrated = False
        self._wakers: list[Callable[[str | None], None]] = []
        self._finish_waiters: dict[int, list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}
        self.limits = LimitRegistry()
        """Concurrency and rate limits that workers claim under (see :meth:`limit_queue`)."""
        self.schedules = ScheduleRegistry()
        """Periodic jobs (see :meth:`schedule` and :meth:`periodic`)."""
        self.webhooks = Webhooks(self)
        """Webhook settings, secrets and delivery log; registers the delivery task."""
        self._tally = Tally()
        """Job events this process counted (enqueues, a worker's attempts), on their way
        to the store's statistics."""
        self._flusher = Flusher(self._tally, self._backend_if_open)

    def __repr__(self) -> str:
        return f"<Workhorse {redact_url(self.url)} tasks={len(self.tasks)}>"

    # -- tasks ------------------------------------------------------------------------

    @overload
    def task(self, fn: Callable[P, Awaitable[R]], /) -> Task[P, R]: ...
    @overload
    def task(self, fn: Callable[P, R], /) -> Task[P, R]: ...
    @overload
    def task(
        self,
        /,
        *,
        name: str | None = None,
        queue: str = "default",
        priority: int = 0,
        retry: Retry | int | None = None,
        timeout: float | None = None,
        unique: UniqueSetting = False,
        tenant: str | None = None,
        labels: Mapping[str, str] | None = None,
        result_ttl: float | timedelta | None = None,
        executor: Executor | None = None,
        limit: Limit | None = None,
        concurrency: int | None = None,
        rate_limit: Rate | None = None,
        webhook: str | None = None,
    ) -> _TaskDecorator: ...

    def task(
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        queue: str = "default",
        priority: int = 0,
        retry: Retry | int | None = None,
        timeout: float | None = None,
        unique: UniqueSetting = False,
        tenant: str | None = None,
        labels: Mapping[str, str] | None = None,
        result_ttl: float | timedelta | None = None,
        executor: Executor | None = None,
        limit: Limit | None = None,
        concurrency: int | None = None,
        rate_limit: Rate | None = None,
        webhook: str | None = None,
    ) -> Any:
        """Register a function (async or sync) as a task::

            @app.task(queue="mail", retry=Retry(max_attempts=5), timeout=30)
            async def send_email(to: str) -> None: ...

        Options: ``name`` (stable stored name; default ``module.qualname``), ``queue``,
        ``priority`` (higher runs first), ``retry`` (a :class:`Retry` or a number of
        attempts), ``timeout`` (seconds per attempt), ``unique`` (True: one live job per
        set of arguments; a function of the arguments giving the key; or a
        :class:`Unique` with states, a period and what a duplicate does), ``tenant``,
        ``labels``, ``result_ttl``, ``executor`` ("thread" or "process" for sync functions),
        ``concurrency`` and ``rate_limit`` (a :class:`Rate`: caps on all the task's jobs
        together, across every worker), ``limit`` (a keyed :class:`Limit`, e.g. per
        tenant) and ``webhook`` (a URL notified when a job ends).
        """

        def register(func: Callable[..., Any]) -> Task[Any, Any]:
            task: Task[Any, Any] = Task(
                func,
                app=self,
                name=name,
                queue=queue,
                priority=priority,
                retry=retry,
                timeout=timeout,
                unique=unique,
                tenant=tenant,
                labels=labels,
                result_ttl=result_ttl,
                executor=executor,
                limit=limit,
                concurrency=concurrency,
                rate_limit=rate_limit,
                webhook=webhook,
            )
            existing = self.tasks.get(task.name)
            if existing is not None and existing.fn is not func:
                raise ValueError(f"a task named {task.name!r} is already registered")
            if limit is not None:
                self.limits.add(limit)
            self.limits.set_task(task.name, concurrency, rate_limit)
            self.tasks[task.name] = task
            return task

        return register(fn) if fn is not None else register

    def get_task(self, name: str) -> Task[Any, Any]:
        """The task registered as ``name``; ``UnknownTaskError`` if none."""
        try:
            return self.tasks[name]
        except KeyError:
            known = ", ".join(sorted(self.tasks)) or "none"
            raise UnknownTaskError(f"no task named {name!r} (registered: {known})") from None

    def pipeline(
        self,
        name: str,
        *,
        stages: Sequence[Task[Any, Any] | tuple[str, Task[Any, Any]]],
        queue: str = "default",
        priority: int = 0,
        retry: Retry | int | None = None,
        tenant: str | None = None,
        labels: Mapping[str, str] | None = None,
        result_ttl: float | timedelta | None = None,
    ) -> Pipeline[..., Any]:
        """Register a pipeline: a task whose one job runs ``stages`` (tasks, or
        ``(name, task)`` pairs) in order, each given the previous stage's result::

            ingest = app.pipeline("ingest", stages=[validate, parse, index])
            job = await ingest.enqueue(doc_id)

        The job's record shows its current stage (``record.stage``); a failing stage
        stops it there, and every retry resumes at that stage. See :class:`Pipeline`."""
        from workhorse.workflows.pipeline import Pipeline

        pipeline: Pipeline[..., Any] = Pipeline(
            self,
            name,
            stages,
            queue=queue,
            priority=priority,
            retry=retry,
            tenant=tenant,
            labels=labels,
            result_ttl=result_ttl,
        )
        if name in self.tasks:
            raise ValueError(f"a task named {name!r} is already registered")
        self.tasks[name] = pipeline
        return pipeline

    # -- periodic jobs and limits -------------------------------------------------------

    def schedule(
        self,
        spec: JobSpec[Any],
        *,
        cron: str | None = None,
        every: timedelta | float | None = None,
        tz: str = "UTC",
        name: str | None = None,
        catch_up: timedelta | float | None = None,
    ) -> Schedule:
        """Enqueue a call on every tick of a cron expression (read in time zone ``tz``)
        or of a fixed interval (``every``, at least a second, on multiples of it since
        the epoch)::

            app.schedule(report.call("daily"), cron="0 3 * * *", tz="Europe/Paris")

        Workers enqueue each tick once, however many run. Ticks missed while no worker
        ran are enqueued when one starts, if they are within ``catch_up`` (default ten
        minutes, at least one); older ones are skipped with a warning. ``name`` (default:
        the task's name) identifies the schedule in the store: keep it stable."""
        schedule = build_schedule(spec, cron=cron, every=every, tz=tz, name=name, catch_up=catch_up)
        return self.schedules.add(schedule)

    def periodic(
        self,
        cron: str | None = None,
        /,
        *,
        every: timedelta | float | None = None,
        tz: str = "UTC",
        name: str | None = None,
        catch_up: timedelta | float | None = None,
        **task_options: Any,
    ) -> Callable[[Callable[[], Any]], Task[[], Any]]:
        """Register a function without arguments as a task and schedule it::

            @app.periodic("*/5 * * * *", tz="America/New_York")
            async def sync_prices() -> None: ...

        ``task_options`` go to :meth:`task`; the rest is as in :meth:`schedule`."""

        def register(fn: Callable[[], Any]) -> Task[[], Any]:
            task: Task[[], Any] = self.task(**task_options)(fn)
            self.schedule(task.call(), cron=cron, every=every, tz=tz, name=name, catch_up=catch_up)
            return task

        return register

    def limit_queue(self, queue: str, *, concurrency: int) -> None:
        """Run at most ``concurrency`` jobs of ``queue`` at once, across every worker."""
        self.limits.set_queue(queue, concurrency)

    # -- the store --------------------------------------------------------------------

    def open_store(self) -> Backend:
        """A new store for this app's URL and backend options, not connected yet (what
        :meth:`backend` connects; ``workhorse migrate --print`` reads its SQL)."""
        return open_backend(self.url, **self._backend_options)

    async def backend(self) -> Backend:
        """The connected (and, with ``auto_migrate``, migrated) store for this event loop."""
        shared = self._shared_backend
        if shared is not None:
            return shared
        loop = asyncio.get_running_loop()
        opened = self._backends.get(loop)  # the usual case, without the lock and shield
        if opened is not None and opened.done() and not opened.cancelled():
            return opened.result()
        with self._lock:
            future = self._backends.get(loop)
            if future is None:
                future = loop.create_future()
                self._backends[loop] = future
                opener = True
            else:
                opener = False
        if not opener:
            return await asyncio.shield(future)
        try:
            store = self.open_store()
            await store.connect()
            try:
                if self.auto_migrate and not self._migrated:
                    await store.migrate()
                    self._migrated = True
            except BaseException:
                await store.close()  # nobody else will: the store is never handed out
                raise
        except BaseException as exc:
            with self._lock:
                self._backends.pop(loop, None)
            future.set_exception(exc)
            future.exception()  # retrieved: the caller re-raises it
            raise
        if store.shared_across_loops:
            self._shared_backend = store
        future.set_result(store)
        return store

    def _backend_if_open(self) -> Backend | None:
        """The running loop's store if it is open (never opens one)."""
        shared = self._shared_backend
        if shared is not None:
            return shared
        with self._lock:
            future = self._backends.get(asyncio.get_running_loop())
        if future is None or not future.done() or future.cancelled() or future.exception():
            return None
        return future.result()

    async def migrate(self) -> list[str]:
        """Apply pending schema migrations; return their names."""
        return await (await self.backend()).migrate()

    async def aclose(self) -> None:
        """Write this process's job statistics, then close this loop's store connections
        (and the sync bridge when called last)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            future = self._backends.pop(loop, None)
        if future is not None and future.done() and not future.exception():
            store = future.result()
            await self._flusher.close(store)
            await store.close()
        if self._shared_backend is not None and not self._backends:
            await self._flusher.close(self._shared_backend)
            await self._shared_backend.close()
            self._shared_backend = None

    def close(self) -> None:
        """Close the sync bridge's store and stop its thread (for sync programs)."""
        with contextlib.suppress(RuntimeError):
            self._portal.run(self.aclose())
        self._portal.close()

    # -- enqueue ----------------------------------------------------------------------

    async def enqueue_many(
        self, specs: Sequence[JobSpec[Any]], *, connection: Any = None
    ) -> list[Job[Any]]:
        """Enqueue several calls in one atomic write::

            await app.enqueue_many([resize.call(p) for p in paths])

        ``connection`` (PostgreSQL) joins the caller's open transaction: a psycopg
        connection or a SQLAlchemy session; the jobs exist if and only if it commits.
        """
        return await self._enqueue([spec.to_new_job() for spec in specs], connection)

    async def _enqueue(self, rows: list[NewJob], connection: Any) -> list[Job[Any]]:
        """Store ``rows`` in one atomic write; their handles (what every enqueue ends in:
        a task's ``enqueue`` calls it with its one row, without a ``JobSpec``)."""
        if not rows:
            return []
        store = await self.backend()
        inserted = await store.job_insert_many(rows, connection=connection)
        pairs = list(zip(rows, inserted, strict=True))
        jobs: list[Job[Any]] = [Job(self, row.id, new.task, row.created) for new, row in pairs]
        if self.is_eager:
            from workhorse.eager import run_eagerly

            await run_eagerly(self, store, [job for job in jobs if job.created])
            return jobs
        self._count_enqueued([new for new, row in pairs if row.created])
        if connection is None and self._wakers:  # a worker in this process
            self._wake_local(row.queue for row in rows)
        return jobs

    async def enqueue(
        self,
        task_name: str,
        *,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        queue: str | None = None,
        priority: int | None = None,
        delay: float | timedelta | None = None,
        run_at: datetime | None = None,
        tenant: str | None = None,
        labels: Mapping[str, str] | None = None,
        unique_key: str | None = None,
        max_attempts: int | None = None,
        timeout: float | None = None,
        connection: Any = None,
    ) -> Job[Any]:
        """Enqueue a registered task by name (for the CLI, the API, or untyped callers).

        Raises ``UnknownTaskError`` for a name no task is registered under."""
        task = self.get_task(task_name)
        options = EnqueueOptions(
            queue=queue,
            priority=priority,
            delay=delay,
            run_at=run_at,
            tenant=tenant,
            labels=labels,
            unique_key=unique_key,
            max_attempts=max_attempts,
            timeout=timeout,
        )
        spec: JobSpec[Any] = JobSpec(task, tuple(args), dict(kwargs or {}), options)
        return (await self.enqueue_many([spec], connection=connection))[0]

    # -- jobs -------------------------------------------------------------------------

    def job(self, job_id: int) -> Job[Any]:
        """A handle on an existing job by id (no query is made)."""
        return Job(self, job_id)

    async def get_job(self, job_id: int, *, tenant: str | None = None) -> JobRecord:
        """A job's record; ``JobNotFoundError`` if absent (or another tenant's)."""
        record = await (await self.backend()).job_get(job_id=job_id, tenant=tenant)
        if record is None:
            raise JobNotFoundError(f"job {job_id} not found")
        return record

    async def list_jobs(
        self,
        *,
        tenant: str | None = None,
        queue: str | None = None,
        states: Sequence[JobState | str] | None = None,
        task: str | None = None,
        label: tuple[str, str] | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[JobRecord]:
        """Jobs matching the filters, newest first; pass the last id as ``before_id`` for
        the next page."""
        job_filter = JobFilter(
            tenant=tenant,
            queue=queue,
            states=tuple(JobState(s) for s in states) if states else None,
            task=task,
            label=label,
            created_after=created_after,
            created_before=created_before,
        )
        store = await self.backend()
        return await store.job_list(filter=job_filter, limit=limit, before_id=before_id)

    async def cancel(self, job_id: int, *, tenant: str | None = None) -> JobRecord:
        """Cancel a job (see :meth:`Job.cancel`). ``JobNotFoundError`` if absent."""
        record = await (await self.backend()).job_cancel(job_id=job_id, tenant=tenant)
        if record is None:
            raise JobNotFoundError(f"job {job_id} not found")
        return record

    async def retry(self, job_id: int, *, tenant: str | None = None) -> JobRecord:
        """Send a failed or cancelled job back to its queue."""
        record = await (await self.backend()).job_retry(job_id=job_id, tenant=tenant)
        if record is None:
            raise JobNotFoundError(f"job {job_id} not found")
        self._wake_local([record.queue])
        return record

    async def queue_stats(self, *, tenant: str | None = None) -> list[QueueStats]:
        """Job counts per state for every queue."""
        return await (await self.backend()).queue_stats(tenant=tenant)

    async def workers(self) -> list[WorkerRecord]:
        """Workers that are registered in the store."""
        return await (await self.backend()).worker_list()

    async def get_workflow(self, workflow_id: int, *, tenant: str | None = None) -> WorkflowRecord:
        """A workflow with its parts; ``JobNotFoundError`` if absent (or another
        tenant's, or once all its parts were deleted)."""
        store = await self.backend()
        record = await store.workflow_get(workflow_id=workflow_id, tenant=tenant)
        if record is None:
            raise JobNotFoundError(f"workflow {workflow_id} not found")
        return record

    async def cancel_workflow(
        self, workflow_id: int, *, tenant: str | None = None
    ) -> WorkflowRecord:
        """Cancel every live part of a workflow (running parts stop cooperatively)."""
        store = await self.backend()
        record = await store.workflow_cancel(workflow_id=workflow_id, tenant=tenant)
        if record is None:
            raise JobNotFoundError(f"workflow {workflow_id} not found")
        return record

    enqueue_many_sync = sync_twin(enqueue_many)
    enqueue_sync = sync_twin(enqueue)
    get_job_sync = sync_twin(get_job)
    list_jobs_sync = sync_twin(list_jobs)
    cancel_sync = sync_twin(cancel)
    retry_sync = sync_twin(retry)
    queue_stats_sync = sync_twin(queue_stats)
    workers_sync = sync_twin(workers)
    migrate_sync = sync_twin(migrate)
    get_workflow_sync = sync_twin(get_workflow)
    cancel_workflow_sync = sync_twin(cancel_workflow)

    # -- workers and modes --------------------------------------------------------------

    def worker(self, **overrides: Any) -> Worker:
        """A worker for this app; use as ``async with app.worker(concurrency=8):``.

        Entering returns as soon as the worker runs; leaving drains it gracefully.
        ``overrides`` are :class:`WorkerSettings` fields."""
        from workhorse.worker import Worker

        return Worker(self, self.settings.replace(**overrides))

    @property
    def is_eager(self) -> bool:
        """True while enqueue runs jobs inline."""
        return self._eager_depth > 0

    @contextlib.contextmanager
    def eager(self) -> Iterator[None]:
        """Run jobs inline at enqueue for the duration of the block (tests)."""
        self._eager_depth += 1
        try:
            yield
        finally:
            self._eager_depth -= 1

    # -- in-process signals between enqueuers, workers and result waiters -------------

    def _add_waker(self, wake: Callable[[str | None], None]) -> Callable[[], None]:
        """Register a thread-safe callback run when this process enqueues work."""
        with self._lock:
            self._wakers.append(wake)

        def remove() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._wakers.remove(wake)

        return remove

    def _wake_local(self, queues: Iterable[str]) -> None:
        if not self._wakers:  # no worker in this process (a racing one claims at start)
            return
        with self._lock:
            wakers = list(self._wakers)
        distinct = set(queues)
        for wake in wakers:
            for queue in distinct:
                wake(queue)

    def _count_enqueued(self, jobs: Sequence[NewJob]) -> None:
        """Count jobs this process stored (not in eager mode: its jobs never meet a
        worker, so their attempts would not be counted either)."""
        if jobs:
            self._tally.add(JobEvent.ENQUEUED, [JobKey(j.queue, j.task, j.tenant) for j in jobs])
            self._flusher.soon()

    def _jobs_finished(self, job_ids: Sequence[int]) -> None:
        """Called by in-process workers once outcomes are stored (thread-safe)."""
        with self._lock:
            waiters = [w for job_id in job_ids for w in self._finish_waiters.pop(job_id, [])]
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                loop.call_soon_threadsafe(event.set)

    async def _wait_finished(self, job_id: int, timeout: float) -> None:
        """Sleep up to ``timeout``, waking early if an in-process worker finishes the job."""
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._finish_waiters.setdefault(job_id, []).append(entry)
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await entry[1].wait()
        finally:
            with self._lock:
                waiters = self._finish_waiters.get(job_id)
                if waiters and entry in waiters:
                    waiters.remove(entry)
                    if not waiters:
                        del self._finish_waiters[job_id]
