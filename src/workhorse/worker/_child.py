"""What a process-pool child runs: the task's function, found by module and qualified
name (a "spawn" child gets names, not functions, across the process boundary)."""

from __future__ import annotations

import importlib
from typing import Any

from workhorse.tasks import Task


def resolve(module: str, qualname: str) -> Any:
    """The function at ``module``.``qualname``; a registered task (``@app.task`` put the
    :class:`Task` in the function's place) gives its function."""
    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target.fn if isinstance(target, Task) else target


def call_by_name(module: str, qualname: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """Import the function and call it. There is no job context in a child process."""
    return resolve(module, qualname)(*args, **kwargs)
