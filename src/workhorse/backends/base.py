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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from workhorse.jobs import JobError, JobRecord, JobState


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend can do beyond the interface; the worker adapts to it."""

    change_feed: bool = False
    """``watch()`` reports new work from other processes (LISTEN/NOTIFY, data_version)."""
    transactional_enqueue: bool = False
    """``job_insert_many(connection=...)`` joins the caller's own transaction."""
    shared_across_processes: bool = True
    """Several processes may share the store (False for ``memory://``)."""


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job to insert. ``args``/``kwargs`` are already JSON text (validated by the caller)."""

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
    """While a live job (not final) holds this key, inserting another returns that job."""
    parent_id: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class InsertedJob:
    """What an insert gives back for each ``NewJob``, in order."""

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


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an attempt ended. ``state`` is one of:

    - COMPLETED with ``result`` (JSON text);
    - SCHEDULED: retry after ``retry_delay`` seconds, with ``error``;
    - FAILED with ``error``;
    - CANCELLED (optionally with ``error``).

    Final outcomes set ``expires_at`` to finish time plus ``ttl`` seconds (None keeps the
    job forever).
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
class ReclaimResult:
    """Jobs whose lease had expired: sent back to the queue, or failed (no attempts left)."""

    requeued: tuple[int, ...] = ()
    failed: tuple[int, ...] = ()


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
    """Job counts per state for one queue."""

    queue: str
    counts: dict[JobState, int]
    oldest_queued_at: datetime | None = None


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
    def migration_sql(self) -> str:
        """The full schema SQL, for teams that run migrations themselves."""

    async def watch(self, wake: Callable[[str | None], None]) -> None:
        """Run until cancelled, calling ``wake(queue)`` when work may have arrived from
        another process (``queue`` is None when unknown). Backends without a change feed
        return at once; the worker then polls."""
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
        job it just inserted)."""

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
        """One job, or None (also when it belongs to another tenant than ``tenant``)."""

    @abc.abstractmethod
    async def job_list(
        self, *, filter: JobFilter, limit: int = 50, before_id: int | None = None
    ) -> list[JobRecord]:
        """Jobs matching ``filter``, newest first (id descending), ids below
        ``before_id`` when given (cursor pagination)."""

    @abc.abstractmethod
    async def job_count(self, *, filter: JobFilter) -> int:
        """How many jobs match ``filter``."""

    @abc.abstractmethod
    async def job_next_run_at(
        self, *, queues: Sequence[str] | None, now: datetime | None = None
    ) -> datetime | None:
        """The earliest ``run_at`` of a scheduled job in ``queues`` (for sleeping until
        it is due), or None."""

    @abc.abstractmethod
    async def queue_stats(self, *, tenant: str | None = None) -> list[QueueStats]:
        """Counts per state for every queue that has jobs."""

    # -- maintenance (leader only) -----------------------------------------------------

    @abc.abstractmethod
    async def job_reclaim_expired(
        self, *, now: datetime | None = None, ttl: float | None = None
    ) -> ReclaimResult:
        """Running jobs whose lease expired: back to queued (the attempt stays counted),
        or failed with a ``LeaseExpired`` error when no attempts are left (``ttl`` sets
        their ``expires_at``)."""

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
