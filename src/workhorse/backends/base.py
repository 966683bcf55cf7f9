"""The one backend interface every store implements, and the typed rows it speaks in.

This is an internal seam (it may change between minor versions): users touch
:class:`workhorse.Workhorse`, never a backend directly. Methods are async, keyword-only
and named noun_verb. Every method that compares against time takes an optional ``now``
so tests are deterministic; when ``now`` is None the store's own clock is used (the
database clock on PostgreSQL).

Fencing: a claim gives each job a fresh ``lease_token``. Every write that touches a
running job (heartbeat, progress, completion, release) matches on ``id``, ``lease_token``
and ``state = 'running'``, so a worker whose lease was reclaimed cannot overwrite the
outcome of a later attempt.
"""

from __future__ import annotations

import abc
import enum
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from workhorse.errors import BackendUnavailableError
from workhorse.jobs import (
    LIVE_STATES,
    DependencyPolicy,
    JobError,
    JobRecord,
    JobState,
    OnDuplicate,
    WorkflowState,
)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend can do beyond the interface; the worker adapts to it."""

    change_feed: bool = False
    """``watch()`` reports new work from other processes (LISTEN/NOTIFY, data_version)."""
    transactional_enqueue: bool = False
    """``job_insert_many(connection=...)`` joins the caller's own transaction."""
    shared_across_processes: bool = True
    """Several processes may share the store (False for ``memory://``)."""


@dataclass(slots=True)
class NewJob:
    """A job to insert. ``args``/``kwargs`` are already JSON text (validated by the caller).

    Treat it as read-only (``dataclasses.replace`` for a changed copy). It is not frozen
    because one is built per enqueued job, and a frozen dataclass of this many fields
    takes four times as long to build: a tenth of a bulk enqueue's time."""

    task: str
    args: str = "[]"
    kwargs: str = "{}"
    queue: str = "default"
    priority: int = 0
    max_attempts: int = 3
    run_at: datetime | None = None
    """Absolute time to run at; takes precedence over ``delay``."""
    delay: float = 0.0
    """Seconds from the store's ``now`` (used when ``run_at`` is None)."""
    timeout: float | None = None
    tenant: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    unique_key: str | None = None
    """While a job holding this key is in one of its ``unique_states``, inserting another
    with the key does what ``on_duplicate`` says (by default: returns that job)."""
    parent_id: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    unique_states: frozenset[JobState] = LIVE_STATES
    """The states in which the job holds ``unique_key``: the live states always (so no
    state change can ever collide with another holder), plus any final states that
    should keep the key after the job ends."""
    on_duplicate: OnDuplicate = "return"
    """When the key is held: return the holder (``created=False``); ``replace`` the
    holder's args, kwargs, priority and run time if it is still scheduled or queued
    (else return it unchanged); or ``raise`` ``DuplicateJobError``, inserting nothing of
    the batch."""


class InsertedJob(NamedTuple):
    """What an insert gives back for each ``NewJob``, in order. A named tuple: one is
    made per job inserted, in half the time of a frozen dataclass."""

    id: int
    state: JobState
    created: bool
    """False when a live job with the same unique key was returned instead."""


@dataclass(slots=True)
class ClaimedJob:
    """A job a worker now owns. Args stay raw JSON text: decoding is the executor's job,
    so that a corrupted row fails that one job with a clear error."""

    id: int
    task: str
    queue: str
    args: str
    kwargs: str
    attempt: int
    """This attempt's number, counted at claim time (1 for the first run)."""
    max_attempts: int
    lease_token: str
    priority: int = 0
    timeout: float | None = None
    tenant: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    previous_attempt_lost: bool = False
    """The previous attempt's lease expired (its worker died, froze or lost the store):
    the job may be what killed it, so the worker runs it alone."""
    corrupt: str | None = None
    """Why the claimed row cannot be run (a column holds a value not of its kind, named
    here), or None. The claim still hands the job out, under a lease, so that the
    worker fails it at once with ``CorruptJobError`` and without retry, while the rest
    of the claim runs. The fields that could not be read hold stand-ins."""


