-- workhorse schema, version 6 (SQLite): webhook deliveries keep what they deliver in
-- their meta, and dashboard logouts are remembered.

-- The delivery of a job with a webhook records the job, the URL and the outcome in its
-- meta, which no API or CLI caller can set, and takes no arguments: the delivery task
-- trusts the meta only (and checks it against the job it names). Otherwise as in 0004.
DROP TRIGGER workhorse_jobs_webhook;
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

-- Deliveries enqueued before this version carry the URL and the event in their
-- arguments, where the 0004 trigger put them: move them into the meta.
UPDATE workhorse_jobs
SET meta = json_set(meta,
                    '$.webhook_url', json_extract(kwargs, '$.url'),
                    '$.webhook_event', json(json_extract(kwargs, '$.event'))),
    kwargs = '{}'
WHERE task = 'workhorse.webhook.deliver'
  AND json_valid(meta) AND json_type(meta, '$.webhook_for') = 'integer'
  AND json_valid(kwargs) AND json_type(kwargs, '$.url') = 'text'
  AND json_type(kwargs, '$.event') = 'object';

-- Dashboard sessions ended before their expiry (a logout): the signed cookie of such a
-- session is refused, even if replayed. A record is deleted once its session expired.
CREATE TABLE workhorse_session_revocations (
    session_id  TEXT PRIMARY KEY,
    expires_at  REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX workhorse_session_revocations_expiry ON workhorse_session_revocations (expires_at);
