-- workhorse schema, version 1 (SQLite).
-- Timestamps are REAL unix epoch seconds (UTC). JSON columns hold JSON text.

CREATE TABLE IF NOT EXISTS workhorse_migrations (
    version     INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    applied_at  REAL NOT NULL
);

-- AUTOINCREMENT: an id is never handed out twice, even after the newest job is deleted,
-- so a client holding an old id can never read somebody else's job.
CREATE TABLE workhorse_jobs (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    task              TEXT NOT NULL,
    queue             TEXT NOT NULL DEFAULT 'default',
    state             TEXT NOT NULL CHECK (state IN (
                          'scheduled', 'queued', 'blocked', 'running',
                          'completed', 'failed', 'cancelled')),
    priority          INTEGER NOT NULL DEFAULT 0,
    args              TEXT NOT NULL DEFAULT '[]' CONSTRAINT args_is_json CHECK (json_valid(args)),
    kwargs            TEXT NOT NULL DEFAULT '{}' CONSTRAINT kwargs_is_json CHECK (json_valid(kwargs)),
    run_at            REAL NOT NULL,
    attempt           INTEGER NOT NULL DEFAULT 0,
    max_attempts      INTEGER NOT NULL DEFAULT 3,
    progress          REAL NOT NULL DEFAULT 0,
    progress_message  TEXT,
    result            TEXT,
    error_type        TEXT,
    error_message     TEXT,
    error_traceback   TEXT,
    tenant            TEXT,
    labels            TEXT NOT NULL DEFAULT '{}',
    unique_key        TEXT,
    timeout           REAL,
    worker_id         TEXT,
    lease_token       TEXT,
    lease_expires_at  REAL,
    cancel_requested  INTEGER NOT NULL DEFAULT 0,
    parent_id         INTEGER,
    meta              TEXT NOT NULL DEFAULT '{}',
    created_at        REAL NOT NULL,
    started_at        REAL,
    finished_at       REAL,
    expires_at        REAL
);

-- Claims walk these in claim order and stop at the first rows they need. Only queued
-- jobs are in them: scheduled jobs that are not due yet would otherwise be stepped over
-- by every claim (and by every idle probe).
CREATE INDEX workhorse_jobs_claim_queue_idx
    ON workhorse_jobs (queue, priority DESC, run_at, id)
    WHERE state = 'queued';
CREATE INDEX workhorse_jobs_claim_idx
    ON workhorse_jobs (priority DESC, run_at, id)
    WHERE state = 'queued';

-- Scheduled jobs by time: claims take the due ones (before promotion makes them
-- queued), promotion and "when is the next one due" read the earliest. It covers a
-- claim's filter and order (SQLite counts a covering index only if it holds "state" too),
-- so those reads need no table lookups.
CREATE INDEX workhorse_jobs_scheduled_idx
    ON workhorse_jobs (run_at, queue, priority, state)
    WHERE state = 'scheduled';

-- A unique key is held while its job is live, and free again once the job is final.
CREATE UNIQUE INDEX workhorse_jobs_unique_key_idx
    ON workhorse_jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('scheduled', 'queued', 'blocked', 'running');

CREATE INDEX workhorse_jobs_lease_idx
    ON workhorse_jobs (lease_expires_at)
    WHERE state = 'running';
CREATE INDEX workhorse_jobs_expires_idx
    ON workhorse_jobs (expires_at)
    WHERE expires_at IS NOT NULL;
-- Partial: jobs without a tenant or parent cost these indexes nothing.
CREATE INDEX workhorse_jobs_tenant_idx
    ON workhorse_jobs (tenant, id)
    WHERE tenant IS NOT NULL;
CREATE INDEX workhorse_jobs_parent_idx
    ON workhorse_jobs (parent_id)
    WHERE parent_id IS NOT NULL;

CREATE TABLE workhorse_workers (
    id              TEXT PRIMARY KEY,
    hostname        TEXT NOT NULL,
    pid             INTEGER NOT NULL,
    queues          TEXT,  -- JSON array; NULL means every queue
    concurrency     INTEGER NOT NULL,
    started_at      REAL NOT NULL,
    heartbeat_at    REAL NOT NULL,
    running         INTEGER NOT NULL DEFAULT 0,
    stop_requested  INTEGER NOT NULL DEFAULT 0,
    meta            TEXT NOT NULL DEFAULT '{}'
);

-- One row per leadership role ('maintenance' today); absent or expired means vacant.
CREATE TABLE workhorse_leader (
    name        TEXT PRIMARY KEY,
    worker_id   TEXT NOT NULL,
    elected_at  REAL NOT NULL,
    expires_at  REAL NOT NULL
);
