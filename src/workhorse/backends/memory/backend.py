"""The memory backend: every operation on plain dictionaries under one lock."""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from workhorse.backends._workflows import LIVE_MASK, unique_mask
from workhorse.backends.base import (
    Backend,
    Capabilities,
    ClaimedJob,
    HeartbeatReply,
    InsertedJob,
    JobFilter,
    Lease,
    NewJob,
    Outcome,
    ProgressUpdate,
    QueueStats,
    ReclaimedJob,
    ReclaimResult,
)
from workhorse.backends.memory.api_keys import MemoryApiKeys
from workhorse.backends.memory.limits import MemoryLimits
from workhorse.backends.memory.registry import MemoryRegistry
from workhorse.backends.memory.rows import StoredJob, encode_new_job, utc
from workhorse.backends.memory.scheduling import MemorySchedules
from workhorse.backends.memory.sessions import MemorySessions
from workhorse.backends.memory.stats import MemoryStats
from workhorse.backends.memory.unique import refuse_duplicates, replace_waiting
from workhorse.backends.memory.webhooks import MemoryWebhooks
from workhorse.backends.memory.workflows import MemoryWorkflows
from workhorse.errors import ConfigurationError, JobStateError, LeaseExpiredError
from workhorse.jobs import FINAL_STATES, JobError, JobRecord, JobState
from workhorse.serialization import loads

_CANCELLABLE = frozenset({JobState.SCHEDULED, JobState.QUEUED, JobState.BLOCKED})
_RETRYABLE = frozenset({JobState.FAILED, JobState.CANCELLED})
_OUTCOME_STATES = frozenset(
    {JobState.COMPLETED, JobState.SCHEDULED, JobState.FAILED, JobState.CANCELLED}
)


