"""The HTTP API: ``create_router`` for mounting in your own FastAPI app, ``create_app``
for ``workhorse serve``.

Every route but ``/healthz`` and ``/readyz`` needs an API key (or a dashboard session).
A key bound to a tenant sees and touches only that tenant's jobs: another tenant's job
id answers 404, exactly like an id that does not exist.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from workhorse.backends.base import JobFilter
from workhorse.errors import JobStateError
from workhorse.jobs import JobRecord, JobState
from workhorse.reserved import enqueueable_task
from workhorse.web.auth import ApiKeyAuthenticator, Authenticator, Principal
from workhorse.web.errors import ApiError, response_for
from workhorse.web.guard import Guard, Reader, Writer
from workhorse.web.lifespan import WorkerLifespan, WorkerProbe, store_lifespan, worker_alive
from workhorse.web.metrics import Metrics
from workhorse.web.origins import Origins
from workhorse.web.routing import DEFAULT_MAX_PAYLOAD_BYTES, route_class
from workhorse.web.schedules import install_schedule_routes
from workhorse.web.schemas import (
    MAX_DB_INT,
    MAX_PAGE,
    QUEUE_PATTERN,
    TENANT_PATTERN,
    ErrorOut,
    Health,
    JobCreate,
    JobOut,
    JobPage,
    QueueOut,
    Text,
    Throughput,
    WorkerOut,
    as_utc,
)
from workhorse.web.sessions import SessionCodec, Sessions
from workhorse.web.stats import throughput
from workhorse.web.webhooks import install_webhook_routes
from workhorse.web.workflows import install_workflow_routes

if TYPE_CHECKING:
    from workhorse.app import Workhorse

JobId = Annotated[int, Path(ge=1, le=MAX_DB_INT, description="The job's id.")]
TenantFilter = Annotated[
    str | None,
    Query(pattern=TENANT_PATTERN, description="Admin keys only; others see their own."),
]
READY_TIMEOUT = 5.0

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "No valid API key"},
    403: {"model": ErrorOut, "description": "The key may not do this"},
    413: {"model": ErrorOut, "description": "Request body over the size limit"},
    422: {"model": ErrorOut, "description": "Invalid request"},
}


def _now() -> datetime:
    return datetime.now(UTC)


def _utc_filter(moment: datetime | None, name: str) -> datetime | None:
    try:
        return as_utc(moment)
    except OverflowError:
        raise ApiError(422, "validation_error", f"{name} is out of range") from None


def _label_filter(label: str | None) -> tuple[str, str] | None:
    if label is None:
        return None
    key, sep, value = label.partition(":")
    if not sep or not key:
        raise ApiError(422, "validation_error", "label must look like key:value")
    return key, value


def _scoped_unique_key(key: str | None, tenant: str | None) -> str | None:
    """Unique keys sent through the API are per tenant: two tenants using the same key
    must not get each other's job."""
    if key is None or tenant is None:
        return key
    return f"{tenant}/{key}"


