"""The app the web tests serve: a few tasks whose pace the tests control through files
(a gate file releases a blocked job; a marker file makes a failing task succeed), and
one that fails its first attempt and completes the next."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from workhorse import Backoff, Retry, Workhorse, current_job

GATE_POLL = 0.02


def make_app(url: str) -> Workhorse:
    """A fresh app on ``url`` with the test tasks registered."""
    app = Workhorse(url)

    @app.task(name="echo")
    async def echo(value: Any = None) -> Any:
        return value

    @app.task(name="add")
    def add(a: int, b: int) -> int:
        return a + b

    @app.task(name="gated", retry=1)
    async def gated(gate: str) -> str:
        """Reports progress, then waits until the file ``gate`` exists (or a cancel)."""
        ctx = current_job()
        ctx.set_progress(50, "waiting for the gate")
        while not Path(gate).exists():
            ctx.raise_if_cancelled()
            await asyncio.sleep(GATE_POLL)
        return "opened"

    @app.task(name="fail_unless", retry=1)
    def fail_unless(marker: str) -> str:
        """Fails (no retries) unless the file ``marker`` exists."""
        if not Path(marker).exists():
            raise RuntimeError(f"marker {Path(marker).name} is missing")
        return "ok"

    @app.task(name="fail_once", retry=Retry(max_attempts=2, backoff=Backoff(base=0.05, jitter=0)))
    async def fail_once() -> str:
        """Fails its first attempt (counted as retried), completes the second."""
        if current_job().attempt == 1:
            raise RuntimeError("first attempts fail")
        return "second time lucky"

    return app