@dataclass(frozen=True, slots=True)
class Lease:
    """A worker's claim on one running job."""

    job_id: int
    token: str


@dataclass(frozen=True, slots=True)
class HeartbeatReply:
    """What a lease renewal learned about the jobs a worker holds."""

    lost: frozenset[int] = frozenset()
    """Jobs whose lease this worker no longer holds (reclaimed, or cancelled and gone)."""
    cancel_requested: frozenset[int] = frozenset()
    """Jobs still held that someone asked to cancel."""


@dataclass(slots=True)
class Outcome:
    """How an attempt ended. ``state`` is one of:

    - COMPLETED with ``result`` (JSON text);
    - SCHEDULED: retry after ``retry_delay`` seconds, with ``error``;
    - FAILED with ``error``;
    - CANCELLED (optionally with ``error``).

    Final outcomes set ``expires_at`` to finish time plus ``ttl`` seconds (None keeps the
    job forever). Read-only, like ``NewJob`` and not frozen for the same reason: one is
    built per attempt.
    """

    job_id: int
    lease_token: str
    state: JobState
    result: str | None = None
    error: JobError | None = None
    retry_delay: float = 0.0
    ttl: float | None = None
    progress: float | None = None
    """The attempt's last progress, written with the outcome (None: leave the stored
    progress as it is). Progress reports are coalesced, so without this the last one
    before the end could be lost."""
    progress_message: str | None = None


@dataclass(frozen=True, slots=True)
class ProgressUpdate:
    """A running job's progress, fenced by its lease."""

    job_id: int
    lease_token: str
    progress: float
    message: str | None = None


@dataclass(frozen=True, slots=True)
class ReclaimedJob:
    """A job whose lease had expired, what it is counted under in the job statistics,
    and the state the reclaim left it in: queued, failed or cancelled."""

    id: int
    state: JobState
    queue: str
    task: str
    tenant: str | None = None


@dataclass(frozen=True, slots=True)
class ReclaimResult:
    """Jobs whose lease had expired (in id order): sent back to the queue, failed (no
    attempts left), or cancelled (someone had asked to cancel them)."""

    jobs: tuple[ReclaimedJob, ...] = ()

    def ids(self, state: JobState) -> tuple[int, ...]:
        """The ids of the jobs the reclaim left in ``state``."""
        return tuple(job.id for job in self.jobs if job.state == state)

    @property
    def requeued(self) -> tuple[int, ...]:
        """Jobs sent back to the queue (their lost attempt stays counted)."""
        return self.ids(JobState.QUEUED)

    @property
    def failed(self) -> tuple[int, ...]:
        """Jobs failed with a ``LeaseExpiredError``: the lost attempt was their last."""
        return self.ids(JobState.FAILED)

    @property
    def cancelled(self) -> tuple[int, ...]:
        """Jobs cancelled: someone had asked to cancel them while they ran."""
        return self.ids(JobState.CANCELLED)


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Filters for listing, counting and purging jobs. None means "any"."""

    tenant: str | None = None
    queue: str | None = None
    states: tuple[JobState, ...] | None = None
    task: str | None = None
    label: tuple[str, str] | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    parent_id: int | None = None


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Job counts per state for one queue. A scheduled job whose ``run_at`` has come
    counts as queued: it is ready (every claim takes it), whether or not the leader has
    promoted it yet."""

    queue: str
    counts: dict[JobState, int]
    oldest_queued_at: datetime | None = None
    """The earliest ``run_at`` of the queue's ready jobs: since then the oldest has
    waited for a worker."""


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A worker announcing itself."""

    id: str
    hostname: str
    pid: int
    queues: tuple[str, ...] | None
    """None means every queue."""
    concurrency: int
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    """A worker as the store sees it."""

    id: str
    hostname: str
    pid: int
    queues: tuple[str, ...] | None
    concurrency: int
    started_at: datetime
    heartbeat_at: datetime
    running: int = 0
    stop_requested: bool = False
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """An API key of the HTTP API as stored: its SHA-256 hash, never the token."""

    id: str
    key_hash: str
    name: str | None
    tenant: str | None
    """The one tenant the key may see; None for admin keys."""
    admin: bool
    read_only: bool
    created_at: datetime
    revoked_at: datetime | None = None


# -- job statistics (metrics and throughput) -------------------------------------------


class JobEvent(enum.StrEnum):
    """What happened to a job, as counted in the store's job statistics."""

    ENQUEUED = "enqueued"
    STARTED = "started"
    """An attempt began."""
    COMPLETED = "completed"
    RETRIED = "retried"
    """An attempt failed and another one is scheduled."""
    FAILED = "failed"
    """The job failed for good."""
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class EventCount:
    """``count`` jobs of ``task`` in ``queue`` went through ``event``: in the minute
    that starts at ``minute`` (in ``stats_add``), or ever (in ``stats_totals``, where
    ``minute`` and ``tenant`` are None: every tenant together)."""

    event: JobEvent
    queue: str
    task: str
    count: int
    tenant: str | None = None
    minute: datetime | None = None


