"""Apps for the multi-process tests of periodic jobs, limits and webhooks, run by
``workhorse worker start tests.acceptance.feature_apps:<app>``.

Their store is ``$WORKHORSE_URL``. Limited tasks append one line per run to the file
``$WORKHORSE_TEST_EFFECTS``: ``<name> <start> <end> <pid>`` (wall-clock seconds), one
O_APPEND write, so lines of concurrent processes never mix.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import timedelta

from workhorse import Backoff, Retry, Workhorse
from workhorse.limits import Limit, Rate

from .apps import EFFECTS_ENV

schedules = Workhorse()


@schedules.periodic(every=timedelta(seconds=1), name="every-second")
async def every_second() -> None:
    """Nothing to do: the test counts the jobs."""


limits = Workhorse()


def record_run(name: str, start: float, end: float) -> None:
    """Append this run's line to the effects file."""
    line = f"{name} {start:.6f} {end:.6f} {os.getpid()}\n".encode()
    fd = os.open(os.environ[EFFECTS_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


@limits.task(name="limits.hold", limit=Limit("per-key", key=lambda key, ms: key, concurrency=2))
async def hold(key: str, ms: float) -> None:
    """Run for ``ms`` milliseconds under the per-key limit."""
    start = time.time()
    await asyncio.sleep(ms / 1000)
    record_run(key, start, time.time())


@limits.task(name="limits.rated", rate_limit=Rate(5, per=timedelta(seconds=2)))
async def rated() -> None:
    """Start at most five times per two seconds, across every worker."""
    now = time.time()
    record_run("rated", now, now)


webhooks = Workhorse()
webhooks.webhooks.configure(
    retry=Retry(max_attempts=5, backoff=Backoff(base=0.1, factor=1.0, max=0.1, jitter=0.0)),
    timeout=5.0,
)
"""Deliveries retried every 0.1 s (the default backoff waits seconds)."""


@webhooks.task(name="hooks.add")
def add(a: int, b: int) -> int:
    """Succeed; the job's webhook is told."""
    return a + b