class _Routes:
    """The endpoint functions, bound to one app and its guard."""

    def __init__(self, app: Workhorse, worker: WorkerProbe | None) -> None:
        self.app = app
        self.worker = worker

    async def _visible_job(self, job_id: int, principal: Principal) -> JobRecord:
        store = await self.app.backend()
        record = await store.job_get(job_id=job_id, tenant=principal.tenant_scope())
        if record is None or not principal.owns(record):
            raise ApiError(404, "not_found", f"job {job_id} not found")
        return record

    async def create_job(self, body: JobCreate, principal: Principal, response: Response) -> JobOut:
        if principal.admin:
            tenant = body.tenant
        elif body.tenant is not None and body.tenant != principal.tenant:
            raise ApiError(403, "forbidden", "this API key can only enqueue for its own tenant")
        else:
            tenant = principal.tenant
        enqueueable_task(self.app, body.task)
        job = await self.app.enqueue(
            body.task,
            args=body.args,
            kwargs=body.kwargs,
            queue=body.queue,
            priority=body.priority,
            delay=body.delay,
            run_at=body.run_at,
            tenant=tenant,
            labels=body.labels,
            unique_key=_scoped_unique_key(body.unique_key, tenant),
            max_attempts=body.max_attempts,
            timeout=body.timeout,
        )
        store = await self.app.backend()
        record = await store.job_get(job_id=job.id)
        if record is None:  # pruned or deleted in between: report what was asked
            raise ApiError(409, "conflict", f"job {job.id} was deleted right after enqueue")
        if not job.created:
            if not principal.owns(record):
                raise ApiError(409, "conflict", "this unique key is held by another job")
            response.status_code = 200
        return JobOut.of(record)

    async def get_job(self, job_id: int, principal: Principal) -> JobOut:
        return JobOut.of(await self._visible_job(job_id, principal))

    async def delete_job(self, job_id: int, principal: Principal) -> Response:
        record = await self._visible_job(job_id, principal)
        store = await self.app.backend()
        if record.state.is_final:
            if not await store.job_delete(job_id=job_id, tenant=principal.tenant_scope()):
                raise ApiError(404, "not_found", f"job {job_id} not found")
            return Response(status_code=204)
        cancelled = await store.job_cancel(job_id=job_id, tenant=principal.tenant_scope())
        if cancelled is None:
            raise ApiError(404, "not_found", f"job {job_id} not found")
        return JSONResponse(JobOut.of(cancelled).model_dump(mode="json"))

    async def retry_job(self, job_id: int, principal: Principal) -> JobOut:
        await self._visible_job(job_id, principal)
        try:
            record = await self.app.retry(job_id, tenant=principal.tenant_scope())
        except JobStateError as exc:
            raise ApiError(409, "conflict", str(exc)) from None
        return JobOut.of(record)

    async def list_jobs(
        self,
        principal: Principal,
        *,
        tenant: str | None,
        queue: str | None,
        status: list[JobState] | None,
        task: str | None,
        label: str | None,
        created_after: datetime | None,
        created_before: datetime | None,
        limit: int,
        before_id: int | None,
    ) -> JobPage:
        job_filter = JobFilter(
            tenant=principal.tenant_scope(tenant),
            queue=queue,
            states=tuple(status) if status else None,
            task=task,
            label=_label_filter(label),
            created_after=_utc_filter(created_after, "created_after"),
            created_before=_utc_filter(created_before, "created_before"),
        )
        store = await self.app.backend()
        records = await store.job_list(filter=job_filter, limit=limit + 1, before_id=before_id)
        page = [r for r in records[:limit] if principal.owns(r)]
        more = len(records) > limit
        return JobPage(
            jobs=[JobOut.of(r) for r in page],
            next_cursor=records[limit - 1].id if more else None,
        )

    async def queues(self, principal: Principal, tenant: str | None) -> list[QueueOut]:
        stats = await self.app.queue_stats(tenant=principal.tenant_scope(tenant))
        now = _now()
        return [QueueOut.of(s, now) for s in stats]

    async def workers(self) -> list[WorkerOut]:
        now = _now()
        return [WorkerOut.of(w, now) for w in await self.app.workers()]

    async def throughput(
        self, principal: Principal, tenant: str | None, minutes: int
    ) -> Throughput:
        store = await self.app.backend()
        return await throughput(
            store, tenant=principal.tenant_scope(tenant), minutes=minutes, now=_now()
        )

    async def ready(self) -> JSONResponse:
        checks: dict[str, str] = {}
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                store = await self.app.backend()
            async with asyncio.timeout(READY_TIMEOUT):
                await store.worker_list()
            checks["store"] = "ok"
        except Exception as exc:
            checks["store"] = f"unreachable: {type(exc).__name__}: {exc}"
        if self.worker is not None:
            checks["worker"] = "ok" if worker_alive(self.worker) else "not running"
        healthy = all(value == "ok" for value in checks.values())
        body = Health(status="ok" if healthy else "unavailable", checks=checks)
        return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)