@dataclass(frozen=True, slots=True)
class RunTimeCount:
    """``count`` attempts of ``task`` in ``queue`` ran for at most ``le`` seconds (and
    more than the next lower bound), ``seconds`` in all: one bucket of a run-time
    histogram (``le`` is ``math.inf`` for the last)."""

    queue: str
    task: str
    le: float
    count: int
    seconds: float


@dataclass(frozen=True, slots=True)
class JobTotals:
    """The all-time job statistics of a store."""

    counts: list[EventCount]
    """Per queue, task and event, every tenant together."""
    run_times: list[RunTimeCount]
    """The run-time histogram buckets per queue and task."""


@dataclass(frozen=True, slots=True)
class MinuteCount:
    """How many jobs went through ``event`` in the minute that starts at ``minute``
    (every queue and task together)."""

    minute: datetime
    event: JobEvent
    count: int


# -- periodic jobs, limits and webhooks (issue 5) ------------------------------------


@dataclass(frozen=True, slots=True)
class ScheduleState:
    """What the store knows of one periodic schedule."""

    name: str
    registered_at: datetime
    """When a worker first saw the schedule: no earlier tick is ever enqueued."""
    last_tick_at: datetime | None = None
    """The latest tick enqueued so far."""
    last_job_id: int | None = None
    """The job that tick enqueued."""


@dataclass(frozen=True, slots=True)
class LimitCaps:
    """The caps of one limit bucket: running jobs at once, starts per window."""

    concurrency: int | None = None
    rate: int | None = None
    """Most starts within any ``period`` seconds (None: no rate limit)."""
    period: float = 0.0


@dataclass(frozen=True, slots=True)
class ClaimLimits:
    """The limits a limited claim keeps (see ``job_claim_limited``). Concurrency counts
    running jobs, rates count starts, across every worker of the store:

    - ``queues``: most running jobs per queue;
    - ``tasks``: caps on all the jobs of a task together;
    - ``keys``: caps per value of a job's limit key (``<limit name>:<value>``, or just
      the name), looked up by the limit name.
    """

    queues: Mapping[str, int] = field(default_factory=dict)
    tasks: Mapping[str, LimitCaps] = field(default_factory=dict)
    keys: Mapping[str, LimitCaps] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One attempt at delivering the webhook of a finished job."""

    job_id: int
    """The job whose outcome was sent."""
    delivery_job_id: int
    """The ``workhorse.webhook.deliver`` job making the attempt."""
    url: str
    attempt: int
    status_code: int | None = None
    """The receiver's HTTP status (None when no response came)."""
    error: str | None = None
    """Why the attempt failed (None when the receiver accepted it)."""
    at: datetime | None = None
    """When the attempt ended (set by the store)."""


# -- workflows: dependencies between jobs (issue 5, first half) ----------------------


@dataclass(frozen=True, slots=True)
class StoredJobRef:
    """A dependency on a job stored before the workflow is inserted."""

    job_id: int


