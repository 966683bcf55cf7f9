"""The FastAPI integration in a user's own app, served by uvicorn: the worker lifespan,
the enqueue dependency, and the router mounted under a prefix."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from starlette.requests import Request

from worker._support import eventually
from workhorse import Workhorse
from workhorse.jobs import JobState
from workhorse.web import (
    Enqueuer,
    WorkerLifespan,
    create_api_key,
    create_router,
    enqueuer,
    get_workhorse,
    worker_lifespan,
)

from ._server import ServerThread
from ._tasks import make_app


def tenant_header(request: Request) -> str | None:
    return request.headers.get("x-tenant")


def via_api(request: Request) -> dict[str, str]:
    return {"via": "api"}


# Module level: with postponed annotations, FastAPI resolves them from module globals.
Jobs = Annotated[Enqueuer, Depends(enqueuer(tenant=tenant_header, labels=via_api))]


@dataclass
class UserApp:
    jobs: Workhorse
    lifespan: WorkerLifespan
    server: ServerThread
    client: httpx.AsyncClient


def build(url: str, **settings: Any) -> tuple[Workhorse, WorkerLifespan, FastAPI]:
    """A user's service: its own endpoint enqueues through the dependency."""
    jobs = make_app(url)
    lifespan = worker_lifespan(jobs, concurrency=2, **settings)
    api = FastAPI(lifespan=lifespan)

    @api.post("/work")
    async def work(background: Jobs, gate: str) -> dict[str, int]:
        job = await background.enqueue(jobs.get_task("gated"), gate)
        return {"id": job.id}

    @api.post("/work-by-name")
    async def work_by_name(background: Jobs, value: int) -> dict[str, int]:
        job = await background.enqueue_name("echo", args=[value], queue="named")
        return {"id": job.id}

    @api.get("/store")
    async def store(app: Annotated[Workhorse, Depends(get_workhorse)]) -> dict[str, str]:
        return {"url": app.url}

    api.include_router(create_router(jobs, worker=lifespan), prefix="/wh")
    return jobs, lifespan, api


@pytest.fixture
async def user_app(sqlite_url: str) -> AsyncIterator[UserApp]:
    jobs, lifespan, api = build(sqlite_url, shutdown_grace=0.3)
    server = ServerThread(api).start()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        try:
            yield UserApp(jobs, lifespan, server, client)
        finally:
            if server.server.started and not server.server.should_exit:
                server.stop()
            await jobs.aclose()


async def test_the_lifespan_runs_a_worker_and_the_dependency_enqueues(
    user_app: UserApp, tmp_path: Path
) -> None:
    assert user_app.lifespan.alive
    gate = tmp_path / "gate"
    response = await user_app.client.post(
        "/work", params={"gate": str(gate)}, headers={"X-Tenant": "acme"}
    )
    job_id = response.json()["id"]
    record = await user_app.jobs.get_job(job_id)
    assert record.tenant == "acme"
    assert record.labels == {"via": "api"}
    gate.touch()
    assert await user_app.jobs.job(job_id).result(timeout=30) == "opened"
    named = await user_app.client.post("/work-by-name", params={"value": 5})
    named_job = await user_app.jobs.get_job(named.json()["id"])
    assert (named_job.queue, named_job.tenant, named_job.labels) == ("named", None, {"via": "api"})
    assert await user_app.jobs.job(named_job.id).result(timeout=30) == 5
    assert (await user_app.client.get("/store")).json() == {"url": user_app.jobs.url}
    ready = await user_app.client.get("/wh/readyz")
    assert ready.json()["checks"] == {"store": "ok", "worker": "ok"}
    user_app.server.stop()
    assert not user_app.lifespan.alive
    assert user_app.lifespan.worker is None
    assert await user_app.jobs.workers() == []


async def test_shutdown_releases_what_the_grace_did_not_finish(
    user_app: UserApp, tmp_path: Path
) -> None:
    response = await user_app.client.post("/work", params={"gate": str(tmp_path / "never")})
    job_id = response.json()["id"]

    async def state() -> JobState:
        # Fetched each time: the lifespan closes the app's store when the server stops.
        record = await (await user_app.jobs.backend()).job_get(job_id=job_id)
        assert record is not None
        return record.state

    await eventually(state, lambda state: state is JobState.RUNNING, timeout=30, what="a start")
    started = time.monotonic()
    user_app.server.stop()
    assert time.monotonic() - started < 10
    assert await state() is JobState.QUEUED
    assert await user_app.jobs.list_jobs(states=[JobState.RUNNING]) == []


async def test_the_mounted_router_answers_errors_in_its_own_shape(user_app: UserApp) -> None:
    token = (await create_api_key(user_app.jobs, tenant="acme")).token
    client = user_app.client
    unauthenticated = await client.get("/wh/jobs")
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["error"]["type"] == "unauthorized"
    auth = {"Authorization": f"Bearer {token}"}
    malformed = await client.post(
        "/wh/jobs", content=b"{", headers={**auth, "Content-Type": "application/json"}
    )
    assert malformed.status_code == 422
    assert malformed.json()["error"]["type"] == "validation_error"
    bad_id = await client.get("/wh/jobs/abc", headers=auth)
    assert bad_id.status_code == 422
    assert bad_id.json()["error"]["type"] == "validation_error"
    too_big = await client.post(
        "/wh/jobs", json={"task": "echo", "args": ["x" * 300_000]}, headers=auth
    )
    assert too_big.status_code == 413
    assert too_big.json()["error"]["type"] == "request_entity_too_large"
    made = await client.post("/wh/jobs", json={"task": "echo", "args": [1]}, headers=auth)
    assert made.status_code == 201
    dashboard = await client.get("/wh/dashboard")
    assert 'data-base="/wh"' in dashboard.text


def test_get_workhorse_explains_a_missing_lifespan() -> None:
    request = Request({"type": "http", "app": FastAPI(), "headers": []})
    with pytest.raises(RuntimeError, match="worker_lifespan"):
        get_workhorse(request)


def test_worker_lifespan_passes_settings_to_the_worker(tmp_path: Path) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'jobs.db'}")
    lifespan = worker_lifespan(app, concurrency=3, queues=None)
    assert lifespan.settings == {"concurrency": 3}
    assert not lifespan.alive