class MemoryBackend(
    MemoryRegistry,
    MemoryApiKeys,
    MemorySessions,
    MemorySchedules,
    MemoryLimits,
    MemoryWebhooks,
    MemoryWorkflows,
    MemoryStats,
    Backend,
):
    """Jobs in process memory: nothing survives the process, nothing is shared with
    another one. The reference implementation of the backend contract."""

    capabilities = Capabilities(
        change_feed=False, transactional_enqueue=False, shared_across_processes=False
    )
    shared_across_loops = True

    def __init__(self, url: str = "memory://", **options: Any) -> None:
        if options:
            raise ConfigurationError(f"memory:// takes no options, got {sorted(options)}")
        super().__init__()  # every table: MemoryRegistry, MemoryApiKeys
        self.url = url
        self._lock = threading.Lock()
        self._jobs: dict[int, StoredJob] = {}
        self._ids = itertools.count(1)
        self._unique: dict[str, int] = {}
        """Unique key -> the job that last took it (checked for liveness on use)."""

    def _ended(self, job: StoredJob) -> None:
        """``job`` just reached a final state (lock held): settle the jobs that wait on
        it, then announce it, and each job that settling ended, through its webhook."""
        for ended in (job, *self._settle(job)):
            MemoryWebhooks._ended(self, ended)

    # -- lifecycle -------------------------------------------------------------------

    async def connect(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to release; the jobs stay for as long as this object lives."""

    async def migrate(self) -> list[str]:
        """Nothing to migrate."""
        return []

    def migration_sql(self, *, after: int = 0) -> str:
        """No schema: an empty string."""
        return ""

    # -- jobs: writes ----------------------------------------------------------------

    async def job_insert_many(
        self, jobs: Sequence[NewJob], *, connection: Any = None, now: datetime | None = None
    ) -> list[InsertedJob]:
        """Insert ``jobs``; all are validated before any is stored, so a bad one leaves
        the store untouched."""
        if connection is not None:
            raise ValueError("memory:// cannot join a caller's transaction")
        moment = utc(now)
        encoded = [(job, *encode_new_job(job)) for job in jobs]
        with self._lock:
            refuse_duplicates(jobs, self._key_holder)
            return [self._insert(job, labels, meta, moment) for job, labels, meta in encoded]

    def _key_holder(self, unique_key: str | None) -> StoredJob | None:
        """The job holding ``unique_key`` (in one of its unique states), if any."""
        if unique_key is None:
            return None
        holder = self._jobs.get(self._unique.get(unique_key, -1))
        return holder if holder is not None and holder.holds_key() else None

    def _insert(self, new: NewJob, labels: str, meta: str, now: datetime) -> InsertedJob:
        holder = self._key_holder(new.unique_key)
        if holder is not None:
            if new.on_duplicate == "replace":
                replace_waiting(holder, new, now)
            return InsertedJob(id=holder.id, state=holder.state, created=False)
        run_at = utc(new.run_at) if new.run_at is not None else now + timedelta(seconds=new.delay)
        job = StoredJob(
            id=next(self._ids),
            task=new.task,
            queue=new.queue,
            state=JobState.SCHEDULED if run_at > now else JobState.QUEUED,
            priority=new.priority,
            args=new.args,
            kwargs=new.kwargs,
            run_at=run_at,
            max_attempts=new.max_attempts,
            created_at=now,
            tenant=new.tenant,
            labels=labels,
            unique_key=new.unique_key,
            timeout=new.timeout,
            parent_id=new.parent_id,
            meta=meta,
            unique_states=LIVE_MASK if new.unique_key is None else unique_mask(new.unique_states),
        )
        self._jobs[job.id] = job
        if new.unique_key is not None:
            self._unique[new.unique_key] = job.id
        return InsertedJob(id=job.id, state=job.state, created=True)

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
        """Take the ``limit`` most urgent due jobs (or the named ones, due or not)."""
        moment = utc(now)
        wanted = None if queues is None else frozenset(queues)
        with self._lock:
            if job_ids is None:
                candidates = [job for job in self._jobs.values() if job.due(moment)]
            else:
                named = (self._jobs.get(job_id) for job_id in set(job_ids))
                candidates = [job for job in named if job is not None and job.waiting]
            due = [job for job in candidates if wanted is None or job.queue in wanted]
            due.sort(key=lambda job: (-job.priority, job.run_at, job.id))
            return [self._claim(job, worker_id, lease_seconds, moment) for job in due[:limit]]

    @staticmethod
    def _claim(job: StoredJob, worker_id: str, lease_seconds: float, now: datetime) -> ClaimedJob:
        job.state = JobState.RUNNING
        job.attempt += 1
        job.worker_id = worker_id
        job.lease_token = uuid.uuid4().hex
        job.started_at = now
        job.lease_expires_at = now + timedelta(seconds=lease_seconds)
        return ClaimedJob(
            id=job.id,
            task=job.task,
            queue=job.queue,
            args=job.args,
            kwargs=job.kwargs,
            attempt=job.attempt,
            max_attempts=job.max_attempts,
            lease_token=job.lease_token,
            priority=job.priority,
            timeout=job.timeout,
            tenant=job.tenant,
            meta=loads(job.meta),
            previous_attempt_lost=job.error is not None
            and job.error.type == LeaseExpiredError.__name__,
        )

    def _held(self, job_id: int, token: str) -> StoredJob | None:
        """The job if ``token`` is its current lease (the fence of every worker write)."""
        job = self._jobs.get(job_id)
        return job if job is not None and job.holds(token) else None

    async def job_heartbeat(
        self, *, worker_id: str, leases: Sequence[Lease], lease_seconds: float
    ) -> HeartbeatReply:
        """Extend held leases from the current time."""
        expires = utc(None) + timedelta(seconds=lease_seconds)
        lost: set[int] = set()
        cancel: set[int] = set()
        with self._lock:
            for lease in leases:
                job = self._held(lease.job_id, lease.token)
                if job is None:
                    lost.add(lease.job_id)
                    continue
                job.lease_expires_at = expires
                if job.cancel_requested:
                    cancel.add(job.id)
        return HeartbeatReply(lost=frozenset(lost), cancel_requested=frozenset(cancel))

    async def job_set_progress(self, updates: Sequence[ProgressUpdate]) -> None:
        """Record progress of jobs whose lease is still held."""
        with self._lock:
            for update in updates:
                job = self._held(update.job_id, update.lease_token)
                if job is not None:
                    job.progress = update.progress
                    job.progress_message = update.message

    async def job_complete_many(
        self, outcomes: Sequence[Outcome], *, now: datetime | None = None
    ) -> list[bool]:
        """Apply each outcome whose lease is still held."""
        for outcome in outcomes:
            if outcome.state not in _OUTCOME_STATES:
                raise ValueError(f"an attempt cannot end {outcome.state}")
        moment = utc(now)
        with self._lock:
            return [self._complete(outcome, moment) for outcome in outcomes]

    def _complete(self, outcome: Outcome, now: datetime) -> bool:
        job = self._held(outcome.job_id, outcome.lease_token)
        if job is None:
            return False
        if outcome.state is JobState.SCHEDULED and job.cancel_requested:
            job.finish(JobState.CANCELLED, now, outcome.ttl)
        elif outcome.state is JobState.SCHEDULED:
            job.state = JobState.SCHEDULED
            job.run_at = now + timedelta(seconds=outcome.retry_delay)
            job.drop_lease()
        else:
            job.finish(outcome.state, now, outcome.ttl)
            if outcome.state is JobState.COMPLETED:
                job.result = outcome.result
        if outcome.error is not None:
            job.error = outcome.error
        if outcome.progress is not None:
            job.progress = outcome.progress
            job.progress_message = outcome.progress_message
        if job.state.is_final:
            self._ended(job)
        return True

    async def job_release(self, leases: Sequence[Lease]) -> int:
        """Put held jobs back in the queue; the attempt does not count."""
        released = 0
        with self._lock:
            for lease in leases:
                job = self._held(lease.job_id, lease.token)
                if job is None:
                    continue
                job.attempt -= 1
                if job.cancel_requested:
                    job.finish(JobState.CANCELLED, utc(None), None)
                    self._ended(job)
                else:
                    job.state = JobState.QUEUED
                    job.drop_lease()
                released += 1
        return released

    async def job_cancel(self, *, job_id: int, tenant: str | None = None) -> JobRecord | None:
        """Cancel at once, or ask a running job's worker to stop it."""
        with self._lock:
            job = self._visible(job_id, tenant)
            if job is None:
                return None
            if job.state in _CANCELLABLE:
                job.finish(JobState.CANCELLED, utc(None), None)
                self._ended(job)
            elif job.state is JobState.RUNNING:
                job.cancel_requested = True
            return job.record()

    async def job_retry(
        self, *, job_id: int, tenant: str | None = None, now: datetime | None = None
    ) -> JobRecord | None:
        """Queue a failed or cancelled job again."""
        moment = utc(now)
        with self._lock:
            job = self._visible(job_id, tenant)
            if job is None:
                return None
            if job.state not in _RETRYABLE:
                raise JobStateError(
                    f"job {job_id} is {job.state}: only failed or cancelled jobs can be retried"
                )
            holder = self._key_holder(job.unique_key)
            if holder is not None and holder is not job:
                raise JobStateError(
                    f"job {job_id} cannot be retried: job {holder.id} holds its unique key "
                    f"{job.unique_key!r}"
                )
            self._check_dependencies_completed(job.id)
            if job.unique_key is not None:
                self._unique[job.unique_key] = job.id
            job.state = JobState.QUEUED
            job.run_at = moment
            job.error = job.result = job.finished_at = job.expires_at = None
            job.progress, job.progress_message = 0.0, None
            job.cancel_requested = False
            job.max_attempts = max(job.max_attempts, job.attempt + 1)
            return job.record()

    async def job_delete(self, *, job_id: int, tenant: str | None = None) -> bool:
        """Delete a final job."""
        with self._lock:
            job = self._visible(job_id, tenant)
            if job is None:
                return False
            if job.state not in FINAL_STATES:
                raise JobStateError(f"job {job_id} is {job.state}: only final jobs can be deleted")
            del self._jobs[job_id]
            return True

    def _visible(self, job_id: int, tenant: str | None) -> StoredJob | None:
        job = self._jobs.get(job_id)
        return job if job is not None and job.visible_to(tenant) else None

    # -- jobs: reads -----------------------------------------------------------------

    async def job_get(self, *, job_id: int, tenant: str | None = None) -> JobRecord | None:
        """One job, or None."""
        with self._lock:
            job = self._visible(job_id, tenant)
            return None if job is None else job.record()

    async def job_list(
        self, *, filter: JobFilter, limit: int = 50, before_id: int | None = None
    ) -> list[JobRecord]:
        """Matching jobs, newest first."""
        with self._lock:
            found = (
                job
                for job in self._newest_first()
                if (before_id is None or job.id < before_id) and job.matches(filter)
            )
            return [job.record() for job in itertools.islice(found, max(limit, 0))]

    def _newest_first(self) -> Iterator[StoredJob]:
        # Ids are handed out in increasing order and dicts keep insertion order.
        return reversed(list(self._jobs.values()))

    async def job_count(self, *, filter: JobFilter) -> int:
        """How many jobs match."""
        with self._lock:
            return sum(1 for job in self._jobs.values() if job.matches(filter))

    async def job_next_due_in(
        self, *, queues: Sequence[str] | None, now: datetime | None = None
    ) -> float | None:
        """Seconds until the earliest scheduled job is due."""
        wanted = None if queues is None else frozenset(queues)
        with self._lock:
            earliest = min(
                (
                    job.run_at
                    for job in self._jobs.values()
                    if job.state is JobState.SCHEDULED and (wanted is None or job.queue in wanted)
                ),
                default=None,
            )
        if earliest is None:
            return None
        return max(0.0, (earliest - utc(now)).total_seconds())

    async def queue_stats(
        self, *, tenant: str | None = None, now: datetime | None = None
    ) -> list[QueueStats]:
        """Counts per state (every state, zeros included) for each queue with jobs, due
        scheduled jobs counted as queued."""
        moment = utc(now)
        counts: dict[str, dict[JobState, int]] = {}
        oldest: dict[str, datetime] = {}
        with self._lock:
            for job in self._jobs.values():
                if not job.visible_to(tenant):
                    continue
                per_state = counts.setdefault(job.queue, dict.fromkeys(JobState, 0))
                ready = job.state is JobState.QUEUED or (
                    job.state is JobState.SCHEDULED and job.run_at <= moment
                )
                per_state[JobState.QUEUED if ready else job.state] += 1
                if ready:
                    oldest[job.queue] = min(oldest.get(job.queue, job.run_at), job.run_at)
        return [
            QueueStats(queue=queue, counts=counts[queue], oldest_queued_at=oldest.get(queue))
            for queue in sorted(counts)
        ]

    # -- maintenance -----------------------------------------------------------------

    async def job_reclaim_expired(
        self, *, now: datetime | None = None, ttl: float | None = None
    ) -> ReclaimResult:
        """Requeue (or fail, or cancel when asked to) jobs whose lease expired."""
        moment = utc(now)
        reclaimed: list[ReclaimedJob] = []
        with self._lock:
            # A copy: ending a job may insert others (its webhook delivery).
            for job in list(self._jobs.values()):
                if job.state is not JobState.RUNNING or job.lease_expires_at is None:
                    continue
                if job.lease_expires_at >= moment:
                    continue
                if job.cancel_requested:
                    job.finish(JobState.CANCELLED, moment, ttl)
                    self._ended(job)
                else:
                    job.error = JobError(
                        type=LeaseExpiredError.__name__,
                        message=(
                            f"worker {job.worker_id!r} stopped renewing its lease on attempt "
                            f"{job.attempt} (expired {job.lease_expires_at.isoformat()})"
                        ),
                    )
                    if job.attempt >= job.max_attempts:
                        job.finish(JobState.FAILED, moment, ttl)
                        self._ended(job)
                    else:
                        job.state = JobState.QUEUED
                        job.drop_lease()
                reclaimed.append(
                    ReclaimedJob(
                        id=job.id,
                        state=job.state,
                        queue=job.queue,
                        task=job.task,
                        tenant=job.tenant,
                    )
                )
        return ReclaimResult(tuple(sorted(reclaimed, key=lambda job: job.id)))

    async def job_promote_scheduled(self, *, now: datetime | None = None) -> int:
        """Mark due scheduled jobs queued."""
        moment = utc(now)
        promoted = 0
        with self._lock:
            for job in self._jobs.values():
                if job.state is JobState.SCHEDULED and job.run_at <= moment:
                    job.state = JobState.QUEUED
                    promoted += 1
        return promoted

    async def job_prune(self, *, now: datetime | None = None, limit: int = 10_000) -> int:
        """Delete up to ``limit`` expired final jobs, longest expired first."""
        moment = utc(now)
        with self._lock:
            expired = sorted(
                (
                    job
                    for job in self._jobs.values()
                    if job.state in FINAL_STATES
                    and job.expires_at is not None
                    # Due at its expiry, as in the SQL stores (expires_at <= now).
                    and job.expires_at <= moment
                ),
                key=lambda job: (job.expires_at, job.id),
            )[: max(limit, 0)]
            for job in expired:
                del self._jobs[job.id]
        return len(expired)

    async def job_purge(self, *, filter: JobFilter) -> int:
        """Delete final jobs matching ``filter``."""
        with self._lock:
            doomed = [
                job.id
                for job in self._jobs.values()
                if job.state in FINAL_STATES and job.matches(filter)
            ]
            for job_id in doomed:
                del self._jobs[job_id]
        return len(doomed)
