"""Module-level functions for ``executor="process"`` tasks: a spawned child imports them
by module and name."""

from __future__ import annotations

import os
import time


def square(n: int) -> dict[str, int]:
    """``n`` squared, and the pid of the process that computed it."""
    return {"square": n * n, "pid": os.getpid()}


def nap(seconds: float) -> str:
    """Sleep, then say so (used to run past a timeout)."""
    time.sleep(seconds)
    return "woke up"


def explode(message: str) -> None:
    """Raise in the child."""
    raise ValueError(message)
