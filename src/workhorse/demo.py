"""The demo app behind ``workhorse demo``: one task of each kind a real service has.

``workhorse demo`` runs it end to end on a fresh SQLite file; afterwards the app serves
that file like any other (``workhorse worker start workhorse.demo:app``).

- ``demo.fetch_page``: async and I/O-bound, reports progress as it goes;
- ``demo.resize_image``: sync and CPU-bound, runs in the worker's thread pool;
- ``demo.call_flaky_api``: fails twice, then succeeds (retries with backoff);
- ``demo.import_invoice``: always fails with an error that is not worth retrying;
- ``demo.build_report``: slow, checks for cancellation and stops when asked.

Each task has an explicit ``name`` so that renaming the function never strands the jobs
already stored under the old name.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import time
from typing import Any

from workhorse import Backoff, Cancelled, Retry, Workhorse, current_job

DEMO_DB = "workhorse-demo.db"
"""The file ``workhorse demo`` creates in the working directory (replaced each run)."""


class InvalidInvoiceError(ValueError):
    """Bad input: retrying cannot fix it, so the task gives up at once."""


async def fetch_page(url: str) -> dict[str, Any]:
    """Download a page (simulated): five chunks, progress after each."""
    job = current_job()
    size = 0
    for chunk in range(1, 6):
        await asyncio.sleep(random.uniform(0.02, 0.07))
        size += random.randint(2_000, 40_000)
        job.set_progress(chunk * 20, f"{size // 1000} kB")
    return {"url": url, "bytes": size}


def resize_image(name: str, width: int) -> dict[str, Any]:
    """Burn CPU for 15-35 ms (hashing releases the GIL, so threads really run in parallel)."""
    data = name.encode() * 20_000
    deadline = time.perf_counter() + random.uniform(0.015, 0.035)
    rounds = 0
    while time.perf_counter() < deadline:
        data = hashlib.sha256(data).digest() * 8_000
        rounds += 1
    return {"image": name, "width": width, "rounds": rounds}


async def call_flaky_api(order: int) -> str:
    """An upstream that times out on the first two attempts of every call."""
    job = current_job()
    await asyncio.sleep(random.uniform(0.01, 0.05))
    if job.attempt < 3:
        raise ConnectionError(f"payment API timed out (attempt {job.attempt})")
    return f"order {order} charged on attempt {job.attempt}"


def import_invoice(number: int) -> None:
    """Always rejects its input: a job that must fail once, clearly, and stay failed."""
    raise InvalidInvoiceError(f"invoice {number}: field 'amount' is not a number: 'twelve'")


async def build_report(name: str, seconds: float = 30.0) -> str:
    """A long job that stops cooperatively when cancelled."""
    job = current_job()
    steps = 100
    for step in range(steps):
        if job.cancelled:
            raise Cancelled(f"report {name!r} cancelled at {step}%")
        job.set_progress(step, f"section {step // 10 + 1} of 10")
        await asyncio.sleep(seconds / steps)
    return f"report {name!r} done"


def register_tasks(app: Workhorse) -> Workhorse:
    """Register the demo's tasks on ``app`` (returned, for chaining)."""
    app.task(name="demo.fetch_page", queue="io")(fetch_page)
    app.task(name="demo.resize_image", queue="cpu")(resize_image)
    app.task(
        name="demo.call_flaky_api",
        retry=Retry(max_attempts=4, backoff=Backoff(base=0.3, factor=2, max=2)),
    )(call_flaky_api)
    app.task(
        name="demo.import_invoice",
        retry=Retry(max_attempts=5, give_up_on=(InvalidInvoiceError,)),
    )(import_invoice)
    app.task(name="demo.build_report", priority=5)(build_report)
    return app


app = register_tasks(Workhorse(os.environ.get("WORKHORSE_URL") or f"sqlite:///{DEMO_DB}"))
"""The demo app on ``$WORKHORSE_URL``, else ``sqlite:///workhorse-demo.db``."""
