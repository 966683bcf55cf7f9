"""Waiting for a condition in tests: a poll with a deadline, never a bare sleep."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

DEADLINE = 10.0
"""Seconds a condition may take, unless the caller says otherwise."""


async def eventually(
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool] = bool,
    *,
    timeout: float = DEADLINE,
    what: str = "condition",
    every: float = 0.05,
) -> T:
    """Call ``probe`` until ``accept`` holds for its value (by default: until the value is
    true) and return that value; fail after ``timeout`` seconds, saying ``what`` and the
    last value. The first polls come quickly, then every ``every`` seconds."""
    deadline = time.monotonic() + timeout
    delay = min(0.005, every)
    while True:
        value = await probe()
        if accept(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s; last value: {value!r}")
        await asyncio.sleep(delay)
        delay = min(delay * 2, every)


async def until(check: Callable[[], bool], *, what: str, timeout: float = DEADLINE) -> None:
    """:func:`eventually` for a condition that needs no awaiting (a counter, a flag)."""

    async def probe() -> bool:
        return check()

    await eventually(probe, timeout=timeout, what=what)


def wait_until(
    check: Callable[[], bool], *, timeout: float, what: str, every: float = 0.02
) -> None:
    """:func:`eventually` for threads that cannot await: poll ``check`` until it is true;
    fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)