@dataclass(frozen=True, slots=True)
class WorkflowPart:
    """One job of a workflow and what it waits for."""

    job: NewJob
    after: tuple[int | StoredJobRef, ...] = ()
    """Positions of earlier parts of the same workflow, or stored jobs. The order is
    kept: ``job_dependencies`` lists them in it."""


@dataclass(frozen=True, slots=True)
class NewWorkflow:
    """Jobs inserted together as one workflow.

    A part with dependencies starts ``blocked``. When a job that others depend on ends,
    in the same transaction: once every dependency of a blocked job has completed, that
    job becomes queued (scheduled if its ``run_at`` is still ahead); when a dependency
    fails or is cancelled, every blocked job that depends on it, directly or through
    other blocked jobs, ends as its workflow's ``on_failure`` says (``fail``: failed,
    ``cancel``: cancelled) with a ``DependencyFailedError`` naming that dependency. A
    dependency that was deleted no longer holds anyone back.
    """

    parts: Sequence[WorkflowPart]
    name: str | None = None
    on_failure: DependencyPolicy = "fail"
    tenant: str | None = None


@dataclass(frozen=True, slots=True)
class InsertedWorkflow:
    """What ``workflow_insert`` gives back: the workflow's id and its parts, in order."""

    id: int
    jobs: list[InsertedJob]


@dataclass(frozen=True, slots=True)
class Dependency:
    """A job another job waits for, as it is stored now."""

    job_id: int
    state: JobState | None
    """None when the job was deleted (pruned)."""
    task: str | None = None
    result: Any = None
    """The decoded result, once completed."""


@dataclass(frozen=True, slots=True)
class WorkflowRecord:
    """A workflow as stored, with its parts (oldest first) and their dependencies."""

    id: int
    name: str | None
    tenant: str | None
    on_failure: DependencyPolicy
    created_at: datetime
    parts: list[JobRecord]
    edges: list[tuple[int, int]]
    """``(job_id, depends_on_id)`` for every dependency of every part, in each part's
    order of dependencies (stored jobs outside the workflow included)."""
    cancelled_at: datetime | None = None
    """When someone cancelled the workflow (None if nobody did)."""

    @property
    def state(self) -> WorkflowState:
        """Active while a part is live; else completed, failed or cancelled."""
        return WorkflowState.of(part.state for part in self.parts)

    def dependencies_of(self, job_id: int) -> list[int]:
        """The ids ``job_id`` waits for, in order."""
        return [dep for job, dep in self.edges if job == job_id]


