"""The bodies of the three benchmark tasks, for systems to register under their own API."""

from __future__ import annotations

import asyncio
import time

from harness.effects import record, record_latency

NAP_SECONDS = 0.05


def noop() -> None:
    """A job that does nothing but prove it ran."""
    record()


def nap() -> None:
    """An I/O-like job for sync-only systems: blocks its thread for 50 ms."""
    time.sleep(NAP_SECONDS)
    record()


def stamp(sent: float) -> None:
    """Record how long after ``sent`` this job started."""
    record_latency(sent)


async def anoop() -> None:
    """Async twin of :func:`noop`."""
    record()


async def anap() -> None:
    """An I/O-like job: awaits 50 ms."""
    await asyncio.sleep(NAP_SECONDS)
    record()


async def astamp(sent: float) -> None:
    """Async twin of :func:`stamp`."""
    record_latency(sent)
