"""The app of the multi-process workflow tests, run by ``workhorse worker start
tests.acceptance.workflow_apps:app``.

Its store is ``$WORKHORSE_URL``. Tasks append one line per run to the file
``$WORKHORSE_TEST_EFFECTS``: ``<name> <start> <end> <pid>`` (wall-clock seconds), one
O_APPEND write, so lines of concurrent processes never mix.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from workhorse import Backoff, Retry, Workhorse

from .feature_apps import record_run

app = Workhorse()

FAIL_ONCE_ENV = "WORKHORSE_TEST_FAIL_ONCE"
"""A path: the parse stage fails while no file is there, creating it as it fails."""


@app.task(name="wf.node")
async def node(name: str, ms: float) -> str:
    """Work for ``ms`` milliseconds and record when."""
    start = time.time()
    await asyncio.sleep(ms / 1000)
    record_run(name, start, time.time())
    return name


@app.task(name="wf.fail")
async def fail(name: str) -> None:
    """Record the run, then fail (a parent whose dependents must not stay blocked)."""
    now = time.time()
    record_run(name, now, now)
    raise RuntimeError(f"{name} failed")


@app.task(name="wf.validate")
def validate(doc_id: int) -> dict[str, int]:
    """Stage one (sync, in a thread)."""
    now = time.time()
    record_run("validate", now, now)
    return {"doc": doc_id}


@app.task(name="wf.parse")
async def parse(doc: dict[str, int]) -> dict[str, int]:
    """Stage two: fails the first time (see ``FAIL_ONCE_ENV``)."""
    now = time.time()
    record_run("parse", now, now)
    marker = Path(os.environ[FAIL_ONCE_ENV])
    if not marker.exists():
        marker.touch()
        raise RuntimeError("parser crashed")
    return {**doc, "words": 42}


@app.task(name="wf.index")
async def index(doc: dict[str, int]) -> str:
    """Stage three."""
    now = time.time()
    record_run("index", now, now)
    return f"doc {doc['doc']}: {doc['words']} words"


ingest = app.pipeline(
    "wf.ingest",
    stages=[validate, parse, index],
    retry=Retry(max_attempts=3, backoff=Backoff(base=0.05, jitter=0.0)),
)
