"""The SQLite store: one file, shared safely by every process on the machine."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from workhorse.backends._records import listing
from workhorse.backends.base import (
    ApiKeyRecord,
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
    ReclaimResult,
    Wanted,
    WorkerInfo,
    WorkerRecord,
)
from workhorse.backends.sqlite import (
    api_keys,
    dashboard_sessions,
    job_reads,
    job_writes,
    schema,
    workers,
)
from workhorse.backends.sqlite.config import SQLiteSettings, parse_settings
from workhorse.backends.sqlite.connection import Database
from workhorse.backends.sqlite.failures import is_busy
from workhorse.backends.sqlite.limits import SQLiteLimits
from workhorse.backends.sqlite.rows import (
    claimed_jobs,
    clock,
    insert_params,
    job_record,
    to_epoch,
)
from workhorse.backends.sqlite.scheduling import SQLiteSchedules
from workhorse.backends.sqlite.statements import (
    QUERIES,
    claim_sql,
    due_query,
    job_filter,
)
from workhorse.backends.sqlite.stats import SQLiteStats
from workhorse.backends.sqlite.watch import watch_data_version
from workhorse.backends.sqlite.webhooks import SQLiteWebhooks
from workhorse.backends.sqlite.workflows import SQLiteWorkflows
from workhorse.errors import ConfigurationError
from workhorse.jobs import JobRecord

INLINE_INSERT_MAX = 16
"""Jobs an enqueue may insert on the caller's thread (see ``inline``); larger batches
take long enough to belong on the connection thread."""


class SQLiteBackend(
    SQLiteSchedules, SQLiteLimits, SQLiteWebhooks, SQLiteWorkflows, SQLiteStats, Backend
):
    """Jobs in a SQLite file (``sqlite:///relative/path.db`` or
    ``sqlite:////absolute/path.db``), in write-ahead-log mode so readers never wait.

    Options, in the URL's query or as keywords:

    - ``synchronous``: ``full`` (default) fsyncs every durable commit before it returns,
      so a job whose enqueue returned survives a power loss (the fsync follows the
      commit, so workers may see the job a moment before it is on disk). ``normal``
      survives a crash of the process but may lose the last commits on a power loss or
      kernel panic; in exchange a single commit skips its fsync, which makes one-job-at-
      a-time enqueues several times faster (batched and concurrent writes share commits,
      so they gain much less). Either way, a worker's own bookkeeping (claims,
      heartbeats, progress, outcomes) commits without an fsync: the next durable
      commit's fsync covers it, and a power loss before then only makes those jobs run
      again, as after a killed worker.
    - ``busy_timeout`` (seconds, default 5): how long SQLite waits for another
      connection's write lock before the backend retries on its own.
    - ``lock_timeout`` (seconds, default 120): how long a write keeps retrying a locked
      database before raising ``BackendUnavailableError``.
    - ``watch_interval`` (seconds, default 0.01): without inotify (not Linux), how often
      ``watch()`` checks ``PRAGMA data_version`` for commits by other processes. On
      Linux it sleeps until the database's files are written instead.

    Every call runs on the instance's own thread with its own connection, so one
    instance may serve several event loops. ``connect()`` creates the file's folder but
    not the schema: call ``migrate()``.
    """

    capabilities = Capabilities(
        change_feed=True, transactional_enqueue=False, shared_across_processes=True
    )
    shared_across_loops = True

    def __init__(self, url: str, **options: Any) -> None:
        self.url = url
        self.settings: SQLiteSettings = parse_settings(url, options)
        self._db = Database(self.settings)

    # -- lifecycle -------------------------------------------------------------------

    async def absent(self) -> str | None:
        """``'<path>' does not exist`` when the database file does not exist yet."""
        if await asyncio.to_thread(os.path.exists, self.settings.path):
            return None
        return f"{self.settings.path!r} does not exist"

    async def connect(self) -> None:
        """Open the connection (idempotent)."""
        await self._db.open()

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        await self._db.close()

    async def migrate(self) -> list[str]:
        """Apply pending migrations; concurrent migrators take turns."""
        return await self._db.write(schema.apply_pending)

    def migration_sql(self, *, after: int = 0) -> str:
        """The migrations numbered above ``after`` and the rows recording them, as one
        script."""
        return schema.migration_sql(after=after)

    def error_is_transient(self, exc: BaseException) -> bool:
        """Also a lock held by another connection ("database is locked")."""
        return super().error_is_transient(exc) or is_busy(exc)

    async def watch(
        self, wake: Callable[[str | None], None], *, wanted: Wanted | None = None
    ) -> None:
        """Call ``wake(None)`` after commits by other connections, until cancelled; rests
        while ``wanted`` is clear (every write of the file would wake its thread)."""
        await watch_data_version(self.settings, wake, wanted)

    # -- jobs: writes ------------------------------------------------------------------

    async def job_insert_many(
        self, jobs: Sequence[NewJob], *, connection: Any = None, now: datetime | None = None
    ) -> list[InsertedJob]:
        """Insert atomically; concurrent writes share one transaction (group commit)."""
        if connection is not None:
            raise ConfigurationError(
                "the SQLite store cannot enqueue inside your own transaction "
                "(capabilities.transactional_enqueue is False): use PostgreSQL for that"
            )
        if not jobs:
            return []
        at = clock(now)
        batch = [insert_params(job, at) for job in jobs]
        inline = len(batch) <= INLINE_INSERT_MAX
        return await self._db.write(partial(job_writes.insert, batch=batch), inline=inline)

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
        """Claim due jobs in one UPDATE; an idle claim costs one index read, no lock."""
        if limit <= 0 or (queues is not None and not queues):
            return []
        if job_ids is not None and not job_ids:
            return []
        due, params = due_query(queues, job_ids)
        params.update(now=clock(now), worker_id=worker_id, lease_seconds=lease_seconds)
        claim = partial(job_writes.claim, sql=claim_sql(due), params={**params, "limit": limit})
        # The probe is the claim's own candidate query, cut at one row.
        rows = await self._db.write_if(
            due, {**params, "limit": 1}, claim, durable=False, inline=True
        )
        return claimed_jobs(rows) if rows else []

    async def job_heartbeat(
        self, *, worker_id: str, leases: Sequence[Lease], lease_seconds: float
    ) -> HeartbeatReply:
        """Extend held leases in one statement."""
        if not leases:
            return HeartbeatReply()
        expires_at = time.time() + lease_seconds
        return await self._db.write(
            partial(job_writes.heartbeat, leases=leases, expires_at=expires_at), durable=False
        )

    async def job_set_progress(self, updates: Sequence[ProgressUpdate]) -> None:
        """Record progress of running jobs in one transaction."""
        if updates:
            await self._db.write(partial(job_writes.set_progress, updates=updates), durable=False)

    async def job_complete_many(
        self, outcomes: Sequence[Outcome], *, now: datetime | None = None
    ) -> list[bool]:
        """End attempts in one transaction."""
        if not outcomes:
            return []
        rows = job_writes.outcome_rows(outcomes)
        return await self._db.write(
            partial(job_writes.complete, rows=rows, now=clock(now)), durable=False
        )

    async def job_release(self, leases: Sequence[Lease]) -> int:
        """Requeue held jobs without counting the attempt, in one transaction."""
        if not leases:
            return 0
        return await self._db.write(
            partial(job_writes.release, leases=leases, now=time.time()), durable=False
        )

    async def job_cancel(self, *, job_id: int, tenant: str | None = None) -> JobRecord | None:
        """Cancel a waiting job, or ask a running one to stop."""
        return await self._db.write(
            partial(job_writes.cancel, job_id=job_id, tenant=tenant, now=time.time())
        )

    async def job_retry(
        self, *, job_id: int, tenant: str | None = None, now: datetime | None = None
    ) -> JobRecord | None:
        """Send a failed or cancelled job back to the queue."""
        return await self._db.write(
            partial(job_writes.retry, job_id=job_id, tenant=tenant, now=clock(now))
        )

    async def job_delete(self, *, job_id: int, tenant: str | None = None) -> bool:
        """Delete a final job."""
        return await self._db.write(partial(job_writes.delete, job_id=job_id, tenant=tenant))

    # -- jobs: reads -------------------------------------------------------------------

    async def job_get(self, *, job_id: int, tenant: str | None = None) -> JobRecord | None:
        """One job, or None."""
        return await self._db.read(partial(job_reads.get, job_id=job_id, tenant=tenant))

    async def job_list(
        self, *, filter: JobFilter, limit: int = 50, before_id: int | None = None
    ) -> list[JobRecord]:
        """Matching jobs, newest first; a row that does not decode is left out."""

        def fetch(wanted: int, cursor: int | None) -> Awaitable[list[sqlite3.Row]]:
            return self._db.read(
                partial(job_reads.list_rows, flt=filter, limit=wanted, before_id=cursor)
            )

        return await listing(fetch, job_record, limit=limit, before_id=before_id)

    async def job_count(self, *, filter: JobFilter) -> int:
        """How many jobs match."""
        return await self._db.read(partial(job_reads.count, flt=filter))

    async def job_next_due_in(
        self, *, queues: Sequence[str] | None, now: datetime | None = None
    ) -> float | None:
        """Seconds until the earliest scheduled job in ``queues`` is due."""
        return await self._db.read(partial(job_reads.next_due_in, queues=queues, now=now))

    async def queue_stats(
        self, *, tenant: str | None = None, now: datetime | None = None
    ) -> list[QueueStats]:
        """Counts per state for every queue that has jobs, due scheduled jobs as queued."""
        return await self._db.read(partial(job_reads.queue_stats, tenant=tenant, now=clock(now)))

    # -- maintenance (leader only) -----------------------------------------------------

    async def job_reclaim_expired(
        self, *, now: datetime | None = None, ttl: float | None = None
    ) -> ReclaimResult:
        """Requeue, fail or cancel running jobs whose lease expired."""
        at = clock(now)
        result = await self._db.write_if(
            QUERIES["job_expired_probe"],
            {"now": at},
            partial(job_writes.reclaim_expired, now=at, ttl=ttl),
            durable=False,
        )
        return result or ReclaimResult()

    async def job_promote_scheduled(self, *, now: datetime | None = None) -> int:
        """Mark due scheduled jobs as queued."""
        params = {"now": clock(now)}
        promoted = await self._db.write_if(
            QUERIES["job_promote_probe"],
            params,
            lambda conn: conn.execute(QUERIES["job_promote_scheduled"], params).rowcount,
            durable=False,
        )
        return promoted or 0

    async def job_prune(self, *, now: datetime | None = None, limit: int = 10_000) -> int:
        """Delete up to ``limit`` final jobs whose expiry has passed."""
        params = {"now": clock(now), "limit": limit}
        pruned = await self._db.write_if(
            QUERIES["job_prune_probe"],
            params,
            lambda conn: conn.execute(QUERIES["job_prune"], params).rowcount,
            durable=False,
        )
        return pruned or 0

    async def job_purge(self, *, filter: JobFilter) -> int:
        """Delete the final jobs ``filter`` matches."""
        sql, params = job_filter("job_purge", filter)
        return await self._db.write(lambda conn: conn.execute(sql, params).rowcount)

    async def leader_attempt_elect(
        self, *, worker_id: str, ttl: float, now: datetime | None = None
    ) -> bool:
        """Become or stay the leader for ``ttl`` seconds unless another worker leads."""
        return await self._db.write(
            partial(workers.elect, worker_id=worker_id, ttl=ttl, now=clock(now)), durable=False
        )

    async def leader_resign(self, *, worker_id: str) -> None:
        """Give up leadership if held."""
        await self._db.write(partial(workers.resign, worker_id=worker_id), durable=False)

    # -- workers -----------------------------------------------------------------------

    async def worker_register(self, *, worker: WorkerInfo) -> None:
        """Announce a worker."""
        await self._db.write(
            partial(workers.register, worker=worker, now=time.time()), durable=False
        )

    async def worker_heartbeat(self, *, worker_id: str, running: int) -> bool:
        """Record that the worker lives; True if it was asked to stop."""
        return await self._db.write(
            partial(workers.heartbeat, worker_id=worker_id, running=running, now=time.time()),
            durable=False,
        )

    async def worker_deregister(self, *, worker_id: str) -> None:
        """Remove the worker's row."""
        await self._db.write(partial(workers.deregister, worker_id=worker_id), durable=False)

    async def worker_list(self) -> list[WorkerRecord]:
        """Every registered worker, oldest first."""
        return await self._db.read(workers.list_workers)

    async def worker_request_stop(self, *, worker_id: str | None = None) -> int:
        """Ask one worker, or all, to stop."""
        return await self._db.write(partial(workers.request_stop, worker_id=worker_id))

    async def worker_prune(self, *, older_than: float, now: datetime | None = None) -> int:
        """Delete workers silent for more than ``older_than`` seconds."""
        cutoff = clock(now) - older_than
        return await self._db.write(partial(workers.prune, cutoff=cutoff), durable=False)

    # -- API keys (HTTP API and dashboard) -------------------------------------------

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
        """Store a key; ``ValueError`` if its id or hash is taken."""
        return await self._db.write(
            partial(
                api_keys.insert,
                id=id,
                key_hash=key_hash,
                name=name,
                tenant=tenant,
                admin=admin,
                read_only=read_only,
                now=clock(now),
            )
        )

    async def api_key_get(self, *, key_hash: str) -> ApiKeyRecord | None:
        """The key with this hash, revoked or not."""
        return await self._db.read(partial(api_keys.get, key_hash=key_hash))

    async def api_key_list(self, *, include_revoked: bool = False) -> list[ApiKeyRecord]:
        """Keys, oldest first."""
        return await self._db.read(partial(api_keys.list_keys, include_revoked=include_revoked))

    async def api_key_revoke(self, *, key_id: str, now: datetime | None = None) -> bool:
        """Mark a live key revoked."""
        return await self._db.write(partial(api_keys.revoke, key_id=key_id, now=clock(now)))

    # -- dashboard sessions ------------------------------------------------------------

    async def session_revoke(
        self, *, session_id: str, expires_at: datetime, now: datetime | None = None
    ) -> None:
        """Remember that a session ended; forget those expired by ``now``."""
        await self._db.write(
            partial(
                dashboard_sessions.revoke,
                session_id=session_id,
                expires_at=to_epoch(expires_at),
                now=clock(now),
            )
        )

    async def session_revoked(self, *, session_id: str) -> bool:
        """True if the session ended."""
        return await self._db.read(partial(dashboard_sessions.revoked, session_id=session_id))
