"""Every error workhorse raises derives from :class:`WorkhorseError`."""

from __future__ import annotations


class WorkhorseError(Exception):
    """Base class of every workhorse error."""


class ConfigurationError(WorkhorseError):
    """A URL, option or environment variable that workhorse cannot use."""


class MissingDependencyError(WorkhorseError, ImportError):
    """An optional piece was used without its extra installed."""

    def __init__(self, feature: str, extra: str) -> None:
        super().__init__(
            f"{feature} needs an optional dependency: pip install 'workhorse[{extra}]'"
        )
        self.extra = extra


class SerializationError(WorkhorseError, TypeError):
    """A value (task arguments or a result) that is not JSON."""


class UnknownTaskError(WorkhorseError, LookupError):
    """No task is registered under that name."""


class JobNotFoundError(WorkhorseError, LookupError):
    """No job with that id (for this tenant)."""


class JobStateError(WorkhorseError):
    """The job is not in a state that allows this operation."""


class BackendUnavailableError(WorkhorseError):
    """The store cannot be reached; nothing was written."""


class JobFailedError(WorkhorseError):
    """Raised by ``job.result()`` when the job ended failed or cancelled."""

    def __init__(self, job_id: int, state: str, error_type: str | None, message: str | None):
        detail = f": {error_type}: {message}" if error_type else ""
        super().__init__(f"job {job_id} ended {state}{detail}")
        self.job_id = job_id
        self.state = state
        self.error_type = error_type
        self.error_message = message


class JobCancelledError(JobFailedError):
    """Raised by ``job.result()`` for a cancelled job."""


class ResultTimeoutError(WorkhorseError, TimeoutError):
    """``job.result(timeout=...)`` ran out of time; the job goes on."""


class JobTimeoutError(WorkhorseError, TimeoutError):
    """An attempt ran past its task's timeout."""


class CorruptJobError(WorkhorseError):
    """A stored job with a column that cannot be decoded (arguments that are not JSON, a
    priority that is not a number, ...). A worker fails such a job without retry;
    reading it (``get_job``) raises this error, naming the job and the column."""


class UnstorableOutcomeError(WorkhorseError):
    """Recorded on a job whose attempt ended with an outcome the store refused to hold
    (for instance text it cannot store): the job fails with this error instead."""


class LeaseExpiredError(WorkhorseError):
    """Recorded on a job whose worker stopped renewing its lease (crashed or hung)."""


class Cancelled(WorkhorseError):
    """Raised inside a task (by ``ctx.raise_if_cancelled()``) to end it as cancelled."""


class RetryLater(WorkhorseError):
    """Raise from a task to retry after ``delay`` seconds (counts an attempt)."""

    def __init__(self, delay: float | None = None, reason: str = "retry requested") -> None:
        super().__init__(reason)
        self.delay = delay


class DuplicateJobError(WorkhorseError):
    """Enqueue with ``on_duplicate="raise"`` found its unique key held by another job;
    nothing of that enqueue was stored."""

    def __init__(self, unique_key: str, holder_id: int | None, holder_state: str | None) -> None:
        holder = (
            f"job {holder_id} ({holder_state})"
            if holder_id is not None
            else "an earlier job of the same batch"
        )
        super().__init__(f"unique key {unique_key!r} is held by {holder}; nothing was enqueued")
        self.unique_key = unique_key
        self.holder_id = holder_id
        self.holder_state = holder_state


class DependencyFailedError(WorkhorseError):
    """Recorded on a job that ended because a job it depends on failed or was cancelled
    (the workflow's failure policy decides whether it ends failed or cancelled)."""
