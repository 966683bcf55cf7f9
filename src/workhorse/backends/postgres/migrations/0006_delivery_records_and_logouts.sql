-- workhorse schema, version 6: webhook deliveries keep what they deliver in their meta,
-- and dashboard logouts are remembered.
-- {schema} and {channel} are replaced when the migration is applied or printed.

-- The delivery of a job with a webhook records the job, the URL and the outcome in its
-- meta, which no API or CLI caller can set, and takes no arguments: the delivery task
-- trusts the meta only (and checks it against the job it names). Otherwise as in 0004.
CREATE OR REPLACE FUNCTION {schema}.workhorse_enqueue_webhook() RETURNS trigger
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
        '{}',
        ended_at,
        10,
        NEW.tenant,
        jsonb_build_object(
            'webhook_for', NEW.id,
            'webhook_url', NEW.meta ->> 'webhook',
            'webhook_event', jsonb_build_object(
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
        ended_at
    );
    PERFORM pg_notify({channel}, NEW.queue);
    RETURN NULL;
END
$$;

-- Deliveries enqueued before this version carry the URL and the event in their
-- arguments, where the 0004 trigger put them: move them into the meta.
UPDATE {schema}.workhorse_jobs
SET meta = meta || jsonb_build_object('webhook_url', kwargs -> 'url',
                                      'webhook_event', kwargs -> 'event'),
    kwargs = '{}'
WHERE task = 'workhorse.webhook.deliver'
  AND jsonb_typeof(meta -> 'webhook_for') = 'number'
  AND jsonb_typeof(kwargs -> 'url') = 'string'
  AND jsonb_typeof(kwargs -> 'event') = 'object';

-- Dashboard sessions ended before their expiry (a logout): the signed cookie of such a
-- session is refused, even if replayed. A record is deleted once its session expired.
CREATE TABLE {schema}.workhorse_session_revocations (
    session_id text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX workhorse_session_revocations_expiry
    ON {schema}.workhorse_session_revocations (expires_at);
