-- workhorse schema, version 4 (SQLite): periodic jobs, limits and webhooks.

-- One row per tick a scheduler enqueued. The primary key turns away every other
-- scheduler that tries the same tick, in the same transaction that would enqueue it.
CREATE TABLE workhorse_schedule_ticks (
    name        TEXT NOT NULL,
    tick_at     REAL NOT NULL,
    job_id      INTEGER NOT NULL,
    created_at  REAL NOT NULL,
    PRIMARY KEY (name, tick_at)
) WITHOUT ROWID;

-- Each schedule a worker has seen: ticks before registered_at are never enqueued, and
-- the latest tick is where a restarted scheduler resumes (within its catch-up window).
CREATE TABLE workhorse_schedules (
    name           TEXT PRIMARY KEY,
    registered_at  REAL NOT NULL,
    last_tick_at   REAL,
    last_job_id    INTEGER
);

-- A job's limit key is the "limit_key" entry of its meta, set at enqueue. There is no
-- column or index for it: either would cost every claim and completion (about a tenth,
-- measured), limits or not, while a limited claim only needs the keys of running jobs,
-- which are few (at most the workers' total concurrency) and found by
-- workhorse_jobs_lease_idx.

-- Starts counted by rate limits: a start holds a place in its bucket until expires_at
-- (its start plus the limit's period), so a bucket's live rows are its recent starts.
CREATE TABLE workhorse_rate_windows (
    bucket      TEXT NOT NULL,
    started_at  REAL NOT NULL,
    expires_at  REAL NOT NULL
);
CREATE INDEX workhorse_rate_windows_idx ON workhorse_rate_windows (expires_at, bucket);

-- Webhook signing secrets, one per tenant ('' for jobs without a tenant).
CREATE TABLE workhorse_webhook_secrets (
    tenant      TEXT PRIMARY KEY,
    secret      TEXT NOT NULL,
    created_at  REAL NOT NULL
);

-- Every delivery attempt, for GET /jobs/{id}/webhooks.
CREATE TABLE workhorse_webhook_deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id           INTEGER NOT NULL,
    delivery_job_id  INTEGER NOT NULL,
    url              TEXT NOT NULL,
    attempt          INTEGER NOT NULL,
    status_code      INTEGER,
    error            TEXT,
    at               REAL NOT NULL
);
CREATE INDEX workhorse_webhook_deliveries_job_idx ON workhorse_webhook_deliveries (job_id, id);
CREATE INDEX workhorse_webhook_deliveries_at_idx ON workhorse_webhook_deliveries (at);

-- A job with a webhook (meta "webhook": URL) that reaches a final state enqueues its
-- delivery in the same transaction, whichever statement ended it (an outcome, a lease
-- that expired on the last attempt, a cancel), so no outcome is ever left unannounced.
-- The job's outcome is copied into the delivery's arguments: a later retry or prune of
-- the job cannot change what this delivery says. The trigger names as few NEW/OLD
-- columns as it can and reads the rest from the table: SQLite loads every column a
-- trigger names for every row an UPDATE touches, which cost claims and completions of
-- jobs without webhooks a quarter of their speed.
CREATE TRIGGER workhorse_jobs_webhook
AFTER UPDATE OF state ON workhorse_jobs
WHEN NEW.meta <> '{}'
 AND NEW.state IN ('completed', 'failed', 'cancelled')
 AND OLD.state NOT IN ('completed', 'failed', 'cancelled')
BEGIN
    INSERT INTO workhorse_jobs (
        task, queue, state, priority, args, kwargs, run_at, max_attempts, tenant, labels,
        meta, created_at
    )
    SELECT
        'workhorse.webhook.deliver',
        queue,
        'queued',
        priority,
        '[]',
        json_object(
            'url', json_extract(meta, '$.webhook'),
            'event', json_object(
                'id', id,
                'task', task,
                'queue', queue,
                'tenant', tenant,
                'state', state,
                'attempt', attempt,
                'result', json(CASE WHEN state = 'completed' AND json_valid(result)
                                    THEN result ELSE 'null' END),
                'error', CASE WHEN state <> 'completed' AND error_type IS NOT NULL
                              THEN json_object('type', error_type,
                                               'message', error_message) END,
                'created_at', created_at,
                'started_at', started_at,
                'finished_at', finished_at
            )
        ),
        coalesce(finished_at, (julianday('now') - 2440587.5) * 86400.0),
        10,
        tenant,
        '{}',
        json_object('webhook_for', id),
        coalesce(finished_at, (julianday('now') - 2440587.5) * 86400.0)
    FROM workhorse_jobs
    WHERE id = NEW.id AND json_valid(meta) AND json_type(meta, '$.webhook') = 'text';
END;
