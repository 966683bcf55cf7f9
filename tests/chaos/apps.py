"""The app that chaos worker processes and the chaos API server run
(``workhorse worker start tests.chaos.apps:app``); its store is ``$WORKHORSE_URL``.

Every task records its effect in the ledger (``ledger.py``) and returns
``[attempt, pid]``, so a test can tell which attempt's outcome the store kept."""

from __future__ import annotations

import asyncio
import os
import signal
import time

from workhorse import Retry, Workhorse, current_job

from .ledger import record_effect

app = Workhorse()


def _effect() -> list[int]:
    job = current_job()
    record_effect(job.job_id, job.attempt)
    return [job.attempt, os.getpid()]


@app.task(name="chaos.effect", retry=Retry(max_attempts=10))
async def effect(ms: float) -> list[int]:
    """Work ``ms`` milliseconds on the event loop, then record the effect."""
    await asyncio.sleep(ms / 1000)
    return _effect()


@app.task(name="chaos.blocking", retry=Retry(max_attempts=10))
def blocking(seconds: float) -> list[int]:
    """Block a thread for ``seconds`` (a thread cannot be interrupted: a stopped worker
    finishes it when resumed), then record the effect."""
    time.sleep(seconds)
    return _effect()


@app.task(name="chaos.poison", retry=Retry(max_attempts=3))
async def poison() -> None:
    """Record the attempt, then SIGKILL the worker process running it, every time."""
    _effect()
    os.kill(os.getpid(), signal.SIGKILL)
