"""Task names workhorse keeps for itself: ``workhorse.*``, such as the webhook delivery
task that the stores enqueue when a job with a webhook ends.

Jobs of these tasks are made by the stores and the worker, never asked for from outside:
the HTTP API and ``workhorse enqueue`` answer a reserved name exactly as an unknown one
(and do not list reserved names among the known tasks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workhorse.errors import UnknownTaskError

if TYPE_CHECKING:
    from workhorse.app import Workhorse
    from workhorse.tasks import Task

RESERVED_PREFIX = "workhorse."
"""Task names starting with this belong to workhorse itself."""


def is_reserved(name: str) -> bool:
    """True if ``name`` is a task name workhorse keeps for itself."""
    return name.startswith(RESERVED_PREFIX)


def enqueueable_task(app: Workhorse, name: str) -> Task[Any, Any]:
    """The task an outside caller (the API, the CLI) may enqueue as ``name``;
    ``UnknownTaskError`` for an unregistered or a reserved name alike."""
    task = app.tasks.get(name)
    if task is None or is_reserved(name):
        known = ", ".join(sorted(n for n in app.tasks if not is_reserved(n))) or "none"
        raise UnknownTaskError(f"no task named {name!r} (registered: {known})")
    return task
