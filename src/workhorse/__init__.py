"""workhorse: durable background jobs for Python services.

SQLite by default (one file, nothing to install), PostgreSQL when you outgrow one
machine; async and sync tasks, leases that survive crashes, retries, progress,
cancellation, a CLI, an HTTP API and a dashboard.
"""

from __future__ import annotations

from workhorse.app import Workhorse
from workhorse.context import JobContext, current_job
from workhorse.errors import (
    BackendUnavailableError,
    Cancelled,
    ConfigurationError,
    CorruptJobError,
    DependencyFailedError,
    DuplicateJobError,
    JobCancelledError,
    JobFailedError,
    JobNotFoundError,
    JobStateError,
    JobTimeoutError,
    LeaseExpiredError,
    MissingDependencyError,
    ResultTimeoutError,
    RetryLater,
    SerializationError,
    UnknownTaskError,
    UnstorableOutcomeError,
    WorkhorseError,
)
from workhorse.handle import Job
from workhorse.jobs import JobError, JobRecord, JobState, WorkflowState
from workhorse.limits import Limit, Rate
from workhorse.retry import Backoff, Retry
from workhorse.settings import WorkerSettings
from workhorse.tasks import ConfiguredTask, JobSpec, Task
from workhorse.unique import Unique
from workhorse.workflows import Group, Pipeline, Workflow, WorkflowHandle, chain, group

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailableError",
    "Backoff",
    "Cancelled",
    "ConfigurationError",
    "ConfiguredTask",
    "CorruptJobError",
    "DependencyFailedError",
    "DuplicateJobError",
    "Group",
    "Job",
    "JobCancelledError",
    "JobContext",
    "JobError",
    "JobFailedError",
    "JobNotFoundError",
    "JobRecord",
    "JobSpec",
    "JobState",
    "JobStateError",
    "JobTimeoutError",
    "LeaseExpiredError",
    "Limit",
    "MissingDependencyError",
    "Pipeline",
    "Rate",
    "ResultTimeoutError",
    "Retry",
    "RetryLater",
    "SerializationError",
    "Task",
    "Unique",
    "UnknownTaskError",
    "UnstorableOutcomeError",
    "WorkerSettings",
    "Workflow",
    "WorkflowHandle",
    "WorkflowState",
    "Workhorse",
    "WorkhorseError",
    "__version__",
    "chain",
    "current_job",
    "group",
]
