"""Tasks: functions registered with an app, and the typed calls that enqueue them."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Concatenate, Generic, Literal, ParamSpec, TypeVar

from workhorse import serialization
from workhorse._portal import Portal
from workhorse.backends.base import NewJob
from workhorse.limits.config import LIMIT_KEY, Limit, Rate
from workhorse.retry import Retry
from workhorse.unique import Unique, UniqueSetting, as_unique, unique_fields
from workhorse.webhooks.event import WEBHOOK, check_url

if TYPE_CHECKING:
    from workhorse.app import Workhorse
    from workhorse.handle import Job

P = ParamSpec("P")
Rest = ParamSpec("Rest")
R = TypeVar("R")

Executor = Literal["async", "thread", "process"]
"""Where a task runs: on the worker's event loop (async functions), in its thread pool
(sync functions, the default for them), or in its process pool (CPU-bound sync
functions, opt-in)."""


@dataclass(frozen=True, slots=True)
class EnqueueOptions:
    """Per-call settings that override the task's defaults. None means "the task's"."""

    queue: str | None = None
    priority: int | None = None
    delay: float | timedelta | None = None
    run_at: datetime | None = None
    tenant: str | None = None
    labels: Mapping[str, str] | None = None
    unique_key: str | None = None
    max_attempts: int | None = None
    timeout: float | None = None
    parent_id: int | None = None
    meta: Mapping[str, Any] | None = None
    webhook: str | None = None
    unique: Unique | None = None

    def merged(self, other: EnqueueOptions) -> EnqueueOptions:
        """These options with ``other``'s non-None values on top."""
        changes = {
            name: getattr(other, name)
            for name in self.__dataclass_fields__
            if getattr(other, name) is not None
        }
        return replace(self, **changes)


_NO_OPTIONS = EnqueueOptions()
"""A task's own options: none given per call (shared, it is frozen)."""


@dataclass(slots=True)
class JobSpec(Generic[R]):
    """A task call not yet enqueued: pass a list of them to ``app.enqueue_many``.

    Treat it as read-only. It is not frozen (nor hashable) because a bulk enqueue builds
    one per job, and a frozen dataclass takes twice as long to build."""

    task: Task[Any, R]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    options: EnqueueOptions = field(default_factory=EnqueueOptions)

    def to_new_job(self) -> NewJob:
        """The row to insert. Raises ``SerializationError`` if arguments are not JSON."""
        return self.task._new_job(self.args, self.kwargs, self.options)


class _Enqueuer(Generic[P, R]):
    """``call``/``enqueue``/``enqueue_sync`` shared by a task and its configured copies."""

    _task: Task[P, R]
    _options: EnqueueOptions
    _connection: Any = None
    """The caller's connection or session that enqueues join (see :meth:`options`)."""

    @property
    def _portal(self) -> Portal:
        return self._task.app._portal

    def call(self, *args: P.args, **kwargs: P.kwargs) -> JobSpec[R]:
        """Describe a call without enqueuing it (for ``app.enqueue_many``)."""
        return JobSpec(self._task, args, kwargs, self._options)

    def partial(
        self: _Enqueuer[Concatenate[Any, Rest], R], *args: Rest.args, **kwargs: Rest.kwargs
    ) -> JobSpec[R]:
        """Describe a call whose first argument a workflow fills in: the result of the
        part it waits for (``chain``), or the list of results (``group(...).then``)."""
        return JobSpec(self._task, args, kwargs, self._options)

    async def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> Job[R]:
        """Store a job that runs this task with these arguments; return its handle.

        Raises ``SerializationError`` (nothing stored) if an argument is not JSON."""
        task = self._task
        row = task._new_job(args, kwargs, self._options)
        return (await task.app._enqueue([row], self._connection))[0]

    def enqueue_sync(self, *args: P.args, **kwargs: P.kwargs) -> Job[R]:
        """Blocking version of :meth:`enqueue`, for sync code."""
        return self._portal.run(self.enqueue(*args, **kwargs))

    def options(
        self,
        *,
        queue: str | None = None,
        priority: int | None = None,
        delay: float | timedelta | None = None,
        run_at: datetime | None = None,
        tenant: str | None = None,
        labels: Mapping[str, str] | None = None,
        unique_key: str | None = None,
        max_attempts: int | None = None,
        timeout: float | None = None,
        parent_id: int | None = None,
        meta: Mapping[str, Any] | None = None,
        webhook: str | None = None,
        unique: Unique | None = None,
        connection: Any = None,
    ) -> ConfiguredTask[P, R]:
        """A copy of this task whose enqueues use these settings::

        await send_email.options(delay=60, priority=5).enqueue("a@b.c")

        ``connection`` (PostgreSQL) makes its enqueues join the caller's open
        transaction, as ``app.enqueue_many(..., connection=...)`` does: a psycopg
        connection or a SQLAlchemy session; the job exists if and only if it commits::

            async with Session() as session, session.begin():
                session.add(order)
                await send_receipt.options(connection=session).enqueue(order.email)
        """
        extra = EnqueueOptions(
            queue=queue,
            priority=priority,
            delay=delay,
            run_at=run_at,
            tenant=tenant,
            labels=labels,
            unique_key=unique_key,
            max_attempts=max_attempts,
            timeout=timeout,
            parent_id=parent_id,
            meta=meta,
            webhook=None if webhook is None else check_url(webhook),
            unique=unique,
        )
        return ConfiguredTask(
            self._task,
            self._options.merged(extra),
            self._connection if connection is None else connection,
        )


class ConfiguredTask(_Enqueuer[P, R]):
    """A task with per-call options applied (see :meth:`Task.options`)."""

    def __init__(self, task: Task[P, R], options: EnqueueOptions, connection: Any = None) -> None:
        self._task = task
        self._options = options
        self._connection = connection


