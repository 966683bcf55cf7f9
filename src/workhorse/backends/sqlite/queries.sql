-- Named queries of the SQLite backend (same names as the PostgreSQL backend's file).
-- Timestamps are REAL unix epoch seconds. A query holding "{filter}" is a template:
-- statements.py fills the slot with "where_*" fragments joined by AND, or with the
-- query its comment names.

-- name: job_insert
-- Positional, the hot path; the column list gives the order. Every insert of a job
-- takes its id from workhorse_next_job_id, so that no id is ever handed out twice.
INSERT INTO workhorse_jobs (
    id, task, queue, state, priority, args, kwargs, run_at, max_attempts, timeout,
    tenant, labels, unique_key, parent_id, meta, created_at
) VALUES ((SELECT id FROM workhorse_next_job_id), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)

-- name: job_insert_plain
-- job_insert for a job that leaves timeout, tenant, labels, unique_key, parent_id and
-- meta at their defaults (nearly every enqueue): six parameters fewer to bind, four of
-- them NULLs, which sqlite3 binds through a Python call each (see binding.py).
INSERT INTO workhorse_jobs (
    id, task, queue, state, priority, args, kwargs, run_at, max_attempts, created_at
) VALUES ((SELECT id FROM workhorse_next_job_id), ?, ?, ?, ?, ?, ?, ?, ?, ?)

-- name: job_insert_next
-- job_insert for the jobs that follow one job_insert inserted in the same transaction:
-- SQLite numbers them on from the largest id present. statements.insert_rows_sql repeats
-- its VALUES row for multi-row inserts.
INSERT INTO workhorse_jobs (
    task, queue, state, priority, args, kwargs, run_at, max_attempts, timeout,
    tenant, labels, unique_key, parent_id, meta, created_at
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)

-- name: job_insert_unique
-- job_insert's columns, then unique_states (the bits of the states that hold the key).
INSERT INTO workhorse_jobs (
    id, task, queue, state, priority, args, kwargs, run_at, max_attempts, timeout,
    tenant, labels, unique_key, parent_id, meta, created_at, unique_states
) VALUES ((SELECT id FROM workhorse_next_job_id), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT DO NOTHING
RETURNING id

-- name: job_unique_holder
-- The condition is the unique index's, word for word: SQLite uses a partial index only
-- for a query that repeats its WHERE terms.
SELECT id, state FROM workhorse_jobs
WHERE unique_key = :unique_key
  AND unique_key IS NOT NULL
  AND (unique_states & CASE state
                           WHEN 'scheduled' THEN 1 WHEN 'queued' THEN 2
                           WHEN 'blocked' THEN 4 WHEN 'running' THEN 8
                           WHEN 'completed' THEN 16 WHEN 'failed' THEN 32
                           WHEN 'cancelled' THEN 64 ELSE 0 END) <> 0

-- name: job_replace_waiting
-- A duplicate with on_duplicate = 'replace': a holder that still waits takes its arguments,
-- priority and run time.
UPDATE workhorse_jobs
SET args = :args,
    kwargs = :kwargs,
    priority = :priority,
    run_at = :run_at,
    state = CASE WHEN :run_at > :now THEN 'scheduled' ELSE 'queued' END
WHERE id = :id AND state IN ('scheduled', 'queued')
RETURNING state

-- name: job_due
-- Template: the ids a claim takes, in claim order (with :limit 1, the cheap probe
-- before a claim). The slot takes candidate lists (job_due_queued, job_due_scheduled)
-- joined by UNION ALL; each is already short, in order, and cut at :limit.
SELECT id FROM workhorse_jobs
WHERE id IN ({filter})
ORDER BY priority DESC, run_at, id
LIMIT :limit

-- name: job_due_queued
-- Template: queued jobs, walked in claim order along a claim index.
SELECT id FROM (
    SELECT id FROM workhorse_jobs
    WHERE state = 'queued' AND {filter}
    ORDER BY priority DESC, run_at, id
    LIMIT :limit
)

-- name: job_due_scheduled
-- Template: due scheduled jobs that promotion has not made queued yet (few).
SELECT id FROM (
    SELECT id FROM workhorse_jobs
    WHERE state = 'scheduled' AND run_at <= :now AND {filter}
    ORDER BY priority DESC, run_at, id
    LIMIT :limit
)

-- name: job_due_ids
-- Template: the named jobs, due or not (eager mode).
SELECT id FROM workhorse_jobs
WHERE state IN ('queued', 'scheduled')
  AND id IN (SELECT value FROM json_each(:job_ids))
  AND {filter}
ORDER BY priority DESC, run_at, id
LIMIT :limit

-- name: job_claim
-- Template: the slot takes the whole job_due query.
UPDATE workhorse_jobs
SET state = 'running',
    attempt = attempt + 1,
    worker_id = :worker_id,
    lease_token = lower(hex(randomblob(12))),
    lease_expires_at = :now + :lease_seconds,
    started_at = :now
WHERE id IN ({filter})
RETURNING id, task, queue, args, kwargs, attempt, max_attempts, lease_token,
          priority, timeout, tenant, meta, run_at, error_type = 'LeaseExpiredError'

-- name: job_heartbeat
UPDATE workhorse_jobs
SET lease_expires_at = :lease_expires_at
FROM (
    SELECT json_extract(value, '$[0]') AS job_id, json_extract(value, '$[1]') AS token
    FROM json_each(:leases)
) AS lease
WHERE workhorse_jobs.id = lease.job_id
  AND workhorse_jobs.lease_token = lease.token
  AND workhorse_jobs.state = 'running'
RETURNING id, cancel_requested

-- name: job_set_progress
UPDATE workhorse_jobs
SET progress = :progress, progress_message = :message
WHERE id = :job_id AND lease_token = :lease_token AND state = 'running'

-- name: job_complete
-- :outcomes is a JSON array of [job_id, lease_token, state, result, error_type,
-- error_message, error_traceback, retry_delay, ttl, progress, progress_message]; a null
-- progress leaves the stored one. A retry (scheduled) of a job someone
-- asked to cancel ends it cancelled instead; an outcome without an error keeps the error
-- of an earlier attempt.
UPDATE workhorse_jobs
SET state = CASE WHEN new_state = 'scheduled' AND cancel_requested THEN 'cancelled'
                 ELSE new_state END,
    result = new_result,
    error_type = CASE WHEN new_error_type IS NULL THEN error_type ELSE new_error_type END,
    error_message = CASE WHEN new_error_type IS NULL THEN error_message
                         ELSE new_error_message END,
    error_traceback = CASE WHEN new_error_type IS NULL THEN error_traceback
                           ELSE new_error_traceback END,
    run_at = CASE WHEN new_state = 'scheduled' THEN :now + retry_delay ELSE run_at END,
    finished_at = CASE WHEN new_state = 'scheduled' AND NOT cancel_requested THEN NULL
                       ELSE :now END,
    expires_at = CASE WHEN new_state = 'scheduled' AND NOT cancel_requested THEN NULL
                      ELSE :now + ttl END,
    progress = coalesce(new_progress, progress),
    progress_message = CASE WHEN new_progress IS NULL THEN progress_message
                            ELSE new_progress_message END,
    lease_token = NULL,
    lease_expires_at = NULL
FROM (
    SELECT json_extract(value, '$[0]') AS job_id,
           json_extract(value, '$[1]') AS token,
           json_extract(value, '$[2]') AS new_state,
           json_extract(value, '$[3]') AS new_result,
           json_extract(value, '$[4]') AS new_error_type,
           json_extract(value, '$[5]') AS new_error_message,
           json_extract(value, '$[6]') AS new_error_traceback,
           json_extract(value, '$[7]') AS retry_delay,
           json_extract(value, '$[8]') AS ttl,
           json_extract(value, '$[9]') AS new_progress,
           json_extract(value, '$[10]') AS new_progress_message
    FROM json_each(:outcomes)
) AS outcome
WHERE workhorse_jobs.id = outcome.job_id
  AND workhorse_jobs.lease_token = outcome.token
  AND workhorse_jobs.state = 'running'
RETURNING id

-- name: job_release
-- A job someone asked to cancel ends cancelled instead of waiting for another run.
UPDATE workhorse_jobs
SET state = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'queued' END,
    attempt = attempt - 1,
    finished_at = CASE WHEN cancel_requested THEN :now ELSE finished_at END,
    lease_token = NULL,
    lease_expires_at = NULL
WHERE id = :job_id AND lease_token = :lease_token AND state = 'running'

-- name: job_cancel
-- Waiting jobs end now; a running one is asked to stop (its worker ends it).
UPDATE workhorse_jobs
SET state = CASE WHEN state = 'running' THEN state ELSE 'cancelled' END,
    cancel_requested = CASE WHEN state = 'running' THEN 1 ELSE cancel_requested END,
    finished_at = CASE WHEN state = 'running' THEN finished_at ELSE :now END
WHERE id = :job_id
  AND (:tenant IS NULL OR tenant = :tenant)
  AND state IN ('scheduled', 'queued', 'blocked', 'running')
RETURNING *

-- name: job_retry
UPDATE workhorse_jobs
SET state = 'queued',
    run_at = :now,
    max_attempts = max(max_attempts, attempt + 1),
    result = NULL,
    error_type = NULL,
    error_message = NULL,
    error_traceback = NULL,
    progress = 0,
    progress_message = NULL,
    cancel_requested = 0,
    finished_at = NULL,
    expires_at = NULL
WHERE id = :job_id
  AND (:tenant IS NULL OR tenant = :tenant)
  AND state IN ('failed', 'cancelled')
RETURNING *

-- name: job_delete
DELETE FROM workhorse_jobs
WHERE id = :job_id
  AND (:tenant IS NULL OR tenant = :tenant)
  AND state IN ('completed', 'failed', 'cancelled')

-- name: job_get
SELECT * FROM workhorse_jobs
WHERE id = :job_id AND (:tenant IS NULL OR tenant = :tenant)

-- name: job_list
SELECT * FROM workhorse_jobs
WHERE {filter}
ORDER BY id DESC
LIMIT :limit

-- name: job_count
SELECT count(*) FROM workhorse_jobs WHERE {filter}

-- name: job_purge
DELETE FROM workhorse_jobs
WHERE state IN ('completed', 'failed', 'cancelled') AND {filter}

-- name: job_next_run_at
SELECT min(run_at) FROM workhorse_jobs WHERE state = 'scheduled' AND {filter}

-- name: queue_stats
-- A scheduled job whose run_at has come is ready (any claim takes it): it counts as
-- queued, promoted or not, and so does its wait.
SELECT queue,
       CASE WHEN state = 'scheduled' AND run_at <= :now THEN 'queued' ELSE state END AS shown,
       count(*),
       min(CASE WHEN state = 'queued' OR (state = 'scheduled' AND run_at <= :now)
                THEN run_at END)
FROM workhorse_jobs
WHERE {filter}
GROUP BY queue, shown

-- name: job_reclaim_cancel
-- Expired leases of jobs someone asked to cancel: nobody will run them again.
UPDATE workhorse_jobs
SET state = 'cancelled',
    finished_at = :now,
    expires_at = :expires_at,
    lease_token = NULL,
    lease_expires_at = NULL
WHERE state = 'running' AND lease_expires_at < :now AND cancel_requested
RETURNING id, queue, task, tenant

-- name: job_reclaim_requeue
UPDATE workhorse_jobs
SET state = 'queued',
    error_type = 'LeaseExpiredError',
    error_message = 'worker ' || quote(worker_id) || ' stopped renewing its lease on attempt '
                    || attempt,
    error_traceback = NULL,
    lease_token = NULL,
    lease_expires_at = NULL
WHERE state = 'running' AND lease_expires_at < :now AND attempt < max_attempts
RETURNING id, queue, task, tenant

-- name: job_reclaim_fail
UPDATE workhorse_jobs
SET state = 'failed',
    error_type = 'LeaseExpiredError',
    error_message = 'worker ' || quote(worker_id) || ' stopped renewing its lease on attempt '
                    || attempt,
    error_traceback = NULL,
    finished_at = :now,
    expires_at = :expires_at,
    lease_token = NULL,
    lease_expires_at = NULL
WHERE state = 'running' AND lease_expires_at < :now
RETURNING id, queue, task, tenant

-- name: job_promote_scheduled
UPDATE workhorse_jobs
SET state = 'queued'
WHERE state = 'scheduled' AND run_at <= :now

-- name: job_prune
DELETE FROM workhorse_jobs
WHERE id IN (
    SELECT id FROM workhorse_jobs
    WHERE expires_at <= :now AND state IN ('completed', 'failed', 'cancelled')
    ORDER BY expires_at
    LIMIT :limit
)

-- Fragments for the template slot, one condition each.

-- name: where_all
TRUE

-- name: where_queue
queue = :queue

-- name: where_queues
queue IN (SELECT value FROM json_each(:queues))

-- name: where_tenant
tenant = :tenant

-- name: where_states
state IN (SELECT value FROM json_each(:states))

-- name: where_task
task = :task

-- name: where_label
json_valid(labels) AND EXISTS (
    SELECT 1 FROM json_each(workhorse_jobs.labels)
    WHERE key = :label_key AND value = :label_value
)

-- name: where_created_after
created_at > :created_after

-- name: where_created_before
created_at < :created_before

-- name: where_parent
parent_id = :parent_id

-- name: where_before_id
id < :before_id

-- name: leader_elect
-- Take a vacant or expired leadership, or renew our own.
INSERT INTO workhorse_leader (name, worker_id, elected_at, expires_at)
VALUES ('maintenance', :worker_id, :now, :expires_at)
ON CONFLICT (name) DO UPDATE
SET worker_id = excluded.worker_id,
    expires_at = excluded.expires_at,
    elected_at = CASE WHEN workhorse_leader.worker_id = excluded.worker_id
                      THEN workhorse_leader.elected_at ELSE excluded.elected_at END
WHERE workhorse_leader.worker_id = excluded.worker_id
   OR workhorse_leader.expires_at <= excluded.elected_at
RETURNING worker_id

-- name: leader_resign
DELETE FROM workhorse_leader WHERE worker_id = :worker_id

-- name: worker_register
INSERT OR REPLACE INTO workhorse_workers (
    id, hostname, pid, queues, concurrency, started_at, heartbeat_at, meta
) VALUES (:id, :hostname, :pid, :queues, :concurrency, :now, :now, :meta)

-- name: worker_heartbeat
UPDATE workhorse_workers
SET heartbeat_at = :now, running = :running
WHERE id = :worker_id
RETURNING stop_requested

-- name: worker_deregister
DELETE FROM workhorse_workers WHERE id = :worker_id

-- name: worker_list
SELECT id, hostname, pid, queues, concurrency, started_at, heartbeat_at, running,
       stop_requested, meta
FROM workhorse_workers
ORDER BY started_at, id

-- name: worker_request_stop
UPDATE workhorse_workers
SET stop_requested = 1
WHERE :worker_id IS NULL OR id = :worker_id

-- name: worker_prune
DELETE FROM workhorse_workers WHERE heartbeat_at < :cutoff

-- name: last_insert_id
SELECT last_insert_rowid()

-- Probes: cheap reads that spare a write transaction (and its fsync) when idle.

-- name: job_expired_probe
SELECT 1 FROM workhorse_jobs
WHERE state = 'running' AND lease_expires_at < :now
LIMIT 1

-- name: job_promote_probe
SELECT 1 FROM workhorse_jobs
WHERE state = 'scheduled' AND run_at <= :now
LIMIT 1

-- name: job_prune_probe
SELECT 1 FROM workhorse_jobs
WHERE expires_at <= :now AND state IN ('completed', 'failed', 'cancelled')
LIMIT 1

-- name: migration_table_exists
SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'workhorse_migrations'

-- name: migration_versions
SELECT version FROM workhorse_migrations

-- name: migration_record
INSERT INTO workhorse_migrations (version, name, applied_at)
VALUES (:version, :name, (julianday('now') - 2440587.5) * 86400.0)
ON CONFLICT (version) DO NOTHING

-- name: data_version
-- Moves whenever another connection commits to the file.
PRAGMA data_version


-- name: api_key_insert
-- API keys of the HTTP API and dashboard (migration 0002): only token hashes are stored.
INSERT INTO workhorse_api_keys (id, key_hash, name, tenant, admin, read_only, created_at)
VALUES (:id, :key_hash, :name, :tenant, :admin, :read_only, :now)
RETURNING id, key_hash, name, tenant, admin, read_only, created_at, revoked_at

-- name: api_key_get
SELECT id, key_hash, name, tenant, admin, read_only, created_at, revoked_at
FROM workhorse_api_keys
WHERE key_hash = :key_hash

-- name: api_key_list
SELECT id, key_hash, name, tenant, admin, read_only, created_at, revoked_at
FROM workhorse_api_keys
WHERE :include_revoked OR revoked_at IS NULL
ORDER BY created_at, rowid

-- name: api_key_revoke
UPDATE workhorse_api_keys
SET revoked_at = :now
WHERE id = :key_id AND revoked_at IS NULL

-- name: session_prune
-- Ended dashboard sessions (migration 0006): a record outlives its session's expiry
-- for no purpose, the cookie being refused by then anyway.
DELETE FROM workhorse_session_revocations WHERE expires_at < :now

-- name: session_revoke
INSERT INTO workhorse_session_revocations (session_id, expires_at)
VALUES (:session_id, :expires_at)
ON CONFLICT (session_id) DO NOTHING

-- name: session_revoked
SELECT 1 FROM workhorse_session_revocations WHERE session_id = :session_id


-- ===== periodic jobs, limits and webhooks (issue 5, migration 0004) =====

-- name: schedule_states
SELECT name, registered_at, last_tick_at, last_job_id
FROM workhorse_schedules
WHERE name IN (SELECT value FROM json_each(:names))

-- name: schedule_unknown_probe
SELECT 1 FROM json_each(:names)
WHERE value NOT IN (SELECT name FROM workhorse_schedules)
LIMIT 1

-- name: schedule_register
INSERT INTO workhorse_schedules (name, registered_at)
SELECT value, :now FROM json_each(:names) WHERE true
ON CONFLICT (name) DO NOTHING

-- name: cron_tick_free_probe
SELECT 1 WHERE NOT EXISTS (
    SELECT 1 FROM workhorse_schedule_ticks WHERE name = :name AND tick_at = :tick_at
)

-- name: cron_tick_insert
INSERT INTO workhorse_schedule_ticks (name, tick_at, job_id, created_at)
VALUES (:name, :tick_at, :job_id, :now)
ON CONFLICT DO NOTHING
RETURNING job_id

-- name: cron_schedule_advance
INSERT INTO workhorse_schedules (name, registered_at, last_tick_at, last_job_id)
VALUES (:name, :now, :tick_at, :job_id)
ON CONFLICT (name) DO UPDATE
SET last_tick_at = excluded.last_tick_at, last_job_id = excluded.last_job_id
WHERE workhorse_schedules.last_tick_at IS NULL
   OR workhorse_schedules.last_tick_at < excluded.last_tick_at

-- name: cron_prune_ticks
DELETE FROM workhorse_schedule_ticks WHERE tick_at < :before

-- name: limit_running
-- Running jobs per limited bucket: of the queues and tasks named, and of every limit
-- key (the "limit_key" entry of a job's meta). Running jobs are few (at most the
-- workers' total concurrency) and read off workhorse_jobs_lease_idx.
SELECT 'queue:' || queue, count(*) FROM workhorse_jobs
WHERE state = 'running' AND queue IN (SELECT value FROM json_each(:queues))
GROUP BY queue
UNION ALL
SELECT 'task:' || task, count(*) FROM workhorse_jobs
WHERE state = 'running' AND task IN (SELECT value FROM json_each(:tasks))
GROUP BY task
UNION ALL
SELECT 'key:' || limit_key, count(*) FROM (
    SELECT CASE WHEN meta = '{}' OR NOT json_valid(meta) THEN NULL
                ELSE json_extract(meta, '$.limit_key') END AS limit_key
    FROM workhorse_jobs
    WHERE state = 'running'
)
WHERE limit_key IS NOT NULL
GROUP BY limit_key

-- name: limit_started
SELECT bucket, count(*) FROM workhorse_rate_windows WHERE expires_at > :now GROUP BY bucket

-- name: limit_record_start
INSERT INTO workhorse_rate_windows (bucket, started_at, expires_at)
VALUES (:bucket, :now, :now + :period)

-- name: limit_prune_starts
DELETE FROM workhorse_rate_windows WHERE expires_at <= :now

-- name: where_limit_room
-- Jobs whose queue, task and limit key (the "limit_key" entry of their meta; most
-- jobs have no meta, settled by the first test) all have room. :full_* are JSON arrays.
queue NOT IN (SELECT value FROM json_each(:full_queues))
AND task NOT IN (SELECT value FROM json_each(:full_tasks))
AND (meta = '{}' OR NOT json_valid(meta)
     OR coalesce(json_extract(meta, '$.limit_key'), '')
        NOT IN (SELECT value FROM json_each(:full_keys)))

-- name: limit_candidates
-- Template: the slot takes a job_due query; its jobs, in claim order.
SELECT id, queue, task,
       CASE WHEN meta = '{}' OR NOT json_valid(meta) THEN NULL
            ELSE json_extract(meta, '$.limit_key') END
FROM workhorse_jobs
WHERE id IN ({filter})
ORDER BY priority DESC, run_at, id

-- name: limit_picked
SELECT value FROM json_each(:picked)

-- name: webhook_secret_set
INSERT INTO workhorse_webhook_secrets (tenant, secret, created_at)
VALUES (:tenant, :secret, :now)
ON CONFLICT (tenant) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at

-- name: webhook_secret_get
SELECT secret FROM workhorse_webhook_secrets WHERE tenant = :tenant

-- name: webhook_delivery_insert
INSERT INTO workhorse_webhook_deliveries (
    job_id, delivery_job_id, url, attempt, status_code, error, at
) VALUES (:job_id, :delivery_job_id, :url, :attempt, :status_code, :error, :now)

-- name: webhook_delivery_list
SELECT job_id, delivery_job_id, url, attempt, status_code, error, at
FROM workhorse_webhook_deliveries
WHERE job_id = :job_id
ORDER BY id

-- name: webhook_delivery_prune
DELETE FROM workhorse_webhook_deliveries WHERE at < :before


-- ===== workflows, dependencies, pipelines (issue 5, migration 0003) =====

-- name: workflow_stored_deps
-- The stored jobs a new workflow waits on (the write lock is held: they cannot change).
SELECT id, state, task FROM workhorse_jobs WHERE id IN (SELECT value FROM json_each(:ids))

-- name: workflow_mark_dependents
UPDATE workhorse_jobs
SET has_dependents = 1
WHERE id IN (SELECT value FROM json_each(:ids)) AND NOT has_dependents

-- name: workflow_insert
INSERT INTO workhorse_workflows (name, tenant, on_failure, created_at)
VALUES (:name, :tenant, :on_failure, :now)
RETURNING id

-- name: workflow_part_insert
-- job_insert's columns, then the part's own.
INSERT INTO workhorse_jobs (
    id, task, queue, state, priority, args, kwargs, run_at, max_attempts, timeout,
    tenant, labels, unique_key, parent_id, meta, created_at,
    workflow_id, has_dependents, error_type, error_message, finished_at, expires_at
) VALUES (
    (SELECT id FROM workhorse_next_job_id),
    ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
)
RETURNING id

-- name: workflow_expiry
SELECT expires_at FROM workhorse_jobs WHERE id = :id

-- name: workflow_dep_insert
INSERT INTO workhorse_job_deps (job_id, depends_on_id, ordinal) VALUES (?, ?, ?)

-- name: workflow_get
SELECT id, name, tenant, on_failure, created_at, cancelled_at
FROM workhorse_workflows
WHERE id = :workflow_id AND (:tenant IS NULL OR tenant = :tenant)

-- name: workflow_parts
SELECT * FROM workhorse_jobs WHERE workflow_id = :workflow_id ORDER BY id

-- name: workflow_edges
SELECT d.job_id, d.depends_on_id
FROM workhorse_jobs AS j
JOIN workhorse_job_deps AS d ON d.job_id = j.id
WHERE j.workflow_id = :workflow_id
ORDER BY d.job_id, d.ordinal

-- name: workflow_mark_cancelled
-- First, so that the settling trigger leaves the parts to the cancel that follows.
UPDATE workhorse_workflows
SET cancelled_at = coalesce(cancelled_at, :now)
WHERE id = :workflow_id AND (:tenant IS NULL OR tenant = :tenant)

-- name: workflow_cancel_parts
UPDATE workhorse_jobs
SET state = CASE WHEN state = 'running' THEN state ELSE 'cancelled' END,
    cancel_requested = CASE WHEN state = 'running' THEN 1 ELSE cancel_requested END,
    finished_at = CASE WHEN state = 'running' THEN finished_at ELSE :now END
WHERE workflow_id = :workflow_id
  AND state IN ('scheduled', 'queued', 'blocked', 'running')

-- name: job_dependencies
SELECT d.depends_on_id, j.state, j.task, j.result
FROM workhorse_job_deps AS d
LEFT JOIN workhorse_jobs AS j ON j.id = d.depends_on_id
WHERE d.job_id = :job_id
ORDER BY d.ordinal

-- name: job_waiting_on
-- The first dependency of a job that exists and has not completed (a retry must wait).
SELECT d.depends_on_id, p.state
FROM workhorse_job_deps AS d
JOIN workhorse_jobs AS p ON p.id = d.depends_on_id
WHERE d.job_id = :job_id AND p.state <> 'completed'
ORDER BY d.ordinal
LIMIT 1

-- name: job_set_meta
UPDATE workhorse_jobs
SET meta = json_set(meta, :path, json(:value))
WHERE id = :job_id AND lease_token = :lease_token AND state = 'running'


-- ===== job statistics (metrics and throughput, migration 0005) =====

-- name: stats_count_add
INSERT INTO workhorse_job_counts (minute, tenant, queue, task, event, count)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (minute, tenant, queue, task, event) DO UPDATE SET count = count + excluded.count

-- name: stats_run_time_add
INSERT INTO workhorse_job_run_times (queue, task, le, count, seconds)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (queue, task, le) DO UPDATE
SET count = count + excluded.count, seconds = seconds + excluded.seconds

-- name: stats_totals
SELECT queue, task, event, sum(count)
FROM workhorse_job_counts
WHERE minute = 0
GROUP BY queue, task, event
ORDER BY queue, task, event

-- name: stats_run_times
SELECT queue, task, le, count, seconds
FROM workhorse_job_run_times
ORDER BY queue, task, le

-- name: stats_timeline
SELECT minute, event, sum(count)
FROM workhorse_job_counts
WHERE minute >= :since AND minute > 0 AND (:tenant IS NULL OR tenant = :tenant)
GROUP BY minute, event
ORDER BY minute, event

-- name: stats_prune_probe
SELECT 1 FROM workhorse_job_counts WHERE minute > 0 AND minute < :before LIMIT 1

-- name: stats_prune
DELETE FROM workhorse_job_counts WHERE minute > 0 AND minute < :before
