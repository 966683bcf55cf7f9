"""The FastAPI example served by a real uvicorn process: a job posted to it completes; a
SIGKILL mid-job loses nothing (the restarted server finishes it); SIGTERM drains."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from _polling import wait_until
from workhorse.backends import open_backend
from workhorse.backends.base import JobFilter, NewJob, WorkerRecord
from workhorse.jobs import JobRecord, JobState

from ._server import ServerProcess

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TENANT = {"X-Tenant": "acme"}


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'documents.db'}"


@pytest.fixture
def servers(tmp_path: Path, url: str) -> Any:
    """Start example servers on one store; every one still running is killed at the end."""
    started: list[ServerProcess] = []
    env = {
        "WORKHORSE_URL": url,
        # Short leases so that a killed server's job comes back within seconds.
        "WORKHORSE_LEASE": "2",
        "WORKHORSE_HEARTBEAT_INTERVAL": "0.5",
        "WORKHORSE_RECLAIM_INTERVAL": "0.2",
        "WORKHORSE_POLL_INTERVAL": "0.2",
        "WORKHORSE_SHUTDOWN_GRACE": "3",
    }

    def start() -> ServerProcess:
        server = ServerProcess(
            [sys.executable, str(EXAMPLES / "fastapi_app.py")],
            cwd=tmp_path,
            env=env,
            log=tmp_path / f"server-{len(started)}.log",
        )
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.kill()


async def _read(url: str, job_id: int | None) -> tuple[list[JobRecord], list[WorkerRecord]]:
    store = open_backend(url)
    await store.connect()
    try:
        if job_id is None:
            jobs = await store.job_list(filter=JobFilter(), limit=100)
        else:
            record = await store.job_get(job_id=job_id)
            jobs = [] if record is None else [record]
        return jobs, await store.worker_list()
    finally:
        await store.close()


def stored(url: str) -> list[JobRecord]:
    """Every job in the store, read by a separate connection."""
    return asyncio.run(_read(url, None))[0]


def stored_job(url: str, job_id: int) -> JobRecord:
    (record,) = asyncio.run(_read(url, job_id))[0]
    return record


def insert(url: str, job: NewJob) -> int:
    async def run() -> int:
        store = open_backend(url)
        await store.connect()
        try:
            (row,) = await store.job_insert_many([job])
            return row.id
        finally:
            await store.close()

    return asyncio.run(run())


def post(server: ServerProcess, document: str, **params: Any) -> int:
    response = httpx.post(
        f"{server.url}/documents/{document}/process", params=params, headers=TENANT, timeout=10
    )
    assert response.status_code == 202, response.text
    job_id: int = response.json()["job_id"]
    return job_id


def status(server: ServerProcess, job_id: int) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/documents/jobs/{job_id}", headers=TENANT, timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_state(server: ServerProcess, job_id: int, state: str, timeout: float) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def reached() -> bool:
        seen.update(status(server, job_id))
        return bool(seen["state"] == state)

    wait_until(reached, timeout=timeout, what=f"job {job_id} to be {state} (last: {seen})")
    return seen


def stop(server: ServerProcess) -> None:
    server.signal(signal.SIGTERM)
    assert server.wait(timeout=30) == 0, server.log()


def test_a_posted_job_completes_and_reports_progress(servers: Any) -> None:
    server = servers()
    job_id = post(server, "report-1", pages=4, page_seconds=0.05)
    done = wait_state(server, job_id, "completed", timeout=30)
    assert done["result"] == {"document_id": "report-1", "pages": 4}
    # Progress is written in batches: the last report may land after the outcome.
    assert 0 < done["progress"] <= 100
    assert done["message"].startswith("page ")
    other = httpx.get(f"{server.url}/documents/jobs/{job_id}", headers={"X-Tenant": "globex"})
    assert other.status_code == 404
    ready = httpx.get(f"{server.url}/workhorse/readyz")
    assert ready.json() == {"status": "ok", "checks": {"store": "ok", "worker": "ok"}}
    stop(server)


def test_sigkill_mid_job_loses_nothing(servers: Any, url: str) -> None:
    first = servers()
    job_id = post(first, "big-report", pages=30, page_seconds=0.1)
    wait_until(
        lambda: status(first, job_id)["progress"] > 0, timeout=30, what="the job to make progress"
    )
    first.signal(signal.SIGKILL)
    assert first.wait(timeout=10) == -signal.SIGKILL
    orphan = stored_job(url, job_id)
    assert orphan.state is JobState.RUNNING  # its worker died holding the lease

    second = servers()
    done = wait_state(second, job_id, "completed", timeout=60)
    assert done["result"] == {"document_id": "big-report", "pages": 30}
    assert done["attempt"] == 2
    stop(second)


def test_sigterm_drains_and_leaves_nothing_running(servers: Any, url: str) -> None:
    server = servers()
    short = post(server, "short", pages=10, page_seconds=0.1)
    long = post(server, "long", pages=600, page_seconds=0.1)
    for job_id in (short, long):
        wait_until(
            lambda job_id=job_id: status(server, job_id)["state"] == "running",  # type: ignore[misc]
            timeout=30,
            what=f"job {job_id} to run",
        )
    # Due while the server drains: a stopping worker must not take it.
    late = insert(
        url,
        NewJob(
            task="documents.process",
            args='["late"]',
            queue="documents",
            tenant="acme",
            delay=1.0,
        ),
    )
    stop(server)
    jobs = {job.id: job for job in stored(url)}
    assert jobs[short].state is JobState.COMPLETED  # finished within the grace
    assert jobs[long].state is JobState.QUEUED  # released at the end of the grace
    assert jobs[late].state in (JobState.SCHEDULED, JobState.QUEUED)
    assert jobs[late].attempt == 0
    assert not [job for job in jobs.values() if job.state is JobState.RUNNING]
    assert asyncio.run(_read(url, None))[1] == []  # the worker deregistered