class Task(_Enqueuer[P, R]):
    """A function registered with an app under a stable name.

    Calling the task calls the function directly; ``enqueue`` stores a job for a worker.
    """

    def __init__(
        self,
        fn: Callable[P, Any],
        *,
        app: Workhorse,
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
    ) -> None:
        self.fn = fn
        self.app = app
        self.name = name or f"{fn.__module__}.{fn.__qualname__}"
        self._arguments = f"arguments of task {self.name!r}"
        """What a serialization error calls its jobs' arguments."""
        self.queue = queue
        self.priority = priority
        if isinstance(retry, int):
            Retry(max_attempts=retry)  # refuses a nonsensical number at declaration
        self._retry = retry
        self.timeout = timeout
        self.unique = unique
        self.unique_rule = as_unique(unique)
        """How its jobs stay unique (None: they do not)."""
        self.tenant = tenant
        self.labels = dict(labels or {})
        self.result_ttl = _seconds(result_ttl)
        self.limit = limit
        """A keyed or shared limit its jobs run under (their limit key is set at enqueue)."""
        self.concurrency = concurrency
        """Most jobs of this task running at once, across every worker."""
        self.rate_limit = rate_limit
        """Most starts of this task per window, across every worker."""
        self.webhook = None if webhook is None else check_url(webhook)
        """The URL notified when one of its jobs ends."""
        self.is_async = inspect.iscoroutinefunction(fn)
        if executor is None:
            executor = "async" if self.is_async else "thread"
        if executor == "async" and not self.is_async:
            raise ValueError(f"task {self.name!r}: executor='async' needs an async function")
        if executor != "async" and self.is_async:
            raise ValueError(f"task {self.name!r}: an async function runs on the event loop")
        self.executor: Executor = executor
        if timeout is not None and timeout <= 0:
            raise ValueError(f"task {self.name!r}: timeout must be positive")
        self._task = self
        self._options = _NO_OPTIONS
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    @property
    def retry(self) -> Retry:
        """The task's retry policy: its own, else the app's default (``Workhorse(retry=...)``
        or the ``WORKHORSE_MAX_ATTEMPTS``/``WORKHORSE_BACKOFF_*`` environment); a task
        declared with ``retry=N`` makes N attempts with the app's default backoff."""
        own = self._retry
        if isinstance(own, Retry):
            return own
        default = self.app.default_retry
        return default if own is None else replace(default, max_attempts=own)

    @retry.setter
    def retry(self, policy: Retry | int | None) -> None:
        self._retry = policy

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        """Call the function itself, in this process (no job is stored)."""
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Task {self.name} queue={self.queue}>"

    def _new_job(
        self, args: tuple[Any, ...], kwargs: Mapping[str, Any], options: EnqueueOptions
    ) -> NewJob:
        args_json, kwargs_json = self._arguments_json(args, kwargs)
        if options is _NO_OPTIONS and self._is_plain():
            # The usual call, nothing in it but arguments: every other field is the
            # task's (half the time of working each one out, in a bulk enqueue).
            return NewJob(
                task=self.name,
                args=args_json,
                kwargs=kwargs_json,
                queue=self.queue,
                priority=self.priority,
                max_attempts=self.retry.max_attempts,
                timeout=self.timeout,
                tenant=self.tenant,
            )
        rule = options.unique or self.unique_rule
        unique = unique_fields(self.name, rule, options.unique_key, args, kwargs)
        labels = {**self.labels, **options.labels} if options.labels else dict(self.labels)
        for key, value in labels.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise TypeError(f"task {self.name!r}: labels must map str to str")
        run_at = options.run_at
        if run_at is not None and run_at.tzinfo is None:
            raise ValueError(f"task {self.name!r}: run_at must be timezone-aware")
        return NewJob(
            task=self.name,
            args=args_json,
            kwargs=kwargs_json,
            queue=options.queue or self.queue,
            priority=self.priority if options.priority is None else options.priority,
            max_attempts=options.max_attempts or self.retry.max_attempts,
            run_at=run_at.astimezone(UTC) if run_at is not None else None,
            delay=_seconds(options.delay) or 0.0,
            timeout=options.timeout or self.timeout,
            tenant=options.tenant or self.tenant,
            labels=labels,
            unique_key=unique.key,
            parent_id=options.parent_id,
            meta=self._meta(args, kwargs, options, labels),
            unique_states=unique.states,
            on_duplicate=unique.on_duplicate,
        )

    def _arguments_json(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[str, str]:
        """The JSON of a call's positional and keyword arguments; none costs nothing."""
        what = self._arguments
        # The JSON encoder takes a tuple as an array and any dict as an object: no copies.
        return (
            serialization.dumps(args, what=what) if args else "[]",
            serialization.dumps(kwargs if type(kwargs) is dict else dict(kwargs), what=what)
            if kwargs
            else "{}",
        )

    def _is_plain(self) -> bool:
        """Whether a job with no per-call options takes nothing from its arguments but
        their JSON: no unique key, limit key, labels or webhook to work out."""
        return (
            self.unique_rule is None
            and self.limit is None
            and self.webhook is None
            and not self.labels
        )

    def _meta(
        self,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        options: EnqueueOptions,
        labels: Mapping[str, str],
    ) -> dict[str, Any]:
        meta = dict(options.meta or {})
        webhook = options.webhook or self.webhook
        if webhook is not None:
            meta[WEBHOOK] = webhook
        if self.limit is not None:
            tenant = options.tenant or self.tenant
            key = self.limit.key_for(args, kwargs, tenant=tenant, labels=labels)
            if key is not None:
                meta[LIMIT_KEY] = key
        return meta


def _seconds(value: float | timedelta | None) -> float | None:
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value