class Wanted(threading.Event):
    """Set while a store's change feed is wanted: while the worker waits for a wake-up
    (see :meth:`Backend.watch`). A feed on the event loop can also be told the moment
    it is set, rather than look at it."""

    def __init__(self) -> None:
        super().__init__()
        self._on_set: list[Callable[[], None]] = []

    def set(self) -> None:
        super().set()
        for callback in tuple(self._on_set):
            callback()

    def on_set(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` each time this is set, in the thread that sets it, until
        the function returned is called."""
        self._on_set.append(callback)
        return lambda: self._on_set.remove(callback)


class Backend(abc.ABC):
    """The store behind a :class:`~workhorse.Workhorse` app.

    Every backend passes the one conformance suite in ``tests/backends``.
    """

    capabilities: Capabilities = Capabilities()
    url: str
    shared_across_loops: bool = False
    """True if one instance may serve several event loops (threads) at once. The app opens
    one instance per event loop otherwise."""

    # -- lifecycle -------------------------------------------------------------------

    async def absent(self) -> str | None:
        """Look for the store without creating anything, before :meth:`connect`: None
        when it is there already, else what was not found, in a few words
        ("'jobs.db' does not exist", "schema 'jobs' does not exist in PostgreSQL at
        db:5432/app"). Commands that only read refuse a store that is absent rather than
        create an empty one (a typo in a path or schema name would otherwise look like a
        store without jobs). Raises ``BackendUnavailableError``, with the reason, when
        the store cannot be reached at all."""
        return None

    @abc.abstractmethod
    async def connect(self) -> None:
        """Open connections (idempotent). Runs migrations when the app asks for it."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections (idempotent)."""

    @abc.abstractmethod
    async def migrate(self) -> list[str]:
        """Apply pending migrations; return the names applied."""

    @abc.abstractmethod
    def migration_sql(self, *, after: int = 0) -> str:
        """The schema SQL for teams that run migrations themselves: the migrations
        numbered above ``after`` (all of them by default), each recorded as applied."""

    def error_is_transient(self, exc: BaseException) -> bool:
        """True when ``exc``, raised by a call to this store, may go away by itself (the
        store is unreachable, restarting or locked): the same call may succeed later.
        False for anything else (data the store refuses, a bug): repeating the call
        would fail the same way."""
        return isinstance(exc, BackendUnavailableError | ConnectionError | TimeoutError)

    async def watch(
        self, wake: Callable[[str | None], None], *, wanted: Wanted | None = None
    ) -> None:
        """Run until cancelled, calling ``wake(queue)`` when work may have arrived from
        another process (``queue`` is None when unknown). Backends without a change feed
        return at once; the worker then polls.

        ``wanted``, when given, is set while the caller waits for a wake-up (an idle
        worker) and clear while it would ignore one (a busy worker). A feed that costs
        work per change may rest while it is clear, and after it woke the caller, but
        once ``wanted`` is set again must wake the caller if anything changed
        meanwhile."""
        return

    # -- jobs: writes ------------------------------------------------------------------

    @abc.abstractmethod
    async def job_insert_many(
        self, jobs: Sequence[NewJob], *, connection: Any = None, now: datetime | None = None
    ) -> list[InsertedJob]:
        """Insert jobs atomically (all or none). A job whose unique key is held by a live
        job returns that job with ``created=False``. ``connection`` (only with
        ``capabilities.transactional_enqueue``) joins the caller's open transaction."""

    @abc.abstractmethod
    async def job_claim(
        self,
        *,
        worker_id: str,
        queues: Sequence[str] | None,
        limit: int,
        lease_seconds: float,
        now: datetime | None = None,
        job_ids: Sequence[int] | None = None,
    ) -> list[ClaimedJob]:
        """Move up to ``limit`` due jobs (queued, or scheduled with ``run_at <= now``) to
        running, highest priority first, then oldest ``run_at``, then id. Increments the
        attempt and sets a fresh lease token; no job is ever handed to two claims.
        ``job_ids`` restricts the claim to those jobs, due or not (eager mode runs the
        job it just inserted). A claimed row with a column that does not decode comes
        back marked ``corrupt`` (see :class:`ClaimedJob`); it never fails the claim."""

    @abc.abstractmethod
    async def job_heartbeat(
        self, *, worker_id: str, leases: Sequence[Lease], lease_seconds: float
    ) -> HeartbeatReply:
        """Extend the leases still held; report lost ones and cancellation requests."""

    @abc.abstractmethod
    async def job_set_progress(self, updates: Sequence[ProgressUpdate]) -> None:
        """Record progress of running jobs (fenced; stale updates are ignored)."""

    @abc.abstractmethod
    async def job_complete_many(
        self, outcomes: Sequence[Outcome], *, now: datetime | None = None
    ) -> list[bool]:
        """End attempts. Each element says whether that outcome was applied (False: the
        lease was no longer held, the write was fenced off). A SCHEDULED outcome (retry)
        for a job with ``cancel_requested`` ends it cancelled instead: it must not run
        again."""

    @abc.abstractmethod
    async def job_release(self, leases: Sequence[Lease]) -> int:
        """Give running jobs back to the queue without counting the attempt (graceful
        shutdown); a job with ``cancel_requested`` ends cancelled instead. Returns how
        many were released."""

    @abc.abstractmethod
    async def job_cancel(self, *, job_id: int, tenant: str | None = None) -> JobRecord | None:
        """Cancel a job: a scheduled, queued or blocked job becomes cancelled at once; a
        running one gets ``cancel_requested`` (its worker stops it). Final jobs are left
        as they are. None if no such job (for this tenant, when given)."""

    @abc.abstractmethod
    async def job_retry(
        self, *, job_id: int, tenant: str | None = None, now: datetime | None = None
    ) -> JobRecord | None:
        """Send a failed or cancelled job back to the queue, granting one more attempt
        if it had none left. Raises :class:`~workhorse.errors.JobStateError` for a job
        that is not failed or cancelled. None if no such job."""

    @abc.abstractmethod
    async def job_delete(self, *, job_id: int, tenant: str | None = None) -> bool:
        """Delete a final job. Raises ``JobStateError`` for a live one. False if absent."""

    # -- jobs: reads -------------------------------------------------------------------

    @abc.abstractmethod
    async def job_get(self, *, job_id: int, tenant: str | None = None) -> JobRecord | None:
        """One job, or None (also when it belongs to another tenant than ``tenant``).
        Raises :class:`~workhorse.errors.CorruptJobError`, naming the column, for a row
        that does not decode."""

    @abc.abstractmethod
    async def job_list(
        self, *, filter: JobFilter, limit: int = 50, before_id: int | None = None
    ) -> list[JobRecord]:
        """Jobs matching ``filter``, newest first (id descending), ids below
        ``before_id`` when given (cursor pagination). A row that does not decode is left
        out, with a WARNING naming its id and column, and the next one takes its place
        (``job_count`` still counts it)."""

    @abc.abstractmethod
    async def job_count(self, *, filter: JobFilter) -> int:
        """How many jobs match ``filter``."""

    @abc.abstractmethod
    async def job_next_due_in(
        self, *, queues: Sequence[str] | None, now: datetime | None = None
    ) -> float | None:
        """Seconds until the earliest scheduled job in ``queues`` is due, measured on
        the store's clock (0.0 when one is due already), or None when none is scheduled.
        A worker sleeps that long: the delay, not a time, so that a worker whose clock
        is off never wakes too early or too late."""

    @abc.abstractmethod
    async def queue_stats(
        self, *, tenant: str | None = None, now: datetime | None = None
    ) -> list[QueueStats]:
        """Counts per state for every queue that has jobs, a due scheduled job counted
        as queued (see :class:`QueueStats`)."""

    # -- maintenance (leader only) -----------------------------------------------------

    @abc.abstractmethod
    async def job_reclaim_expired(
        self, *, now: datetime | None = None, ttl: float | None = None
    ) -> ReclaimResult:
        """Running jobs whose lease expired: back to queued (the attempt stays counted),
        failed with a ``LeaseExpiredError`` when no attempts are left, or cancelled when
        someone asked to cancel them (``ttl`` sets the ``expires_at`` of the last two).
        Each comes back with its queue, task and tenant, for the job statistics."""

    @abc.abstractmethod
    async def job_promote_scheduled(self, *, now: datetime | None = None) -> int:
        """Mark scheduled jobs whose ``run_at`` has come as queued (cosmetic: claims take
        due scheduled jobs anyway). Returns how many."""

    @abc.abstractmethod
    async def job_prune(self, *, now: datetime | None = None, limit: int = 10_000) -> int:
        """Delete final jobs whose ``expires_at`` has passed. Returns how many."""

    @abc.abstractmethod
    async def job_purge(self, *, filter: JobFilter) -> int:
        """Delete final jobs matching ``filter`` now (CLI ``jobs purge``)."""

    @abc.abstractmethod
    async def leader_attempt_elect(
        self, *, worker_id: str, ttl: float, now: datetime | None = None
    ) -> bool:
        """Become (or stay) the leader for ``ttl`` seconds if no other worker holds a
        live leadership. True if ``worker_id`` is the leader now."""

    @abc.abstractmethod
    async def leader_resign(self, *, worker_id: str) -> None:
        """Give up leadership if held."""

    # -- workers -----------------------------------------------------------------------

    @abc.abstractmethod
    async def worker_register(self, *, worker: WorkerInfo) -> None:
        """Announce a worker (insert or replace its row)."""

    @abc.abstractmethod
    async def worker_heartbeat(self, *, worker_id: str, running: int) -> bool:
        """Record that the worker lives. Returns True if a stop was requested for it."""

    @abc.abstractmethod
    async def worker_deregister(self, *, worker_id: str) -> None:
        """Remove a worker's row (clean exit)."""

    @abc.abstractmethod
    async def worker_list(self) -> list[WorkerRecord]:
        """Every registered worker, oldest first."""

    @abc.abstractmethod
    async def worker_request_stop(self, *, worker_id: str | None = None) -> int:
        """Ask one worker (or all, when None) to shut down gracefully. Returns how many."""

    @abc.abstractmethod
    async def worker_prune(self, *, older_than: float, now: datetime | None = None) -> int:
        """Delete workers whose last heartbeat is older than ``older_than`` seconds."""

    # -- job statistics (metrics and throughput) ---------------------------------------

    @abc.abstractmethod
    async def stats_add(
        self, *, counts: Sequence[EventCount], run_times: Sequence[RunTimeCount]
    ) -> None:
        """Add to the job statistics, in one transaction: each count to its minute
        (``minute`` is required; it is cut down to the start of its minute) and to the
        all-time totals, each run-time count to its histogram bucket. ``ValueError``,
        and nothing added, for a count without a minute or a negative number."""

    @abc.abstractmethod
    async def stats_totals(self) -> JobTotals:
        """The all-time totals per queue, task and event, and the run-time histograms.
        Totals only grow: ``stats_prune`` leaves them alone."""

    @abc.abstractmethod
    async def stats_timeline(
        self, *, since: datetime, tenant: str | None = None
    ) -> list[MinuteCount]:
        """Counts per minute and event, every queue and task together, from the minute
        holding ``since`` on, for ``tenant`` (None: every tenant, jobs without one
        included); oldest minute first, minutes without counts left out."""

    @abc.abstractmethod
    async def stats_prune(self, *, before: datetime) -> int:
        """Forget the per-minute counts of the minutes that ended by ``before`` (the
        all-time totals keep them). Returns how many rows were deleted."""

    # -- API keys (HTTP API and dashboard) -------------------------------------------

    @abc.abstractmethod
    async def api_key_insert(
        self,
        *,
        id: str,
        key_hash: str,
        name: str | None,
        tenant: str | None,
        admin: bool,
        read_only: bool,
        now: datetime | None = None,
    ) -> ApiKeyRecord:
        """Store a new key (its hash only). Raises ``ValueError`` if the id or the hash
        is already stored."""

    @abc.abstractmethod
    async def api_key_get(self, *, key_hash: str) -> ApiKeyRecord | None:
        """The key with this hash, revoked or not; None if unknown."""

    @abc.abstractmethod
    async def api_key_list(self, *, include_revoked: bool = False) -> list[ApiKeyRecord]:
        """Keys, oldest first (revoked ones only with ``include_revoked``)."""

    @abc.abstractmethod
    async def api_key_revoke(self, *, key_id: str, now: datetime | None = None) -> bool:
        """Mark a key revoked (the row stays). False if no unrevoked key has this id."""

    # -- dashboard sessions ------------------------------------------------------------

    @abc.abstractmethod
    async def session_revoke(
        self, *, session_id: str, expires_at: datetime, now: datetime | None = None
    ) -> None:
        """Record that dashboard session ``session_id``, valid until ``expires_at``, has
        ended (a logout); recording it again changes nothing. Records of sessions
        expired by ``now`` are deleted on the way: those are refused anyway."""

    @abc.abstractmethod
    async def session_revoked(self, *, session_id: str) -> bool:
        """True if session ``session_id`` was ended by :meth:`session_revoke`."""

    # -- periodic jobs, limits and webhooks (issue 5) ---------------------------------

    @abc.abstractmethod
    async def schedule_states(self, *, names: Sequence[str]) -> dict[str, ScheduleState]:
        """The state of each schedule in ``names`` that is registered (others are absent)."""

    @abc.abstractmethod
    async def schedule_register(self, *, names: Sequence[str], now: datetime | None = None) -> None:
        """Record schedules not seen before as registered ``now`` (others keep theirs)."""

    @abc.abstractmethod
    async def cron_claim_tick(self, *, name: str, tick_at: datetime, job: NewJob) -> int | None:
        """Enqueue ``job`` for tick ``tick_at`` of schedule ``name``, unless that tick was
        claimed before: the tick and the job are written in one transaction, so each tick
        makes one job however many schedulers try. The new job's id, or None."""

    @abc.abstractmethod
    async def cron_prune_ticks(self, *, before: datetime) -> int:
        """Forget ticks older than ``before`` (no scheduler looks that far back)."""

    @abc.abstractmethod
    async def job_claim_limited(
        self,
        *,
        worker_id: str,
        queues: Sequence[str] | None,
        limit: int,
        lease_seconds: float,
        limits: ClaimLimits,
        now: datetime | None = None,
    ) -> list[ClaimedJob]:
        """``job_claim`` that keeps ``limits``: a job whose queue, task or limit key has
        no room (running jobs at the concurrency cap, starts in the window at the rate
        cap) is passed over, and later jobs are taken instead. The counts and the claim
        are one transaction that excludes other limited claims on the same buckets, so
        concurrent workers never overshoot together; each start is recorded for rates."""

    @abc.abstractmethod
    async def webhook_secret_set(
        self, *, tenant: str | None, secret: str, now: datetime | None = None
    ) -> None:
        """Store the signing secret of ``tenant`` (None: jobs without a tenant), replacing
        any earlier one."""

    @abc.abstractmethod
    async def webhook_secret_get(self, *, tenant: str | None) -> str | None:
        """The signing secret of ``tenant``, or None if none was created."""

    @abc.abstractmethod
    async def webhook_delivery_record(
        self, *, delivery: WebhookDelivery, now: datetime | None = None
    ) -> None:
        """Append one delivery attempt to the log (``delivery.at`` is set to ``now``)."""

    @abc.abstractmethod
    async def webhook_delivery_list(self, *, job_id: int) -> list[WebhookDelivery]:
        """The delivery attempts of ``job_id``'s webhooks, oldest first."""

    @abc.abstractmethod
    async def webhook_delivery_prune(self, *, before: datetime) -> int:
        """Delete delivery attempts logged before ``before``."""

    # -- workflows, dependencies and pipelines (issue 5, first half) -------------------

    @abc.abstractmethod
    async def workflow_insert(
        self, workflow: NewWorkflow, *, connection: Any = None, now: datetime | None = None
    ) -> InsertedWorkflow:
        """Insert a workflow and its parts atomically (see :class:`NewWorkflow`). Each
        ``after`` must name an earlier part or a stored job: ``JobNotFoundError`` (and
        nothing stored) for a stored job that does not exist, ``ValueError`` for a part
        that is not earlier or a part with a unique key. A stored dependency already
        completed holds nothing back; one already failed or cancelled ends the parts
        that wait on it at once, as the policy says. ``connection`` as in
        ``job_insert_many``."""

    @abc.abstractmethod
    async def workflow_get(
        self, *, workflow_id: int, tenant: str | None = None
    ) -> WorkflowRecord | None:
        """A workflow with its parts, or None (also for another tenant's, and once every
        part was deleted)."""

    @abc.abstractmethod
    async def workflow_cancel(
        self, *, workflow_id: int, tenant: str | None = None, now: datetime | None = None
    ) -> WorkflowRecord | None:
        """Cancel every live part: waiting and blocked parts end cancelled at once,
        running ones get ``cancel_requested``; parts that are final stay as they are.
        Jobs of other workflows that wait on a cancelled part follow their own policy.
        The workflow after the change, or None if there is no such workflow."""

    @abc.abstractmethod
    async def job_dependencies(self, *, job_id: int) -> list[Dependency]:
        """The jobs ``job_id`` waits for, in the order they were given, with their
        current state and result (empty for a job without dependencies)."""

    @abc.abstractmethod
    async def job_set_meta(self, *, lease: Lease, key: str, value: str) -> bool:
        """Set ``meta[key]`` of a running job to the JSON text ``value`` (fenced by the
        lease, like every write to a running job). ``key`` is a word (letters, digits,
        underscores). False if the lease is no longer held."""
