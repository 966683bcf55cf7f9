"""The app of the metrics test, run by ``workhorse worker start`` and ``workhorse serve``
(``tests.acceptance.metrics_app:app``, store ``$WORKHORSE_URL``) and built again by the
test process to enqueue: jobs that complete, jobs that fail once and then complete, jobs
that fail for good, and jobs whose first attempt never ends (for a worker to die in)."""

from __future__ import annotations

import asyncio

from workhorse import Backoff, Retry, Workhorse, current_job

QUICK_RETRY = Retry(max_attempts=2, backoff=Backoff(base=0.05, jitter=0))


def make_app(url: str | None = None) -> Workhorse:
    """A fresh app on ``url`` (``$WORKHORSE_URL`` when None) with the three tasks."""
    app = Workhorse(url)

    @app.task(name="metrics.ok")
    async def ok(n: int) -> int:
        return n

    @app.task(name="metrics.flaky", retry=QUICK_RETRY)
    async def flaky() -> str:
        """Fails on its first attempt, completes on the second."""
        if current_job().attempt == 1:
            raise RuntimeError("first attempts fail")
        return "second time lucky"

    @app.task(name="metrics.broken", queue="mail", retry=QUICK_RETRY)
    def broken() -> None:
        """Fails every attempt (a sync task, run in a thread)."""
        raise RuntimeError("always broken")

    @app.task(name="metrics.stuck", queue="stuck")
    async def stuck() -> str:
        """Hangs on its first attempt (until its worker is killed), completes after."""
        if current_job().attempt == 1:
            await asyncio.Event().wait()
        return "rescued"

    return app


app = make_app()