def create_router(
    app: Workhorse,
    *,
    auth: Authenticator | None = None,
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    worker: WorkerProbe | None = None,
    dashboard: bool = True,
    metrics: bool = True,
    session_secret: str | bytes | None = None,
    trusted_origins: Iterable[str] | None = None,
) -> APIRouter:
    """The workhorse API as a router to mount in your FastAPI app::

        api.include_router(create_router(jobs), prefix="/workhorse")

    ``auth`` checks credentials (default: the app's API keys, see ``workhorse keys``);
    request bodies over ``max_payload_bytes`` get a 413 and store nothing; ``worker``
    (a :class:`WorkerLifespan` or a worker) makes ``/readyz`` fail while it is not
    running; ``dashboard`` and ``metrics`` add ``/dashboard`` and ``/metrics``;
    ``session_secret`` signs dashboard sessions (default ``$WORKHORSE_SESSION_SECRET``,
    else random per process); ``trusted_origins`` (default ``$WORKHORSE_TRUSTED_ORIGINS``,
    comma-separated) are origins such as ``https://jobs.example.com`` that the dashboard
    accepts besides its own host, for a reverse proxy that rewrites ``Host``.
    """
    authenticator = auth if auth is not None else ApiKeyAuthenticator(app)
    sessions = Sessions(app, SessionCodec(session_secret))
    guard = Guard(authenticator, sessions, Origins(trusted_origins))
    routes = _Routes(app, worker)
    router = APIRouter(route_class=route_class(max_payload_bytes, guard), responses=_ERRORS)

    @router.post("/jobs", status_code=201, tags=["jobs"], summary="Enqueue a job")
    async def create_job(body: JobCreate, principal: Writer, response: Response) -> JobOut:
        """Enqueue a registered task. 201 with the new job; 200 with the existing job
        when a live job of this tenant holds ``unique_key``; 422 for an unknown task
        (and for workhorse's own ``workhorse.*`` tasks, which only the stores enqueue)."""
        return await routes.create_job(body, principal, response)

    @router.get("/jobs", tags=["jobs"], summary="List jobs")
    async def list_jobs(
        principal: Reader,
        tenant: TenantFilter = None,
        queue: Annotated[str | None, Query(pattern=QUEUE_PATTERN)] = None,
        status: Annotated[list[JobState] | None, Query()] = None,
        task: Annotated[Text | None, Query(max_length=255)] = None,
        label: Annotated[Text | None, Query(max_length=330, description="key:value")] = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        before_id: Annotated[int | None, Query(ge=1, le=MAX_DB_INT)] = None,
    ) -> JobPage:
        """Jobs newest first. Pass ``next_cursor`` back as ``before_id`` for older ones."""
        return await routes.list_jobs(
            principal,
            tenant=tenant,
            queue=queue,
            status=status,
            task=task,
            label=label,
            created_after=created_after,
            created_before=created_before,
            limit=limit,
            before_id=before_id,
        )

    @router.get(
        "/jobs/{job_id}", tags=["jobs"], summary="Get a job", responses={404: {"model": ErrorOut}}
    )
    async def get_job(job_id: JobId, principal: Reader) -> JobOut:
        """A job with its arguments, progress, result or error."""
        return await routes.get_job(job_id, principal)

    @router.delete(
        "/jobs/{job_id}",
        tags=["jobs"],
        summary="Cancel or delete a job",
        response_model=JobOut,
        responses={204: {"description": "The finished job was deleted"}, 404: {"model": ErrorOut}},
    )
    async def delete_job(job_id: JobId, principal: Writer) -> Response:
        """A live job is cancelled (200 with the job; a running one stops
        cooperatively); a finished job is deleted (204)."""
        return await routes.delete_job(job_id, principal)

    @router.post(
        "/jobs/{job_id}/retry",
        tags=["jobs"],
        summary="Retry a job",
        responses={404: {"model": ErrorOut}, 409: {"model": ErrorOut}},
    )
    async def retry_job(job_id: JobId, principal: Writer) -> JobOut:
        """Send a failed or cancelled job back to its queue (409 for other states)."""
        return await routes.retry_job(job_id, principal)

    @router.get("/queues", tags=["stats"], summary="Queues and their job counts")
    async def queues(principal: Reader, tenant: TenantFilter = None) -> list[QueueOut]:
        """Job counts per state for each queue (of the key's tenant)."""
        return await routes.queues(principal, tenant)

    @router.get("/workers", tags=["stats"], summary="Registered workers")
    async def workers(principal: Reader) -> list[WorkerOut]:
        """Workers and their last heartbeat."""
        return await routes.workers()

    @router.get("/throughput", tags=["stats"], summary="Jobs finished over time")
    async def job_throughput(
        principal: Reader,
        tenant: TenantFilter = None,
        minutes: Annotated[int, Query(ge=1, le=24 * 60)] = 15,
    ) -> Throughput:
        """Jobs completed and failed per time slice over the last ``minutes``."""
        return await routes.throughput(principal, tenant, minutes)

    @router.get("/healthz", tags=["health"], summary="Liveness")
    async def healthz() -> Health:
        """The server answers (no credentials needed)."""
        return Health(status="ok")

    @router.get(
        "/readyz",
        tags=["health"],
        summary="Readiness",
        response_model=Health,
        responses={503: {"model": Health}},
    )
    async def readyz() -> JSONResponse:
        """The store answers and, when one is expected, the worker runs (503 if not)."""
        return await routes.ready()

    install_schedule_routes(router, app)
    install_webhook_routes(router, app, routes._visible_job)
    install_workflow_routes(router, app)
    if metrics:
        Metrics(app, stale_after=app.settings.lease, worker=worker).install(router)
    if dashboard:
        from workhorse.web.dashboard import install_dashboard

        install_dashboard(router, guard, sessions)
    return router


async def _http_error(request: Request, exc: Exception) -> Response:
    response = response_for(exc)
    assert response is not None
    return response


def create_app(
    app: Workhorse,
    *,
    with_worker: bool = False,
    concurrency: int | None = None,
    queues: tuple[str, ...] | None = None,
    auth: Authenticator | None = None,
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    session_secret: str | bytes | None = None,
    trusted_origins: Iterable[str] | None = None,
    title: str = "workhorse",
) -> FastAPI:
    """A standalone FastAPI app serving the API, the dashboard and ``/metrics``
    (``workhorse serve``). ``with_worker`` also runs a worker in the server's process,
    started and drained by the app's lifespan; the other options are
    :func:`create_router`'s."""
    from workhorse import __version__

    lifespan: WorkerLifespan | None = None
    if with_worker:
        lifespan = WorkerLifespan(app, concurrency=concurrency, queues=queues)

    @contextlib.asynccontextmanager
    async def run(api: FastAPI) -> AsyncIterator[None]:
        if lifespan is not None:
            async with lifespan(api):
                yield
        else:
            async with store_lifespan(app)(api):
                yield

    api = FastAPI(title=title, version=__version__, lifespan=run)
    api.include_router(
        create_router(
            app,
            auth=auth,
            max_payload_bytes=max_payload_bytes,
            worker=lifespan,
            session_secret=session_secret,
            trusted_origins=trusted_origins,
        )
    )
    api.add_exception_handler(StarletteHTTPException, _http_error)
    api.add_exception_handler(RequestValidationError, _http_error)

    @api.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("dashboard")

    return api
