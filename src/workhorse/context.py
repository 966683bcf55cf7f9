"""The running job's context, available inside a task through :func:`current_job`."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from types import TracebackType
from typing import Any, TypeAlias

from workhorse.errors import Cancelled, WorkhorseError
from workhorse.serialization import storable_text

_current: contextvars.ContextVar[JobContext] = contextvars.ContextVar("workhorse_job")

logger = logging.getLogger("workhorse.job")

_ExcInfo: TypeAlias = (
    bool
    | BaseException
    | tuple[type[BaseException], BaseException, TracebackType | None]
    | tuple[None, None, None]
    | None
)


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
        """The ``workhorse.job`` logger for this attempt. Its messages start with the job
        they come from (``job 12 (billing.charge, attempt 1/3): ...``), whatever the
        formatter, and its records carry ``job_id``, ``task`` and ``attempt`` attributes
        for structured logging."""
        if self._log is None:
            self._log = _JobLog(self)
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


class _JobLog(logging.LoggerAdapter[logging.Logger]):
    """Names the job in the message itself and in the record's attributes."""

    def __init__(self, ctx: JobContext) -> None:
        super().__init__(
            logger, {"job_id": ctx.job_id, "task": ctx.task_name, "attempt": ctx.attempt}
        )
        self._prefix = (
            f"job {ctx.job_id} ({ctx.task_name}, attempt {ctx.attempt}/{ctx.max_attempts}): "
        )

    def log(
        self,
        level: int,
        msg: object,
        *args: object,
        exc_info: _ExcInfo = None,
        stack_info: bool = False,
        stacklevel: int = 1,
        extra: Mapping[str, object] | None = None,
        **kwargs: object,
    ) -> None:
        """Log ``msg`` (%-formatted with ``args``) after the job's prefix."""
        # With arguments the whole message is %-formatted: a "%" in a task name stays one.
        prefix = self._prefix.replace("%", "%%") if args else self._prefix
        super().log(
            level,
            f"{prefix}{msg}",
            *args,
            exc_info=exc_info,
            stack_info=stack_info,
            stacklevel=stacklevel + 1,  # the caller of this method, not this module
            extra=extra,
            **kwargs,
        )

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        """Add the job's attributes to the caller's ``extra`` (rather than replace it)."""
        kwargs["extra"] = {**(self.extra or {}), **(kwargs.get("extra") or {})}
        return msg, kwargs


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
