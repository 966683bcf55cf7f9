-- workhorse schema, version 8 (SQLite): a job's id is still never handed out twice, but
-- an enqueue no longer writes a page of sqlite_sequence for it.

-- AUTOINCREMENT kept every id from coming back by updating sqlite_sequence on every
-- insert: one page of four written and fsynced per enqueue, about 4% of its time. The
-- highest id ever deleted is kept instead, and only moves when the newest job is
-- deleted; an insert takes the id above both it and the highest id present (see
-- workhorse_next_job_id), so a client holding an old id can still never read somebody
-- else's job. (PostgreSQL has no such migration: an identity never gives a value twice.)
CREATE TABLE workhorse_job_id_floor (
    id_floor INTEGER NOT NULL
);
INSERT INTO workhorse_job_id_floor (id_floor)
SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'workhorse_jobs';

-- SQLite cannot drop AUTOINCREMENT from a table: the jobs move to a new one, and the
-- indexes and triggers are made again as 0001-0007 left them (the webhook trigger's
-- insert takes its id as every insert does). Nothing references the table by a foreign
-- key, so dropping it deletes nothing else.
CREATE TABLE workhorse_jobs_new (
    id                INTEGER PRIMARY KEY,
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
    expires_at        REAL,
    workflow_id       INTEGER,
    has_dependents    INTEGER NOT NULL DEFAULT 0,
    unique_states     INTEGER NOT NULL DEFAULT 15
);
INSERT INTO workhorse_jobs_new SELECT * FROM workhorse_jobs;
DROP TABLE workhorse_jobs;
ALTER TABLE workhorse_jobs_new RENAME TO workhorse_jobs;

CREATE INDEX workhorse_jobs_claim_queue_idx
    ON workhorse_jobs (queue, priority DESC, run_at, id)
    WHERE state = 'queued';
CREATE INDEX workhorse_jobs_claim_idx
    ON workhorse_jobs (priority DESC, run_at, id)
    WHERE state = 'queued';
CREATE INDEX workhorse_jobs_scheduled_idx
    ON workhorse_jobs (run_at, queue, priority, state)
    WHERE state = 'scheduled';
CREATE INDEX workhorse_jobs_lease_idx
    ON workhorse_jobs (lease_expires_at)
    WHERE state = 'running';
CREATE INDEX workhorse_jobs_expires_idx
    ON workhorse_jobs (expires_at)
    WHERE expires_at IS NOT NULL;
CREATE INDEX workhorse_jobs_tenant_idx
    ON workhorse_jobs (tenant, id)
    WHERE tenant IS NOT NULL;
CREATE INDEX workhorse_jobs_parent_idx
    ON workhorse_jobs (parent_id)
    WHERE parent_id IS NOT NULL;
CREATE INDEX workhorse_jobs_workflow_idx
    ON workhorse_jobs (workflow_id, id)
    WHERE workflow_id IS NOT NULL;
CREATE UNIQUE INDEX workhorse_jobs_unique_key_idx
    ON workhorse_jobs (unique_key)
    WHERE unique_key IS NOT NULL
      AND (unique_states & CASE state
                               WHEN 'scheduled' THEN 1 WHEN 'queued' THEN 2
                               WHEN 'blocked' THEN 4 WHEN 'running' THEN 8
                               WHEN 'completed' THEN 16 WHEN 'failed' THEN 32
                               WHEN 'cancelled' THEN 64 ELSE 0 END) <> 0;

-- The next id an insert takes. A multi-row insert gives its first row this id and lets
-- SQLite number the others (the largest id present, plus one): an uncorrelated
-- subquery is read once per statement.
CREATE VIEW workhorse_next_job_id (id) AS
SELECT max(coalesce((SELECT max(id) FROM workhorse_jobs), 0), id_floor) + 1
FROM workhorse_job_id_floor;

-- Only deleting the newest job moves the floor; pruning old jobs reads two pages.
CREATE TRIGGER workhorse_jobs_raise_id_floor
AFTER DELETE ON workhorse_jobs
WHEN OLD.id > (SELECT id_floor FROM workhorse_job_id_floor)
 AND OLD.id > coalesce((SELECT max(id) FROM workhorse_jobs), 0)
BEGIN
    UPDATE workhorse_job_id_floor SET id_floor = OLD.id;
END;

CREATE TRIGGER workhorse_jobs_settle_dependents
AFTER UPDATE OF state ON workhorse_jobs
WHEN NEW.has_dependents
 AND NEW.state IN ('completed', 'failed', 'cancelled')
 AND OLD.state NOT IN ('completed', 'failed', 'cancelled')
