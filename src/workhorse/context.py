"""The running job's context, available inside a task through :func:`current_job`."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Callable, Iterator
from typing import Any

from workhorse.errors import Cancelled, WorkhorseError
from workhorse.serialization import storable_text

_current: contextvars.ContextVar[JobContext] = contextvars.ContextVar("workhorse_job")

logger = logging.getLogger("workhorse.job")


class JobContext:
    """What a task can know and do about the job it is running.

    Safe to use from async tasks, from sync tasks running in a worker thread, and from
    threads those tasks start (pass the context along).
    """

    __slots__ = (
        "_cancel_event",
        "_cancelled",
        "_log",
        "_loop",
        "_on_progress",
        "attempt",
        "job_id",
        "max_attempts",
        "message",
        "progress",
        "queue",
        "task_name",
        "tenant",
    )

    def __init__(
        self,
        *,
        job_id: int,
        task_name: str,
        attempt: int,
        max_attempts: int,
        queue: str,
        tenant: str | None,
        loop: asyncio.AbstractEventLoop,
        on_progress: Callable[[JobContext], None] | None = None,
    ) -> None:
        self.job_id = job_id
        self.task_name = task_name
        self.attempt = attempt
        """This attempt's number: 1 on the first run."""
        self.max_attempts = max_attempts
        self.queue = queue
        self.tenant = tenant
        self.progress: float = 0.0
        self.message: str | None = None
        self._loop = loop
        self._on_progress = on_progress
        # Made on first use: a worker builds one context per job, most never need them.
        self._log: logging.LoggerAdapter[logging.Logger] | None = None
        self._cancel_event: asyncio.Event | None = None
        self._cancelled = False  # set on the loop, read from any thread

    @property
    def log(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger whose records carry ``job_id``, ``task`` and ``attempt``."""
        if self._log is None:
            extra = {"job_id": self.job_id, "task": self.task_name, "attempt": self.attempt}
            self._log = logging.LoggerAdapter(logger, extra)
        return self._log

    @property
    def is_last_attempt(self) -> bool:
        """True if a failure now ends the job as failed."""
        return self.attempt >= self.max_attempts

    def set_progress(self, percent: float, message: str | None = None) -> None:
        """Report progress (0-100) with an optional message. Cheap: writes are coalesced
        and sent to the store in the background."""
        if not 0 <= percent <= 100:
            raise ValueError(f"progress must be between 0 and 100, got {percent}")
        self.progress = float(percent)
        self.message = None if message is None else storable_text(message)
        if self._on_progress is not None:
            self._on_progress(self)

    @property
    def cancelled(self) -> bool:
        """True once someone asked to cancel this job. A cooperative task checks it and
        returns (or calls :meth:`raise_if_cancelled`); after the cancel grace the worker
        stops it anyway."""
        return self._cancelled

    def raise_if_cancelled(self) -> None:
        """Raise :class:`~workhorse.Cancelled` if cancellation was requested."""
        if self._cancelled:
            raise Cancelled(f"job {self.job_id} was cancelled")

    async def wait_cancelled(self) -> None:
        """Wait until cancellation is requested (for ``asyncio.wait`` races)."""
        if self._cancelled:
            return
        if self._cancel_event is None:
            self._cancel_event = asyncio.Event()
        await self._cancel_event.wait()

    def _request_cancel(self) -> None:
        """Worker side: flag the job as cancelled (call on the worker's loop)."""
        self._cancelled = True
        if self._cancel_event is not None:
            self._cancel_event.set()

    def __repr__(self) -> str:
        return f"<JobContext job={self.job_id} task={self.task_name} attempt={self.attempt}>"


def current_job() -> JobContext:
    """The context of the job running in this task or thread.

    Raises :class:`~workhorse.WorkhorseError` outside a job.
    """
    try:
        return _current.get()
    except LookupError:
        raise WorkhorseError("current_job() called outside a running job") from None


@contextlib.contextmanager
def bound(ctx: JobContext) -> Iterator[JobContext]:
    """Make ``ctx`` the current job inside the block (wrap the ``await`` of an async task)."""
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


def run_with_context(ctx: JobContext, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn`` with ``ctx`` as the current job (used for sync tasks in threads)."""
    token = _current.set(ctx)
    try:
        return fn(*args, **kwargs)
    finally:
        _current.reset(token)
