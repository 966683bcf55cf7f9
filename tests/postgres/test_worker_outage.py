"""A worker through a PostgreSQL outage (a TCP proxy takes the database away): every
loop of the worker fails for a while, and the worker says so once, with one WARNING,
and once more, at INFO, when the database is back. The job that ended meanwhile has its
outcome stored after the outage."""

from __future__ import annotations

import logging

import pytest

from worker._support import FAST, through_an_outage
from workhorse import Workhorse

from ._proxy import Proxy


async def test_an_outage_is_one_warning_and_one_info(
    proxy_url: str, proxy: Proxy, caplog: pytest.LogCaptureFixture
) -> None:
    app = Workhorse(proxy_url, settings=FAST, backend_options={"timeout": 0.5})
    with caplog.at_level(logging.INFO, logger="workhorse.worker"):
        health = await through_an_outage(app, begin=proxy.cut, end=proxy.start, failures=8)
    # The LISTEN connection tells of its own reconnection (logger workhorse.backends).
    worker_logs = [r for r in caplog.records if r.name == "workhorse.worker"]
    warnings = [r.getMessage() for r in worker_logs if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "store unavailable" in warnings[0]
    back = [r for r in worker_logs if "store available again" in r.getMessage()]
    assert len(back) == 1
    assert back[0].levelno == logging.INFO
    assert health.outages == 1