BEGIN
    UPDATE workhorse_jobs
    SET state = CASE WHEN run_at > max(NEW.finished_at, created_at)
                     THEN 'scheduled' ELSE 'queued' END
    WHERE NEW.state = 'completed'
      AND state = 'blocked'
      AND id IN (SELECT job_id FROM workhorse_job_deps WHERE depends_on_id = NEW.id)
      AND NOT EXISTS (
          SELECT 1
          FROM workhorse_job_deps AS d
          JOIN workhorse_jobs AS p ON p.id = d.depends_on_id
          WHERE d.job_id = workhorse_jobs.id AND p.state <> 'completed'
      );

    -- Rows are updated in id order and a job's id is above its dependencies', so the
    -- dependency through which the failure reached a job has already ended: the message
    -- names it.
    UPDATE workhorse_jobs
    SET state = CASE WHEN (SELECT on_failure FROM workhorse_workflows AS w
                           WHERE w.id = workhorse_jobs.workflow_id) = 'cancel'
                     THEN 'cancelled' ELSE 'failed' END,
        error_type = 'DependencyFailedError',
        error_message = coalesce(
            (SELECT CASE WHEN d.depends_on_id = NEW.id THEN 'dependency '
                         ELSE 'dependency job ' || d.depends_on_id || ' did not run: upstream '
                    END
             FROM workhorse_job_deps AS d
             JOIN workhorse_jobs AS p ON p.id = d.depends_on_id
             WHERE d.job_id = workhorse_jobs.id AND p.state IN ('failed', 'cancelled')
             ORDER BY d.depends_on_id = NEW.id DESC, d.ordinal
             LIMIT 1),
            'a dependency did not run: upstream '
        ) || 'job ' || NEW.id || ' (' || NEW.task || ') ended ' || NEW.state,
        error_traceback = NULL,
        finished_at = max(NEW.finished_at, created_at),
        expires_at = NEW.expires_at
    WHERE NEW.state <> 'completed'
      AND state = 'blocked'
      AND id IN (
          WITH RECURSIVE downstream (id) AS (
              SELECT d.job_id
              FROM workhorse_job_deps AS d
              JOIN workhorse_jobs AS j ON j.id = d.job_id
              WHERE d.depends_on_id = NEW.id AND j.state = 'blocked'
              UNION
              SELECT d.job_id
              FROM downstream AS r
              JOIN workhorse_job_deps AS d ON d.depends_on_id = r.id
              JOIN workhorse_jobs AS j ON j.id = d.job_id
              WHERE j.state = 'blocked'
          )
          SELECT id FROM downstream
      )
      AND NOT EXISTS (
          SELECT 1 FROM workhorse_workflows AS w
          WHERE w.id = workhorse_jobs.workflow_id AND w.cancelled_at IS NOT NULL
      );
END;

CREATE TRIGGER workhorse_jobs_forget_part
AFTER DELETE ON workhorse_jobs
WHEN OLD.workflow_id IS NOT NULL
BEGIN
    DELETE FROM workhorse_job_deps WHERE job_id = OLD.id;
    DELETE FROM workhorse_workflows
    WHERE id = OLD.workflow_id
      AND NOT EXISTS (SELECT 1 FROM workhorse_jobs WHERE workflow_id = OLD.workflow_id);
END;

CREATE TRIGGER workhorse_jobs_webhook
AFTER UPDATE OF state ON workhorse_jobs
WHEN NEW.meta <> '{}'
 AND NEW.state IN ('completed', 'failed', 'cancelled')
 AND OLD.state NOT IN ('completed', 'failed', 'cancelled')
BEGIN
    INSERT INTO workhorse_jobs (
        id, task, queue, state, priority, args, kwargs, run_at, max_attempts, tenant,
        labels, meta, created_at
    )
    SELECT
        (SELECT id FROM workhorse_next_job_id),
        'workhorse.webhook.deliver',
        queue,
        'queued',
        priority,
        '[]',
        '{}',
        coalesce(finished_at, (julianday('now') - 2440587.5) * 86400.0),
        10,
        tenant,
        '{}',
        json_object(
            'webhook_for', id,
            'webhook_url', json_extract(meta, '$.webhook'),
            'webhook_event', json_object(
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
        coalesce(finished_at, (julianday('now') - 2440587.5) * 86400.0)
    FROM workhorse_jobs
    WHERE id = NEW.id AND json_valid(meta) AND json_type(meta, '$.webhook') = 'text';
END;
