"""The PostgreSQL store: many workers on many machines sharing one database.

Claims take rows with ``FOR UPDATE SKIP LOCKED`` so concurrent workers never wait on
or share a job; all time is the database clock; inserts announce new work with NOTIFY
and can join a caller's own transaction. The SQL lives in ``queries.sql``.

Each call says whether it may be repeated when its connection dies under it (the server
may have committed before the reply was lost): reads and writes whose repeat changes
nothing (a heartbeat, a cancel) are; claims, outcomes and releases find out what they did
(``recovery.py``); other writes (inserts, retries, deletes, and writes that report how
many rows they changed) raise :class:`~workhorse.errors.BackendUnavailableError` saying
the outcome is unknown, for the caller to decide.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import DictRow

from workhorse.backends._records import listing
from workhorse.backends._sql import Migration
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
    ReclaimedJob,
    ReclaimResult,
    Wanted,
    WorkerInfo,
    WorkerRecord,
)
from workhorse.backends.postgres import api_keys, dashboard_sessions
from workhorse.backends.postgres.config import parse_config
from workhorse.backends.postgres.inserting import insert_jobs
from workhorse.backends.postgres.limits import PostgresLimits
from workhorse.backends.postgres.listener import Listener
from workhorse.backends.postgres.pool import Connection, Pool, first_line
from workhorse.backends.postgres.records import (
    claimed_job,
    job_record,
    outcomes_json,
    worker_record,
)
from workhorse.backends.postgres.recovery import (
    claim_recovery,
    lease_end_recovery,
    new_claim_token,
    statement,
)
from workhorse.backends.postgres.scheduling import PostgresSchedules
from workhorse.backends.postgres.sessions import AsyncConnSession
from workhorse.backends.postgres.statements import Statements
from workhorse.backends.postgres.stats import PostgresStats
from workhorse.backends.postgres.transactional import caller_session
from workhorse.backends.postgres.webhooks import PostgresWebhooks
from workhorse.backends.postgres.workflows import PostgresWorkflows
from workhorse.errors import ConfigurationError, JobStateError
from workhorse.jobs import JobRecord, JobState
from workhorse.serialization import dumps

_OUTCOME_STATES = frozenset(
    {JobState.COMPLETED, JobState.SCHEDULED, JobState.FAILED, JobState.CANCELLED}
)

WORKER_SERVICES = 5
"""Connections a worker's services may hold at once: its claim loop, completer,
heartbeat, maintenance and progress reporter (LISTEN has a connection of its own)."""
JOB_HEADROOM = 10
"""At most this many more per worker, one per job slot, for tasks that enqueue or read
jobs through the app while they run."""


def worker_connections(concurrency: int) -> int:
    """The pooled connections a worker running ``concurrency`` jobs reserves."""
    return WORKER_SERVICES + min(concurrency, JOB_HEADROOM)


class PostgresBackend(
    PostgresSchedules, PostgresLimits, PostgresWebhooks, PostgresWorkflows, PostgresStats, Backend
):
    """Jobs in a PostgreSQL schema (``?schema=name`` in the URL, ``workhorse`` by
    default). Options (keywords, or URL query parameters for the first four): ``schema``,
    ``min_size``/``max_size`` of the connection pool, ``timeout`` (seconds to wait for a
    connection), ``connect_timeout``, ``application_name``.

    Without ``max_size`` the pool holds up to 10 connections, or more while workers run
    in this process: each registered worker reserves :func:`worker_connections` (its
    services plus one per job slot, up to :data:`JOB_HEADROOM`). Connections open only
    when used."""

    capabilities = Capabilities(
        change_feed=True, transactional_enqueue=True, shared_across_processes=True
    )

    def __init__(self, url: str, **options: Any) -> None:
        self.url = url
        self._config = parse_config(url, options)
        self._sql = Statements(self._config.schema)
        self._pool = Pool(self._config)

    @property
    def schema(self) -> str:
        """The PostgreSQL schema holding the workhorse tables."""
        return self._sql.schema

    @property
    def max_connections(self) -> int:
        """The most pooled connections this store opens now (see the class doc)."""
        return self._pool.max_size

    # -- lifecycle -------------------------------------------------------------------

    async def absent(self) -> str | None:
        """``schema '<name>' does not exist in PostgreSQL at host:port/db`` when the
        schema does not exist yet; looked up on a connection of its own, so that a
        server that does not answer fails at once with its reason (see
        :meth:`Pool.fetch_alone`)."""
        (row,) = await self._pool.fetch_alone(self._sql["schema_present"], {"schema": self.schema})
        if row["present"]:
            return None
        return f"schema {self.schema!r} does not exist in PostgreSQL at {self._config.target}"

    async def connect(self) -> None:
        await self._pool.open()

    async def close(self) -> None:
        await self._pool.close()

    async def migrate(self) -> list[str]:
        """Apply the pending migrations. An up-to-date schema is only read (a role
        with USAGE and DML privileges is enough); DDL runs under the migration lock,
        and only when something is pending."""
        pending = await self._pool.run(self._pending, idempotent=True)
        if not pending:
            return []
        try:
            return await self._pool.run(self._migrate)
        except psycopg.errors.InsufficientPrivilege as exc:
            names = ", ".join(f"{m.version:04d}_{m.name}" for m in pending)
            raise ConfigurationError(
                f"the PostgreSQL schema {self.schema!r} needs migration(s) {names}, which "
                f"this role may not apply ({first_line(exc)}): run `workhorse migrate` as "
                "the schema's owner (or apply `workhorse migrate --print`), and give roles "
                "that only enqueue and work auto_migrate=False"
            ) from None

    async def _pending(self, conn: Connection) -> list[Migration]:
        session = AsyncConnSession(conn)
        (table,) = await session.fetch(self._sql["migration_table"], {})
        if not table["present"]:
            return self._sql.migrations()
        done = {row["version"] for row in await session.fetch(self._sql["migration_versions"], {})}
        return [m for m in self._sql.migrations() if m.version not in done]

    async def _migrate(self, conn: Connection) -> list[str]:
        applied: list[str] = []
        async with conn.transaction():
            # Concurrent migrators queue here; each then sees what the others applied.
            await conn.execute(
                self._sql["migration_lock"], {"key": f"workhorse.migrate:{self.schema}"}
            )
            await conn.execute(self._sql["migration_bootstrap"], prepare=False)
            for migration in await self._pending(conn):
                await conn.execute(migration.sql, prepare=False)
                await conn.execute(
                    self._sql["migration_record"],
                    {"version": migration.version, "name": migration.name},
                )
                applied.append(f"{migration.version:04d}_{migration.name}")
        return applied

    def migration_sql(self, *, after: int = 0) -> str:
        return self._sql.migration_script(after=after)

    def error_is_transient(self, exc: BaseException) -> bool:
        """Also any ``OperationalError``: a lost connection, a server shutting down, a
        deadlock or serialization failure, a lock or statement timeout. Data the server
        refuses (``DataError``, such as a NUL character in text) is not transient."""
        return super().error_is_transient(exc) or isinstance(exc, psycopg.OperationalError)

    async def watch(
        self, wake: Callable[[str | None], None], *, wanted: Wanted | None = None
    ) -> None:
        """Wake on the NOTIFY of enqueues and retries (they cost nothing to receive,
        ``wanted`` or not)."""
        await self.listener().run(wake)

    def listener(self) -> Listener:
        """A listener on this store's NOTIFY channels, as ``watch`` runs it (its
        ``connected`` event tells when LISTEN is in effect)."""
        return Listener(self._config.conninfo, (self._sql.channel, self._sql.next_channel))

    # -- jobs: writes ------------------------------------------------------------------

    async def job_insert_many(
        self, jobs: Sequence[NewJob], *, connection: Any = None, now: datetime | None = None
    ) -> list[InsertedJob]:
        if not jobs:
            return []
        if connection is not None:
            return await insert_jobs(await caller_session(connection), self._sql, jobs, now)
        # Never repeated: had the connection died mid-statement, the jobs might exist.
        return await self._pool.run(
            lambda conn: insert_jobs(AsyncConnSession(conn), self._sql, jobs, now)
        )

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
        if limit <= 0 or (queues is not None and not queues) or job_ids == []:
            return []
        token = new_claim_token()
        params: dict[str, Any] = {
            "worker_id": worker_id,
            "limit": limit,
            "lease_seconds": float(lease_seconds),
            "now": now,
            "claim": token,
        }
        if job_ids is not None:
            query = self._sql.compose("claim_jobs", pick=["pick_named"])
            params["job_ids"] = list(job_ids)
            params["queues"] = None if queues is None else list(queues)
        else:
            if queues is not None:
                params["queues"] = list(dict.fromkeys(queues))
            query = self._sql.picking(
                "claim_jobs", queues=params.get("queues"), limit=limit, pick=["pick_waiting"]
            )
        claim = statement(query, params)
        rows = await self._pool.run(
            claim,
            recover=claim_recovery(self._sql, worker_id=worker_id, claim_token=token, claim=claim),
        )
        return [claimed_job(row) for row in rows]

    async def job_heartbeat(
        self, *, worker_id: str, leases: Sequence[Lease], lease_seconds: float
    ) -> HeartbeatReply:
        if not leases:
            return HeartbeatReply()
        rows = await self._pool.fetch(
            self._sql["heartbeat"],
            {
                "ids": [lease.job_id for lease in leases],
                "tokens": [lease.token for lease in leases],
                "lease_seconds": float(lease_seconds),
            },
            idempotent=True,
        )
        held = {row["id"] for row in rows}
        return HeartbeatReply(
            lost=frozenset(lease.job_id for lease in leases) - held,
            cancel_requested=frozenset(row["id"] for row in rows if row["cancel_requested"]),
        )

    async def job_set_progress(self, updates: Sequence[ProgressUpdate]) -> None:
        if not updates:
            return
        await self._pool.fetch(
            self._sql["set_progress"],
            {
                "ids": [u.job_id for u in updates],
                "tokens": [u.lease_token for u in updates],
                "progress": [float(u.progress) for u in updates],
                "messages": [u.message for u in updates],
            },
            idempotent=True,
        )

    async def job_complete_many(
        self, outcomes: Sequence[Outcome], *, now: datetime | None = None
    ) -> list[bool]:
        if not outcomes:
            return []
        for o in outcomes:
            if o.state not in _OUTCOME_STATES:
                raise ValueError(f"an attempt cannot end {o.state}")
        ids = [o.job_id for o in outcomes]
        tokens = [o.lease_token for o in outcomes]
        complete = statement(
            self._sql["complete_jobs"], {"now": now, "outcomes": outcomes_json(outcomes)}
        )
        rows = await self._pool.run(
            complete, recover=lease_end_recovery(self._sql, ids, tokens, complete)
        )
        applied = {(row["id"], row["token"]) for row in rows}
        answers = []
        for o in outcomes:
            key = (o.job_id, o.lease_token)
            answers.append(key in applied)
            applied.discard(key)  # one lease ends one attempt once
        return answers

    async def job_release(self, leases: Sequence[Lease]) -> int:
        if not leases:
            return 0
        ids = [lease.job_id for lease in leases]
        tokens = [lease.token for lease in leases]
        release = statement(self._sql["release_jobs"], {"ids": ids, "tokens": tokens})
        rows = await self._pool.run(
            release, recover=lease_end_recovery(self._sql, ids, tokens, release)
        )
        return len({(row["id"], row["token"]) for row in rows})

    async def job_cancel(self, *, job_id: int, tenant: str | None = None) -> JobRecord | None:
        rows = await self._pool.fetch(
            self._sql["cancel_job"], {"id": job_id, "tenant": tenant}, idempotent=True
        )
        return job_record(rows[0]) if rows else None

    async def job_retry(
        self, *, job_id: int, tenant: str | None = None, now: datetime | None = None
    ) -> JobRecord | None:
        try:
            rows = await self._pool.fetch(
                self._sql["retry_job"], {"id": job_id, "tenant": tenant, "now": now}
            )
        except psycopg.errors.UniqueViolation:
            raise JobStateError(
                f"job {job_id} cannot be retried: another live job holds its unique key"
            ) from None
        if not rows:
            return None
        row = rows[0]
        if not row["retried"]:
            if row["state"] in ("failed", "cancelled"):
                await self._refuse_retry_of_waiting_part(job_id)
            raise JobStateError(
                f"job {job_id} is {row['state']}: only failed or cancelled jobs can be retried"
            )
        return job_record(row)

    async def job_delete(self, *, job_id: int, tenant: str | None = None) -> bool:
        rows = await self._pool.fetch(self._sql["delete_job"], {"id": job_id, "tenant": tenant})
        if not rows:
            return False
        if not rows[0]["deleted"]:
            raise JobStateError(
                f"job {job_id} is {rows[0]['state']}: only finished jobs can be deleted"
            )
        return True

    # -- jobs: reads -------------------------------------------------------------------

    async def job_get(self, *, job_id: int, tenant: str | None = None) -> JobRecord | None:
        rows = await self._pool.fetch(
            self._sql["get_job"], {"id": job_id, "tenant": tenant}, idempotent=True
        )
        return job_record(rows[0]) if rows else None

    async def job_list(
        self, *, filter: JobFilter, limit: int = 50, before_id: int | None = None
    ) -> list[JobRecord]:
        async def fetch(wanted: int, cursor: int | None) -> list[DictRow]:
            query, params = self._sql.filtered("list_jobs", filter, before_id=cursor)
            params["limit"] = wanted
            return await self._pool.fetch(query, params, idempotent=True)

        return await listing(fetch, job_record, limit=limit, before_id=before_id)

    async def job_count(self, *, filter: JobFilter) -> int:
        query, params = self._sql.filtered("count_jobs", filter)
        return int((await self._pool.fetch(query, params, idempotent=True))[0]["count"])

    async def job_next_due_in(
        self, *, queues: Sequence[str] | None, now: datetime | None = None
    ) -> float | None:
        if queues is None:
            rows = await self._pool.fetch(self._sql["next_due_in_any_queue"], {"now": now})
        else:
            rows = await self._pool.fetch(
                self._sql["next_due_in"], {"queues": list(queues), "now": now}
            )
        due_in: float | None = rows[0]["due_in"]
        return None if due_in is None else max(0.0, due_in)

    async def queue_stats(
        self, *, tenant: str | None = None, now: datetime | None = None
    ) -> list[QueueStats]:
        rows = await self._pool.fetch(
            self._sql["queue_stats"], {"tenant": tenant, "now": now}, idempotent=True
        )
        return _queue_stats(rows)

    # -- maintenance (leader only) -----------------------------------------------------

    async def job_reclaim_expired(
        self, *, now: datetime | None = None, ttl: float | None = None
    ) -> ReclaimResult:
        rows = await self._pool.fetch(
            self._sql["reclaim_expired"],
            {"now": now, "ttl": None if ttl is None else float(ttl)},
        )
        return ReclaimResult(
            tuple(
                ReclaimedJob(
                    id=row["id"],
                    state=JobState(row["state"]),
                    queue=row["queue"],
                    task=row["task"],
                    tenant=row["tenant"],
                )
                for row in rows
            )
        )

    async def job_promote_scheduled(self, *, now: datetime | None = None) -> int:
        rows = await self._pool.fetch(self._sql["promote_scheduled"], {"now": now})
        return int(rows[0]["promoted"])

    async def job_prune(self, *, now: datetime | None = None, limit: int = 10_000) -> int:
        rows = await self._pool.fetch(self._sql["prune_jobs"], {"now": now, "limit": limit})
        return int(rows[0]["deleted"])

    async def job_purge(self, *, filter: JobFilter) -> int:
        query, params = self._sql.filtered("purge_jobs", filter)
        return int((await self._pool.fetch(query, params))[0]["deleted"])

    async def leader_attempt_elect(
        self, *, worker_id: str, ttl: float, now: datetime | None = None
    ) -> bool:
        rows = await self._pool.fetch(
            self._sql["leader_attempt_elect"],
            {"worker_id": worker_id, "ttl": float(ttl), "now": now},
            idempotent=True,
        )
        return bool(rows)

    async def leader_resign(self, *, worker_id: str) -> None:
        await self._pool.fetch(
            self._sql["leader_resign"], {"worker_id": worker_id}, idempotent=True
        )

    # -- workers -----------------------------------------------------------------------

    async def worker_register(self, *, worker: WorkerInfo) -> None:
        """Register the worker, and size the pool for it (see the class doc)."""
        await self._pool.reserve(worker.id, worker_connections(worker.concurrency))
        await self._pool.fetch(
            self._sql["worker_register"],
            {
                "id": worker.id,
                "hostname": worker.hostname,
                "pid": worker.pid,
                "queues": None if worker.queues is None else dumps(list(worker.queues)),
                "concurrency": worker.concurrency,
                "meta": dumps(worker.meta, what="worker meta"),
            },
            idempotent=True,
        )

    async def worker_heartbeat(self, *, worker_id: str, running: int) -> bool:
        rows = await self._pool.fetch(
            self._sql["worker_heartbeat"], {"id": worker_id, "running": running}, idempotent=True
        )
        return bool(rows and rows[0]["stop_requested"])

    async def worker_deregister(self, *, worker_id: str) -> None:
        await self._pool.fetch(self._sql["worker_deregister"], {"id": worker_id}, idempotent=True)
        await self._pool.unreserve(worker_id)

    async def worker_list(self) -> list[WorkerRecord]:
        rows = await self._pool.fetch(self._sql["worker_list"], {}, idempotent=True)
        return [worker_record(row) for row in rows]

    async def worker_request_stop(self, *, worker_id: str | None = None) -> int:
        rows = await self._pool.fetch(
            self._sql["worker_request_stop"], {"id": worker_id}, idempotent=True
        )
        return int(rows[0]["asked"])

    async def worker_prune(self, *, older_than: float, now: datetime | None = None) -> int:
        rows = await self._pool.fetch(
            self._sql["worker_prune"], {"older_than": float(older_than), "now": now}
        )
        return int(rows[0]["pruned"])

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
        return await api_keys.insert(
            self._pool,
            self._sql,
            id=id,
            key_hash=key_hash,
            name=name,
            tenant=tenant,
            admin=admin,
            read_only=read_only,
            now=now,
        )

    async def api_key_get(self, *, key_hash: str) -> ApiKeyRecord | None:
        """The key with this hash, revoked or not."""
        return await api_keys.get(self._pool, self._sql, key_hash=key_hash)

    async def api_key_list(self, *, include_revoked: bool = False) -> list[ApiKeyRecord]:
        """Keys, oldest first."""
        return await api_keys.list_keys(self._pool, self._sql, include_revoked=include_revoked)

    async def api_key_revoke(self, *, key_id: str, now: datetime | None = None) -> bool:
        """Mark a live key revoked."""
        return await api_keys.revoke(self._pool, self._sql, key_id=key_id, now=now)

    # -- dashboard sessions ------------------------------------------------------------

    async def session_revoke(
        self, *, session_id: str, expires_at: datetime, now: datetime | None = None
    ) -> None:
        """Remember that a session ended; forget those expired by ``now``."""
        await dashboard_sessions.revoke(
            self._pool, self._sql, session_id=session_id, expires_at=expires_at, now=now
        )

    async def session_revoked(self, *, session_id: str) -> bool:
        """True if the session ended."""
        return await dashboard_sessions.revoked(self._pool, self._sql, session_id=session_id)


def _queue_stats(rows: list[DictRow]) -> list[QueueStats]:
    counts: dict[str, dict[JobState, int]] = {}
    oldest: dict[str, datetime | None] = {}
    for row in rows:
        queue = row["queue"]
        counts.setdefault(queue, dict.fromkeys(JobState, 0))[JobState(row["state"])] = row["count"]
        if row["oldest_queued_at"] is not None:
            oldest[queue] = row["oldest_queued_at"]
    return [
        QueueStats(queue=queue, counts=by_state, oldest_queued_at=oldest.get(queue))
        for queue, by_state in counts.items()
    ]
