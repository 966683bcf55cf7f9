"""A FastAPI service with durable background jobs and no second system to run.

A document service in the spirit of the write-ups behind workhorse: an endpoint accepts
a document and answers at once with a job id; a worker running inside the same process
(started and drained by the app's lifespan) processes it; clients poll for progress.
Jobs live in SQLite, so a crash loses nothing: the job runs again after a restart.

Run it (``run_server`` is uvicorn with a graceful stop that exits 0)::

    python examples/fastapi_app.py --port 8000
    curl -X POST localhost:8000/documents/report-1/process -H 'X-Tenant: acme'
    curl localhost:8000/documents/jobs/1 -H 'X-Tenant: acme'

The workhorse API and dashboard are mounted under ``/workhorse`` (they need an API key:
``workhorse keys create --tenant acme --app examples.fastapi_app:jobs``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request

from workhorse import JobNotFoundError, Workhorse, current_job
from workhorse.web import Enqueuer, create_router, enqueuer, run_server, worker_lifespan

jobs = Workhorse(os.environ.get("WORKHORSE_URL", "sqlite:///documents-jobs.db"))


@jobs.task(name="documents.process", queue="documents", retry=3)
async def process_document(
    document_id: str, pages: int = 5, page_seconds: float = 0.1
) -> dict[str, Any]:
    """Process a document page by page, reporting progress as it goes."""
    ctx = current_job()
    for page in range(1, pages + 1):
        await asyncio.sleep(page_seconds)  # stands for real work: parsing, embedding...
        ctx.set_progress(100 * page / pages, f"page {page} of {pages}")
    return {"document_id": document_id, "pages": pages}


def tenant_of(request: Request) -> str:
    """The caller's tenant. A real service takes it from its own authentication."""
    return request.headers.get("x-tenant", "public")


lifespan = worker_lifespan(jobs, concurrency=4)
api = FastAPI(title="documents", lifespan=lifespan)
Jobs = Annotated[Enqueuer, Depends(enqueuer(jobs, tenant=tenant_of))]
Tenant = Annotated[str, Depends(tenant_of)]


@api.post("/documents/{document_id}/process", status_code=202)
async def process(
    document_id: str, background: Jobs, pages: int = 5, page_seconds: float = 0.1
) -> dict[str, Any]:
    """Accept a document for processing; answer at once with the job to poll."""
    job = await background.enqueue(
        process_document, document_id, pages=pages, page_seconds=page_seconds
    )
    return {"job_id": job.id, "status_url": f"/documents/jobs/{job.id}"}


@api.get("/documents/jobs/{job_id}")
async def job_status(job_id: int, tenant: Tenant) -> dict[str, Any]:
    """A job's status, progress and result, for the caller's tenant only."""
    try:
        record = await jobs.get_job(job_id, tenant=tenant)
    except JobNotFoundError:
        raise HTTPException(404, f"job {job_id} not found") from None
    return {
        "id": record.id,
        "state": record.state,
        "progress": record.progress,
        "message": record.progress_message,
        "attempt": record.attempt,
        "result": record.result,
        "error": None if record.error is None else record.error.message,
    }


api.include_router(create_router(jobs, worker=lifespan), prefix="/workhorse")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    options = parser.parse_args()
    run_server(api, host=options.host, port=options.port)
