-- workhorse schema, version 4: periodic jobs, limits and webhooks.
-- {schema} and {channel} are replaced when the migration is applied or printed.

-- One row per tick a scheduler enqueued. The primary key turns away every other
-- scheduler that tries the same tick, in the same transaction that would enqueue it.
CREATE TABLE {schema}.workhorse_schedule_ticks (
    name       text NOT NULL,
    tick_at    timestamptz NOT NULL,
    job_id     bigint,  -- NULL only inside the transaction that enqueues its job
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, tick_at)
);

-- Each schedule a worker has seen: ticks before registered_at are never enqueued, and
-- the latest tick is where a restarted scheduler resumes (within its catch-up window).
CREATE TABLE {schema}.workhorse_schedules (
    name          text PRIMARY KEY,
    registered_at timestamptz NOT NULL,
    last_tick_at  timestamptz,
    last_job_id   bigint
);

-- A job's limit key is set in its meta at enqueue; this column reads it back so that a
-- limited claim counts the running jobs of a key off the index below.
ALTER TABLE {schema}.workhorse_jobs
    ADD COLUMN limit_key text GENERATED ALWAYS AS (meta ->> 'limit_key') STORED;
CREATE INDEX workhorse_jobs_limit
    ON {schema}.workhorse_jobs (limit_key)
    WHERE state = 'running' AND limit_key IS NOT NULL;

-- Starts counted by rate limits: a start holds a place in its bucket until expires_at
-- (its start plus the limit's period), so a bucket's live rows are its recent starts.
CREATE TABLE {schema}.workhorse_rate_windows (
    bucket     text NOT NULL,
    started_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX workhorse_rate_windows_expiry
    ON {schema}.workhorse_rate_windows (expires_at, bucket);

-- Webhook signing secrets, one per tenant ('' for jobs without a tenant).
CREATE TABLE {schema}.workhorse_webhook_secrets (
    tenant     text PRIMARY KEY,
    secret     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Every delivery attempt, for GET /jobs/{id}/webhooks.
CREATE TABLE {schema}.workhorse_webhook_deliveries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id          bigint NOT NULL,
    delivery_job_id bigint NOT NULL,
    url             text NOT NULL,
    attempt         integer NOT NULL,
    status_code     integer,
    error           text,
    at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workhorse_webhook_deliveries_job
    ON {schema}.workhorse_webhook_deliveries (job_id, id);
CREATE INDEX workhorse_webhook_deliveries_at
    ON {schema}.workhorse_webhook_deliveries (at);

-- A job with a webhook (meta "webhook": URL) that reaches a final state enqueues its
-- delivery in the same transaction, whichever statement ended it (an outcome, a lease
-- that expired on the last attempt, a cancel), so no outcome is ever left unannounced.
-- The job's outcome is copied into the delivery's arguments: a later retry or prune of
-- the job cannot change what this delivery says.
CREATE FUNCTION {schema}.workhorse_enqueue_webhook() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ended_at timestamptz := coalesce(NEW.finished_at, now());
BEGIN
    INSERT INTO {schema}.workhorse_jobs (
        task, queue, state, priority, args, kwargs, run_at, max_attempts, tenant, meta,
        created_at
    ) VALUES (
        'workhorse.webhook.deliver',
        NEW.queue,
        'queued',
        NEW.priority,
        '[]',
        jsonb_build_object(
            'url', NEW.meta ->> 'webhook',
            'event', jsonb_build_object(
                'id', NEW.id,
                'task', NEW.task,
                'queue', NEW.queue,
                'tenant', NEW.tenant,
                'state', NEW.state,
                'attempt', NEW.attempt,
                'result', CASE WHEN NEW.state = 'completed' THEN NEW.result END,
                'error', CASE WHEN NEW.state <> 'completed' AND NEW.error_type IS NOT NULL
                              THEN jsonb_build_object('type', NEW.error_type,
                                                      'message', NEW.error_message) END,
                'created_at', NEW.created_at,
                'started_at', NEW.started_at,
                'finished_at', NEW.finished_at
            )
        ),
        ended_at,
        10,
        NEW.tenant,
        jsonb_build_object('webhook_for', NEW.id),
        ended_at
    );
    PERFORM pg_notify({channel}, NEW.queue);
    RETURN NULL;
END
$$;

CREATE TRIGGER workhorse_jobs_webhook
    AFTER UPDATE OF state ON {schema}.workhorse_jobs
    FOR EACH ROW
    WHEN (NEW.state IN ('completed', 'failed', 'cancelled')
          AND OLD.state NOT IN ('completed', 'failed', 'cancelled')
          AND jsonb_typeof(NEW.meta -> 'webhook') = 'string')
    EXECUTE FUNCTION {schema}.workhorse_enqueue_webhook();
