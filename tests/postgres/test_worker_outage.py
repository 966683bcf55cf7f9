"""A worker through a PostgreSQL outage (a TCP proxy takes the database away): every
loop of the worker fails for a while, and the worker says so once, with one WARNING,
and once more, at INFO, when the database is back. The job that ended meanwhile has its
outcome stored after the outage."""

from __future__ import annotations

import asyncio
import logging

import pytest

from worker._support import FAST, eventually, job_in_state
from workhorse import JobState, Workhorse
from workhorse.worker.store_health import StoreHealth

from ._proxy import Proxy


async def _failures(health: StoreHealth) -> int:
    return health.failures


async def _down(health: StoreHealth) -> bool:
    return health.down


async def test_an_outage_is_one_warning_and_one_info(
    proxy_url: str, proxy: Proxy, caplog: pytest.LogCaptureFixture
) -> None:
    app = Workhorse(proxy_url, settings=FAST, backend_options={"timeout": 0.5})
    gate = asyncio.Event()

    @app.task
    async def waits() -> str:
        await gate.wait()
        return "done"

    try:
        # A long lease: the outage must not stop the running job.
        async with app.worker(lease=60) as worker:
            health = worker.health
            assert health is not None
            job = await waits.enqueue()
            await job_in_state(app, job.id, JobState.RUNNING)
            with caplog.at_level(logging.INFO, logger="workhorse.worker"):
                await proxy.cut()
                gate.set()  # the job ends: its outcome waits for the database
                await eventually(
                    lambda: _failures(health),
                    lambda failures: health.down and failures >= 8,
                    what="several failed calls",
                )
                await proxy.start()
                assert await job.result(timeout=20) == "done"
                await eventually(lambda: _down(health), lambda down: not down)
    finally:
        await app.aclose()
    # The LISTEN connection tells of its own reconnection (logger workhorse.backends).
    worker_logs = [r for r in caplog.records if r.name == "workhorse.worker"]
    warnings = [r.getMessage() for r in worker_logs if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "store unavailable" in warnings[0]
    back = [r for r in worker_logs if "store available again" in r.getMessage()]
    assert len(back) == 1
    assert back[0].levelno == logging.INFO
    assert health.outages == 1
