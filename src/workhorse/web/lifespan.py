"""FastAPI integration: run a worker inside your app's lifespan, and enqueue from
endpoints through a dependency.

One line to get a worker that starts with the server and drains when it stops::

    jobs = Workhorse("sqlite:///jobs.db")
    lifespan = worker_lifespan(jobs, concurrency=4)
    api = FastAPI(lifespan=lifespan)

Startup returns as soon as the worker runs. On shutdown (SIGTERM, Ctrl-C) the worker
stops claiming, lets running jobs finish within ``shutdown_grace`` seconds, then puts
what is left back in the queue: nothing stays ``running``, nothing is lost. With a
lifespan of your own, enter this one inside it::

    @asynccontextmanager
    async def lifespan(api: FastAPI):
        async with database(), worker_lifespan(jobs)(api):
            yield
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ParamSpec, TypeAlias, TypeVar

from starlette.requests import Request
from starlette.types import ASGIApp

from workhorse.app import Workhorse
from workhorse.tasks import ConfiguredTask, Task

if TYPE_CHECKING:
    from workhorse.handle import Job
    from workhorse.worker import Worker

P = ParamSpec("P")
R = TypeVar("R")

STATE_KEY = "workhorse"
"""Where the lifespan leaves the app on ``request.app.state`` (for :func:`get_workhorse`)."""


def _remember(api: ASGIApp | None, app: Workhorse) -> None:
    state = getattr(api, "state", None)
    if state is not None:
        setattr(state, STATE_KEY, app)


class WorkerLifespan:
    """A FastAPI lifespan running a worker of ``app`` in the server's process.

    ``settings`` are :class:`~workhorse.WorkerSettings` fields (``concurrency``,
    ``queues``, ``shutdown_grace``...); None values keep the app's. ``close_store``
    closes the app's store connections after the worker stopped.
    """

    def __init__(self, app: Workhorse, *, close_store: bool = True, **settings: Any) -> None:
        self.app = app
        self.close_store = close_store
        self.settings = {k: v for k, v in settings.items() if v is not None}
        self.worker: Worker | None = None
        """The running worker (None before startup and after shutdown)."""

    @property
    def alive(self) -> bool:
        """True while the worker runs (for ``/readyz``)."""
        return worker_alive(self)

    @contextlib.asynccontextmanager
    async def __call__(self, api: ASGIApp | None = None) -> AsyncIterator[None]:
        """Start the worker, serve, then drain it."""
        _remember(api, self.app)
        worker = self.app.worker(**self.settings)
        await worker.start()
        self.worker = worker
        try:
            yield
        finally:
            try:
                await worker.stop()
            finally:
                self.worker = None
                if self.close_store:
                    await self.app.aclose()


def worker_lifespan(app: Workhorse, **settings: Any) -> WorkerLifespan:
    """The lifespan to pass to ``FastAPI(lifespan=...)``; see :class:`WorkerLifespan`."""
    return WorkerLifespan(app, **settings)


def store_lifespan(
    app: Workhorse,
) -> Callable[[ASGIApp | None], contextlib.AbstractAsyncContextManager[None]]:
    """A lifespan without a worker: make ``app`` reachable by :func:`get_workhorse` and
    close its store on shutdown."""

    @contextlib.asynccontextmanager
    async def run(api: ASGIApp | None = None) -> AsyncIterator[None]:
        _remember(api, app)
        try:
            yield
        finally:
            await app.aclose()

    return run


WorkerProbe: TypeAlias = "WorkerLifespan | Worker"
"""What ``create_router(worker=...)`` watches for ``/readyz``."""


def worker_alive(probe: WorkerLifespan | Worker) -> bool:
    """True if the worker behind ``probe`` is running."""
    from workhorse.worker import WorkerState

    worker = probe.worker if isinstance(probe, WorkerLifespan) else probe
    return worker is not None and worker.state is WorkerState.RUNNING


def get_workhorse(request: Request) -> Workhorse:
    """FastAPI dependency: the app the lifespan registered
    (``Annotated[Workhorse, Depends(get_workhorse)]``)."""
    app = getattr(request.app.state, STATE_KEY, None)
    if not isinstance(app, Workhorse):
        raise RuntimeError(
            "no workhorse app on this FastAPI app: use worker_lifespan(...) as its lifespan"
        )
    return app


class Enqueuer:
    """Enqueues from an endpoint, stamping each job with the request's tenant and labels
    (see :func:`enqueuer`)."""

    def __init__(
        self,
        app: Workhorse,
        *,
        tenant: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        self.app = app
        self.tenant = tenant
        self.labels = dict(labels or {})

    async def enqueue(
        self, task: Task[P, R] | ConfiguredTask[P, R], /, *args: P.args, **kwargs: P.kwargs
    ) -> Job[R]:
        """Enqueue ``task(*args, **kwargs)``; checked by mypy like ``task.enqueue``."""
        configured = task.options(tenant=self.tenant, labels=self.labels or None)
        return await configured.enqueue(*args, **kwargs)

    async def enqueue_name(
        self,
        task_name: str,
        *,
        args: tuple[Any, ...] | list[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        queue: str | None = None,
        priority: int | None = None,
        delay: float | timedelta | None = None,
        run_at: datetime | None = None,
        unique_key: str | None = None,
    ) -> Job[Any]:
        """Enqueue a task by its registered name."""
        return await self.app.enqueue(
            task_name,
            args=args,
            kwargs=kwargs,
            queue=queue,
            priority=priority,
            delay=delay,
            run_at=run_at,
            tenant=self.tenant,
            labels=self.labels or None,
            unique_key=unique_key,
        )


TenantOf = Callable[[Request], "str | Awaitable[str | None] | None"]
LabelsOf = Callable[[Request], Mapping[str, str]]


def enqueuer(
    app: Workhorse | None = None,
    *,
    tenant: TenantOf | None = None,
    labels: LabelsOf | None = None,
) -> Callable[[Request], Awaitable[Enqueuer]]:
    """A FastAPI dependency giving an :class:`Enqueuer` per request::

        Jobs = Annotated[Enqueuer, Depends(enqueuer(jobs, tenant=current_tenant))]

        @api.post("/documents")
        async def upload(doc: Document, jobs: Jobs) -> dict[str, int]:
            job = await jobs.enqueue(process_document, doc.id)
            return {"job_id": job.id}

    ``tenant(request)`` (sync or async) names the tenant the jobs belong to;
    ``labels(request)`` adds labels. Without ``app``, the one registered by the lifespan.
    """

    async def dependency(request: Request) -> Enqueuer:
        target = app if app is not None else get_workhorse(request)
        who: str | None = None
        if tenant is not None:
            found = tenant(request)
            who = await found if isinstance(found, Awaitable) else found
        return Enqueuer(target, tenant=who, labels=labels(request) if labels else None)

    return dependency
