-- Named queries of the PostgreSQL backend, one per Backend method they serve.
--
-- Tokens replaced when the backend is built: {schema} (the quoted schema name),
-- {channel} and {next_channel} (the quoted NOTIFY channels '<schema>_jobs' and
-- '<schema>_next'); {@name} includes the named part. Slots in braces are filled with
-- named conditions when a query is composed (a job filter, a claim's pick). Every name
-- is schema-qualified, so a query also runs on a caller's connection whatever its
-- search_path.
--
-- Time is the database clock: coalesce(%(now)s, now()) wherever the method takes a now.
-- Writes to a running job match id, lease_token and state = 'running' (fencing), and
-- multi-row writes lock their rows in id order so that concurrent batches never deadlock.
-- An attempt's end (an outcome, a release) leaves its lease token on the job until the
-- next claim: a repeat after a lost reply can tell that the lease already ended.
-- Every statement that makes jobs claimable notifies {channel} once per distinct queue;
-- one that schedules jobs for later (an insert, a retry after a backoff, the release of
-- workflow parts by the trigger of migration 0007) notifies {next_channel} once per
-- queue, so idle workers look again when the job is due.


-- name: migration_lock
SELECT pg_advisory_xact_lock(hashtextextended(%(key)s, 0))

-- name: migration_bootstrap
-- CREATE SCHEMA IF NOT EXISTS wants the CREATE privilege on the database even when the
-- schema exists: look first, so that a schema a DBA created is enough.
DO $$
BEGIN
    IF to_regnamespace('{schema}') IS NULL THEN
        CREATE SCHEMA {schema};
    END IF;
END
$$;
CREATE TABLE IF NOT EXISTS {schema}.workhorse_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)

-- name: schema_present
-- From the catalogs, which any role may read (even without USAGE on the schema).
SELECT EXISTS (
    SELECT FROM pg_catalog.pg_namespace WHERE nspname = %(schema)s
) AS present

-- name: migration_table
-- Whether the schema has its migrations table yet (reading needs no CREATE privilege).
SELECT to_regclass('{schema}.workhorse_migrations') IS NOT NULL AS present

-- name: migration_versions
SELECT version FROM {schema}.workhorse_migrations ORDER BY version

-- name: migration_record
INSERT INTO {schema}.workhorse_migrations (version, name) VALUES (%(version)s, %(name)s)


-- name: insert_jobs
-- One statement for a batch: ids are drawn in input order (a batch keeps its order in
-- claims), and a row whose unique key a live job holds is skipped (created = false; the
-- caller then looks the holder up with find_unique_holders).
WITH input AS (
    SELECT nextval('{schema}.workhorse_jobs_id_seq') AS id, u.*
    FROM (
        SELECT *
        FROM unnest(
            %(task)s::text[], %(queue)s::text[], %(priority)s::integer[],
            %(args)s::text[], %(kwargs)s::text[], %(run_at)s::timestamptz[],
            %(delay)s::double precision[], %(max_attempts)s::integer[],
            %(timeout)s::double precision[], %(tenant)s::text[], %(labels)s::text[],
            %(unique_key)s::text[], %(parent_id)s::bigint[], %(meta)s::text[],
            %(unique_states)s::integer[]
        ) WITH ORDINALITY AS u (
            task, queue, priority, args, kwargs, run_at, delay, max_attempts, timeout,
            tenant, labels, unique_key, parent_id, meta, unique_states, ord
        )
        ORDER BY ord
    ) AS u
),
{@timed_input},
inserted AS (
    INSERT INTO {schema}.workhorse_jobs (
        id, task, queue, state, priority, args, kwargs, run_at, max_attempts, timeout,
        tenant, labels, unique_key, parent_id, meta, created_at, unique_states
    )
    SELECT id, task, queue, due_state, priority, args::jsonb, kwargs::jsonb, due_at,
           max_attempts, timeout, tenant, labels::jsonb, unique_key, parent_id, meta::jsonb,
           coalesce(%(now)s::timestamptz, now()), unique_states
    FROM timed
    ORDER BY ord
    -- Fresh ids never collide: the one conflict there can be is a held unique key.
    ON CONFLICT DO NOTHING
    RETURNING id, state, queue
),
{@announce_inserted}
SELECT id, due_state AS state, id IN (SELECT id FROM inserted) AS created
FROM timed
WHERE (SELECT count(*) FROM notified) >= 0
ORDER BY ord

-- name: insert_job
-- insert_jobs for the common enqueue, one job without a unique key: plain parameters, no
-- arrays to unpack and no conflict to settle, about half the server's work.
WITH clock AS (
    SELECT coalesce(%(now)s::timestamptz, now()) AS now
),
due AS (
    SELECT now, coalesce(%(run_at)s::timestamptz,
                         now + %(delay)s::double precision * interval '1 second') AS due_at
    FROM clock
),
inserted AS (
    INSERT INTO {schema}.workhorse_jobs (
        task, queue, state, priority, args, kwargs, run_at, max_attempts, timeout,
        tenant, labels, parent_id, meta, created_at
    )
    SELECT %(task)s, %(queue)s,
           CASE WHEN due_at > now THEN 'scheduled' ELSE 'queued' END,
           %(priority)s, %(args)s::jsonb, %(kwargs)s::jsonb, due_at, %(max_attempts)s,
           %(timeout)s, %(tenant)s, %(labels)s::jsonb, %(parent_id)s, %(meta)s::jsonb, now
    FROM due
    RETURNING id, state, queue
),
notified AS (
    SELECT pg_notify(CASE WHEN state = 'queued' THEN {channel} ELSE {next_channel} END, queue)
    FROM inserted
)
SELECT id, state, true AS created FROM inserted WHERE (SELECT count(*) FROM notified) >= 0

-- name: timed_input
-- For insert_jobs and workflow_insert_parts: each input row with the time it falls due,
-- and the state that time gives it (scheduled when later than now, else queued).
timed AS MATERIALIZED (
    SELECT input.*, due.due_at,
           CASE WHEN due.due_at > coalesce(%(now)s::timestamptz, now())
                THEN 'scheduled' ELSE 'queued' END AS due_state
    FROM input,
         LATERAL (
             SELECT coalesce(run_at, coalesce(%(now)s::timestamptz, now())
                                     + delay * interval '1 second') AS due_at
         ) AS due
)

-- name: announce_inserted
-- For insert_jobs and workflow_insert_parts: one notification per queue of the rows
-- inserted, on {channel} when one of them is claimable now, else on {next_channel} when
-- one waits for its time (blocked rows wait for other jobs: nothing to announce).
notified AS (
    SELECT pg_notify(CASE WHEN bool_or(state = 'queued') THEN {channel}
                          ELSE {next_channel} END, queue)
    FROM inserted
    WHERE state IN ('queued', 'scheduled')
    GROUP BY queue
)

-- name: find_unique_holders
-- The condition is the unique index's: a holder is in one of its own unique states.
SELECT unique_key, id, state
FROM {schema}.workhorse_jobs
WHERE unique_key = ANY(%(keys)s::text[])
  AND unique_key IS NOT NULL
  AND (unique_states & CASE state
                           WHEN 'scheduled' THEN 1 WHEN 'queued' THEN 2
                           WHEN 'blocked' THEN 4 WHEN 'running' THEN 8
                           WHEN 'completed' THEN 16 WHEN 'failed' THEN 32
                           WHEN 'cancelled' THEN 64 ELSE 0 END) <> 0

-- name: replace_waiting_job
-- A duplicate with on_duplicate = 'replace': a holder that still waits takes its
-- arguments, priority and run time.
WITH replaced AS (
    UPDATE {schema}.workhorse_jobs AS j
    SET args = %(args)s::jsonb,
        kwargs = %(kwargs)s::jsonb,
        priority = %(priority)s,
        run_at = due.due_at,
        state = CASE WHEN due.due_at > coalesce(%(now)s::timestamptz, now())
                     THEN 'scheduled' ELSE 'queued' END
    FROM (
        SELECT coalesce(%(run_at)s::timestamptz, coalesce(%(now)s::timestamptz, now())
                        + %(delay)s * interval '1 second') AS due_at
    ) AS due
    WHERE j.id = %(id)s AND j.state IN ('scheduled', 'queued')
    RETURNING j.state, j.queue
),
notified AS (
    SELECT pg_notify(CASE WHEN state = 'queued' THEN {channel} ELSE {next_channel} END, queue)
    FROM replaced
)
SELECT state FROM replaced WHERE (SELECT count(*) FROM notified) >= 0

-- name: reserve_job_ids
-- Ids for a batch written with COPY, in order, and the clock the batch is stamped with.
SELECT coalesce(%(now)s::timestamptz, now()) AS now,
       array_agg(nextval('{schema}.workhorse_jobs_id_seq') ORDER BY n) AS ids
FROM generate_series(1, %(count)s) AS n

-- name: copy_jobs
-- The columns slot names the columns the batch sets; the others take their defaults.
COPY {schema}.workhorse_jobs ({columns}) FROM STDIN

-- name: notify_queues
-- announce_inserted for a batch written with COPY.
SELECT pg_notify({channel}, queue) FROM unnest(%(due)s::text[]) AS queue
UNION ALL
SELECT pg_notify({next_channel}, queue) FROM unnest(%(later)s::text[]) AS queue


-- name: claim_jobs
-- The pick slot selects and locks the jobs to claim: pick_waiting (with its scope and
-- where slots) or pick_named. Each lease token is the claim's token (chosen by the
-- caller, unique per call) and the job id: a claim whose reply was lost finds its jobs
-- again with claimed_jobs.
WITH picked AS (
    {pick}
),
claimed AS (
    UPDATE {schema}.workhorse_jobs AS j
    SET state = 'running',
        attempt = j.attempt + 1,
        worker_id = %(worker_id)s,
        lease_token = %(claim)s || '.' || j.id,
        lease_expires_at = coalesce(%(now)s::timestamptz, now())
                           + %(lease_seconds)s * interval '1 second',
        started_at = coalesce(%(now)s::timestamptz, now())
    FROM picked
    WHERE j.id = picked.id
    RETURNING {@claimed_columns}
),
{@no_fsync}
SELECT claimed.* FROM claimed, no_fsync ORDER BY priority DESC, run_at, id

-- name: no_fsync
-- For a worker's bookkeeping (claims, heartbeats, progress, outcomes, releases): this
-- transaction commits without waiting for its WAL flush (synchronous_commit off, for
-- itself only). A server crash can undo the last moments of bookkeeping, which the leases
-- recover like a dead worker's (those jobs run again); enqueues, cancels and retries keep
-- their flush, and flushing one flushes every commit before it.
no_fsync AS (SELECT set_config('synchronous_commit', 'off', true) AS setting)

-- name: held_lease
-- The running job of one lease (l.id, l.token), locked: read by primary key, so a
-- worker's bookkeeping costs the same however many jobs run elsewhere. The leases come
-- in id order, so concurrent writers lock their rows in one order. (Joined instead,
-- the planner may read every running job to match a few; for the same reason each
-- update names its ids again, j.id = ANY(...), as the planner cannot size held.) The
-- state is checked on the locked row, behind OFFSET 0: a condition state = 'running'
-- in the scan lets the planner read the index of running jobs (workhorse_jobs_lease)
-- end to end instead, which statistics taken while few jobs ran make look cheap.
SELECT h.id, h.cancel_requested
FROM (
    SELECT j.id, j.cancel_requested, j.state
    FROM {schema}.workhorse_jobs AS j
    WHERE j.id = l.id AND j.lease_token = l.token
    OFFSET 0
    FOR UPDATE
) AS h
WHERE h.state = 'running'

-- name: claimed_columns
-- What a claim returns of each job (claim_jobs, claimed_jobs).
j.id, j.task, j.queue, j.args::text AS args, j.kwargs::text AS kwargs, j.attempt,
j.max_attempts, j.lease_token, j.priority, j.timeout, j.tenant, j.meta, j.run_at,
coalesce(j.error_type = 'LeaseExpiredError', false) AS previous_attempt_lost

-- name: claimed_jobs
-- The jobs a claim took that still run under its leases (its reply was lost); read off
-- the index of running jobs.
SELECT {@claimed_columns}
FROM {schema}.workhorse_jobs AS j
WHERE j.state = 'running'
  AND j.worker_id = %(worker_id)s
  AND starts_with(j.lease_token, %(claim)s || '.')
ORDER BY j.priority DESC, j.run_at, j.id

-- name: pick_waiting
-- The best waiting jobs, locked: queued ones read in claim order, due scheduled ones
-- by run_at, so that each side reads a few index entries whatever else waits. The scope
-- slot is every_queue or each_named_queue ("queue = ANY(...)" would read and sort every
-- waiting job of those queues: each is read in turn instead); the where slot narrows
-- both sides (true, or a limited claim's room). Rows locked beyond the best few are let
-- go when the claim commits.
-- Each side reads at most {pick_limit} rows, written into the text (the claim's limit
-- rounded up to a power of two; Statements.compose): the plan that the server keeps for
-- the prepared claim is then one made for a few rows. With a parameter there, a table
-- with statistics makes the server guess a tenth of its rows, find that kept plan dearer
-- than planning each claim for its own limit, and plan every claim again (0.3 ms each).
WITH queued AS (
    SELECT c.*
    FROM {scope}
    CROSS JOIN LATERAL (
        SELECT id, queue, task, limit_key, priority, run_at
        FROM {schema}.workhorse_jobs
        WHERE state = 'queued' AND {where}
        ORDER BY priority DESC, run_at, id
        LIMIT {pick_limit}
        FOR UPDATE SKIP LOCKED
    ) AS c
),
due AS (
    SELECT c.*
    FROM {scope}
    CROSS JOIN LATERAL (
        SELECT id, queue, task, limit_key, priority, run_at
        FROM {schema}.workhorse_jobs
        WHERE state = 'scheduled' AND run_at <= coalesce(%(now)s::timestamptz, now())
          AND {where}
        ORDER BY priority DESC, run_at, id
        LIMIT {pick_limit}
        FOR UPDATE SKIP LOCKED
    ) AS c
)
SELECT id, queue, task, limit_key
FROM (SELECT * FROM queued UNION ALL SELECT * FROM due) AS c
ORDER BY priority DESC, run_at, id
LIMIT %(limit)s

-- name: every_queue
(VALUES (NULL::text)) AS q (queue)

-- name: each_named_queue
-- As many rows as queues, as the text says ({queue_limit}, see pick_waiting): a kept
-- plan otherwise takes the array for ten queues.
(SELECT unnest(%(queues)s::text[]) LIMIT {queue_limit}) AS q (queue)

-- name: in_named_queue
queue = q.queue

-- name: pick_named
-- Named jobs are claimed due or not (eager mode runs the job it just inserted).
SELECT id
FROM {schema}.workhorse_jobs
WHERE id = ANY(%(job_ids)s::bigint[])
  AND state IN ('queued', 'scheduled')
  AND (%(queues)s::text[] IS NULL OR queue = ANY(%(queues)s::text[]))
ORDER BY priority DESC, run_at, id
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED


-- name: heartbeat
WITH held AS (
    SELECT j.id
    FROM (SELECT * FROM unnest(%(ids)s::bigint[], %(tokens)s::text[]) AS u (id, token)
          ORDER BY id) AS l
    CROSS JOIN LATERAL ({@held_lease}) AS j
),
{@no_fsync}
UPDATE {schema}.workhorse_jobs AS j
SET lease_expires_at = now() + %(lease_seconds)s * interval '1 second'
FROM held, no_fsync
WHERE j.id = ANY(%(ids)s::bigint[]) AND j.id = held.id
RETURNING j.id, j.cancel_requested

-- name: set_progress
WITH progress_update AS (
    SELECT *
    FROM unnest(
        %(ids)s::bigint[], %(tokens)s::text[], %(progress)s::double precision[],
        %(messages)s::text[]
    ) AS u (id, token, progress, message)
),
held AS (
    SELECT j.id, l.progress, l.message
    FROM (SELECT * FROM progress_update ORDER BY id) AS l
    CROSS JOIN LATERAL ({@held_lease}) AS j
),
{@no_fsync}
UPDATE {schema}.workhorse_jobs AS j
SET progress = held.progress, progress_message = held.message
FROM held, no_fsync
WHERE j.id = ANY(%(ids)s::bigint[]) AND j.id = held.id

-- name: complete_jobs
-- A retry (state 'scheduled') keeps the job live, unless someone asked to cancel it: it
-- ends cancelled then. Final outcomes expire ttl seconds after they finish (never, when
-- ttl is null). An outcome without an error keeps the error of an earlier attempt.
-- The outcomes come as one JSON array of objects (records.outcomes_json), a key left
-- out for null: far cheaper for the worker to encode than eleven typed arrays.
WITH outcome AS (
    SELECT *
    FROM json_to_recordset(%(outcomes)s::json) AS o (
        id bigint, token text, state text, result text, error_type text,
        error_message text, error_traceback text, retry_delay double precision,
        ttl double precision, progress double precision, progress_message text)
),
held AS (
    SELECT l.*,
           CASE WHEN l.state = 'scheduled' AND j.cancel_requested THEN 'cancelled'
                ELSE l.state END AS ending
    FROM (SELECT * FROM outcome ORDER BY id) AS l
    CROSS JOIN LATERAL ({@held_lease}) AS j
),
ended AS (
    UPDATE {schema}.workhorse_jobs AS j
    SET state = held.ending,
        result = CASE WHEN held.ending = 'completed' THEN held.result::jsonb
                      ELSE j.result END,
        error_type = coalesce(held.error_type, j.error_type),
        error_message = CASE WHEN held.error_type IS NULL THEN j.error_message
                             ELSE held.error_message END,
        error_traceback = CASE WHEN held.error_type IS NULL THEN j.error_traceback
                               ELSE held.error_traceback END,
        run_at = CASE WHEN held.ending = 'scheduled'
                      THEN coalesce(%(now)s::timestamptz, now())
                           + held.retry_delay * interval '1 second'
                      ELSE j.run_at END,
        finished_at = CASE WHEN held.ending = 'scheduled' THEN NULL
                           ELSE coalesce(%(now)s::timestamptz, now()) END,
        expires_at = CASE WHEN held.ending = 'scheduled' THEN NULL
                          ELSE coalesce(%(now)s::timestamptz, now())
                               + held.ttl * interval '1 second' END,
        progress = coalesce(held.progress, j.progress),
        progress_message = CASE WHEN held.progress IS NULL THEN j.progress_message
                                ELSE held.progress_message END,
        lease_expires_at = NULL
    FROM held
    WHERE j.id = ANY((SELECT array_agg(id) FROM outcome)::bigint[]) AND j.id = held.id
    RETURNING j.id, held.token, j.queue, j.state, j.run_at
),
notified AS (
    -- Retries: due at once on {channel}, after a backoff on {next_channel}.
    SELECT pg_notify(
        CASE WHEN bool_or(run_at <= coalesce(%(now)s::timestamptz, now())) THEN {channel}
             ELSE {next_channel} END,
        queue)
    FROM ended
    WHERE state = 'scheduled'
    GROUP BY queue
),
{@no_fsync}
SELECT id, token FROM ended, no_fsync WHERE (SELECT count(*) FROM notified) >= 0

-- name: release_jobs
-- The attempt does not count; a job someone asked to cancel ends cancelled instead.
WITH held AS (
    SELECT j.id
    FROM (SELECT * FROM unnest(%(ids)s::bigint[], %(tokens)s::text[]) AS u (id, token)
          ORDER BY id) AS l
    CROSS JOIN LATERAL ({@held_lease}) AS j
),
released AS (
    UPDATE {schema}.workhorse_jobs AS j
    SET state = CASE WHEN j.cancel_requested THEN 'cancelled' ELSE 'queued' END,
        attempt = j.attempt - 1,
        worker_id = CASE WHEN j.cancel_requested THEN j.worker_id END,
        finished_at = CASE WHEN j.cancel_requested THEN now() END,
        lease_expires_at = NULL
    FROM held
    WHERE j.id = ANY(%(ids)s::bigint[]) AND j.id = held.id
    RETURNING j.id, j.lease_token AS token, j.queue, j.state
),
notified AS (
    SELECT pg_notify({channel}, queue)
    FROM (SELECT DISTINCT queue FROM released WHERE state = 'queued') AS due
),
{@no_fsync}
SELECT id, token FROM released, no_fsync WHERE (SELECT count(*) FROM notified) >= 0

-- name: ended_leases
-- Which of these leases already ended their attempt (by an outcome or a release): what
-- a repeat of complete_jobs or release_jobs after a lost reply reports as done.
SELECT j.id, j.lease_token AS token
FROM {schema}.workhorse_jobs AS j
JOIN unnest(%(ids)s::bigint[], %(tokens)s::text[]) AS l (id, token)
  ON j.id = l.id AND j.lease_token = l.token
WHERE j.state <> 'running'

-- name: cancel_job
-- A job not yet running is cancelled at once; a running one is asked to stop (its
-- worker reports the outcome); a final one is returned as it is.
WITH target AS (
    SELECT *
    FROM {schema}.workhorse_jobs
    WHERE id = %(id)s AND (%(tenant)s::text IS NULL OR tenant = %(tenant)s::text)
    FOR UPDATE
),
changed AS (
    UPDATE {schema}.workhorse_jobs AS j
    SET state = CASE WHEN t.state = 'running' THEN 'running' ELSE 'cancelled' END,
        cancel_requested = (t.state = 'running'),
        finished_at = CASE WHEN t.state = 'running' THEN NULL ELSE now() END
    FROM target AS t
    WHERE j.id = t.id AND t.state IN ('scheduled', 'queued', 'blocked', 'running')
    RETURNING j.*
)
SELECT * FROM changed
UNION ALL
SELECT * FROM target WHERE NOT EXISTS (SELECT 1 FROM changed)

-- name: retry_job
-- A failed or cancelled job goes back to the queue as if new, with one more attempt when
-- it had none left; any other state is reported (retried = false) and left alone.
WITH target AS (
    SELECT *
    FROM {schema}.workhorse_jobs
    WHERE id = %(id)s AND (%(tenant)s::text IS NULL OR tenant = %(tenant)s::text)
    FOR UPDATE
),
retried AS (
    UPDATE {schema}.workhorse_jobs AS j
    SET state = 'queued',
        run_at = coalesce(%(now)s::timestamptz, now()),
        max_attempts = greatest(j.max_attempts, j.attempt + 1),
        progress = 0,
        progress_message = NULL,
        result = NULL,
        error_type = NULL,
        error_message = NULL,
        error_traceback = NULL,
        worker_id = NULL,
        lease_token = NULL,
        lease_expires_at = NULL,
        cancel_requested = false,
        started_at = NULL,
        finished_at = NULL,
        expires_at = NULL
    FROM target AS t
    WHERE j.id = t.id AND t.state IN ('failed', 'cancelled')
      -- A workflow part runs only once everything it waits for has completed.
      AND NOT EXISTS (
          SELECT 1
          FROM {schema}.workhorse_job_deps AS d
          JOIN {schema}.workhorse_jobs AS p ON p.id = d.depends_on_id
          WHERE d.job_id = t.id AND p.state <> 'completed'
      )
    RETURNING j.*
),
notified AS (
    SELECT pg_notify({channel}, queue) FROM retried
)
SELECT true AS retried, * FROM retried WHERE (SELECT count(*) FROM notified) >= 0
UNION ALL
SELECT false AS retried, * FROM target WHERE NOT EXISTS (SELECT 1 FROM retried)

-- name: delete_job
WITH target AS (
    SELECT id, state
    FROM {schema}.workhorse_jobs
    WHERE id = %(id)s AND (%(tenant)s::text IS NULL OR tenant = %(tenant)s::text)
    FOR UPDATE
),
deleted AS (
    DELETE FROM {schema}.workhorse_jobs AS j
    USING target AS t
    WHERE j.id = t.id AND t.state IN ('completed', 'failed', 'cancelled')
    RETURNING j.id
)
SELECT t.state, EXISTS (SELECT 1 FROM deleted) AS deleted FROM target AS t


-- name: get_job
SELECT *
FROM {schema}.workhorse_jobs
WHERE id = %(id)s AND (%(tenant)s::text IS NULL OR tenant = %(tenant)s::text)

-- name: list_jobs
SELECT *
FROM {schema}.workhorse_jobs
WHERE {filter}
ORDER BY id DESC
LIMIT %(limit)s

-- name: count_jobs
SELECT count(*) AS count FROM {schema}.workhorse_jobs WHERE {filter}

-- Conditions of a job filter (where_<field>), joined with AND into the filter slot.

-- name: where_tenant
tenant = %(tenant)s

-- name: where_queue
queue = %(queue)s

-- name: where_states
state = ANY(%(states)s::text[])

-- name: where_task
task = %(task)s

-- name: where_label
labels @> %(label)s::jsonb

-- name: where_created_after
created_at > %(created_after)s

-- name: where_created_before
created_at < %(created_before)s

-- name: where_parent_id
parent_id = %(parent_id)s

-- name: where_before_id
id < %(before_id)s

-- name: next_due_in
-- Seconds until the first scheduled job is due, on the database clock; the first of
-- each queue is read off the index.
SELECT extract(epoch FROM min(first.run_at) - coalesce(%(now)s::timestamptz, now()))
           ::double precision AS due_in
FROM unnest(%(queues)s::text[]) AS q (queue)
CROSS JOIN LATERAL (
    SELECT run_at
    FROM {schema}.workhorse_jobs
    WHERE queue = q.queue AND state = 'scheduled'
    ORDER BY run_at
    LIMIT 1
) AS first

-- name: next_due_in_any_queue
SELECT extract(epoch FROM min(run_at) - coalesce(%(now)s::timestamptz, now()))
           ::double precision AS due_in
FROM {schema}.workhorse_jobs WHERE state = 'scheduled'

-- name: queue_stats
-- A scheduled job whose run_at has come is ready (any claim takes it): it counts as
-- queued, promoted or not, and so does its wait.
SELECT queue, shown AS state, count(*) AS count,
       min(run_at) FILTER (WHERE shown = 'queued') AS oldest_queued_at
FROM (
    SELECT queue, run_at,
           CASE WHEN state = 'scheduled' AND run_at <= coalesce(%(now)s::timestamptz, now())
                THEN 'queued' ELSE state END AS shown
    FROM {schema}.workhorse_jobs
    WHERE %(tenant)s::text IS NULL OR tenant = %(tenant)s::text
) AS jobs
GROUP BY queue, shown
ORDER BY queue, shown


-- name: reclaim_expired
-- A lost attempt stays counted: the job goes back to the queue, fails when it has no
-- attempt left, or ends cancelled when someone had asked to cancel it.
WITH expired AS (
    SELECT id
    FROM {schema}.workhorse_jobs
    WHERE state = 'running' AND lease_expires_at < coalesce(%(now)s::timestamptz, now())
    ORDER BY id
    FOR UPDATE SKIP LOCKED
),
reclaimed AS (
    UPDATE {schema}.workhorse_jobs AS j
    SET state = CASE WHEN j.cancel_requested THEN 'cancelled'
                     WHEN j.attempt >= j.max_attempts THEN 'failed'
                     ELSE 'queued' END,
        error_type = 'LeaseExpiredError',
        error_message = format(
            'worker %%s stopped renewing its lease on attempt %%s of %%s',
            coalesce(j.worker_id, '?'), j.attempt, j.max_attempts),
        error_traceback = NULL,
        finished_at = CASE WHEN j.cancel_requested OR j.attempt >= j.max_attempts
                           THEN coalesce(%(now)s::timestamptz, now()) END,
        expires_at = CASE WHEN j.cancel_requested OR j.attempt >= j.max_attempts
                          THEN coalesce(%(now)s::timestamptz, now())
                               + %(ttl)s::double precision * interval '1 second' END,
        lease_token = NULL,
        lease_expires_at = NULL
    FROM expired
    WHERE j.id = expired.id
    RETURNING j.id, j.state, j.queue, j.task, j.tenant
),
notified AS (
    SELECT pg_notify({channel}, queue)
    FROM (SELECT DISTINCT queue FROM reclaimed WHERE state = 'queued') AS due
)
SELECT id, state, queue, task, tenant
FROM reclaimed WHERE (SELECT count(*) FROM notified) >= 0 ORDER BY id

-- name: promote_scheduled
WITH due AS (
    SELECT id
    FROM {schema}.workhorse_jobs
    WHERE state = 'scheduled' AND run_at <= coalesce(%(now)s::timestamptz, now())
    ORDER BY id
    FOR UPDATE SKIP LOCKED
),
promoted AS (
    UPDATE {schema}.workhorse_jobs AS j
    SET state = 'queued'
    FROM due
    WHERE j.id = due.id
    RETURNING j.queue
),
notified AS (
    SELECT pg_notify({channel}, queue) FROM (SELECT DISTINCT queue FROM promoted) AS q
)
SELECT count(*) AS promoted FROM promoted WHERE (SELECT count(*) FROM notified) >= 0

-- name: prune_jobs
-- One batch reads about as many rows as it deletes, whatever the statistics say (none
-- yet, or taken before the backlog expired), so that pruning a large backlog costs per
-- batch, not per expired row. The scan carries only the index's own range condition:
-- a second condition (the state) multiplies in a guessed selectivity, and an estimate
-- below the LIMIT makes a scan and sort of every expired row look cheaper than walking
-- workhorse_jobs_expires in order. Only final jobs have an expires_at; the DELETE checks
-- the state all the same. The DELETE finds its rows by primary key (= ANY of an array):
-- joined to the CTE, it may hash the whole table instead.
WITH doomed AS (
    SELECT id
    FROM {schema}.workhorse_jobs
    WHERE expires_at <= coalesce(%(now)s::timestamptz, now())
    ORDER BY expires_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
),
deleted AS (
    DELETE FROM {schema}.workhorse_jobs
    WHERE id = ANY (ARRAY(SELECT id FROM doomed))
      AND state IN ('completed', 'failed', 'cancelled')
    RETURNING 1
)
SELECT count(*) AS deleted FROM deleted

-- name: purge_jobs
WITH deleted AS (
    DELETE FROM {schema}.workhorse_jobs
    WHERE state IN ('completed', 'failed', 'cancelled') AND {filter}
    RETURNING 1
)
SELECT count(*) AS deleted FROM deleted


-- name: leader_attempt_elect
-- The holder renews its term; anyone else takes over only once the term has run out.
INSERT INTO {schema}.workhorse_leader AS l (name, worker_id, elected_at, expires_at)
VALUES (
    'leader', %(worker_id)s, coalesce(%(now)s::timestamptz, now()),
    coalesce(%(now)s::timestamptz, now()) + %(ttl)s * interval '1 second'
)
ON CONFLICT (name) DO UPDATE
SET worker_id = excluded.worker_id,
    elected_at = CASE WHEN l.worker_id = excluded.worker_id THEN l.elected_at
                      ELSE excluded.elected_at END,
    expires_at = excluded.expires_at
WHERE l.worker_id = excluded.worker_id OR l.expires_at <= excluded.elected_at
RETURNING worker_id

-- name: leader_resign
DELETE FROM {schema}.workhorse_leader WHERE worker_id = %(worker_id)s


-- name: worker_register
INSERT INTO {schema}.workhorse_workers AS w (
    id, hostname, pid, queues, concurrency, meta, started_at, heartbeat_at
)
VALUES (
    %(id)s, %(hostname)s, %(pid)s, %(queues)s::jsonb, %(concurrency)s, %(meta)s::jsonb,
    now(), now()
)
ON CONFLICT (id) DO UPDATE
SET hostname = excluded.hostname,
    pid = excluded.pid,
    queues = excluded.queues,
    concurrency = excluded.concurrency,
    meta = excluded.meta,
    started_at = excluded.started_at,
    heartbeat_at = excluded.heartbeat_at,
    running = 0,
    stop_requested = false

-- name: worker_heartbeat
UPDATE {schema}.workhorse_workers
SET heartbeat_at = now(), running = %(running)s
WHERE id = %(id)s
RETURNING stop_requested

-- name: worker_deregister
DELETE FROM {schema}.workhorse_workers WHERE id = %(id)s

-- name: worker_list
SELECT * FROM {schema}.workhorse_workers ORDER BY started_at, id

-- name: worker_request_stop
WITH asked AS (
    UPDATE {schema}.workhorse_workers
    SET stop_requested = true
    WHERE %(id)s::text IS NULL OR id = %(id)s::text
    RETURNING 1
)
SELECT count(*) AS asked FROM asked

-- name: worker_prune
WITH pruned AS (
    DELETE FROM {schema}.workhorse_workers
    WHERE heartbeat_at < coalesce(%(now)s::timestamptz, now())
                         - %(older_than)s * interval '1 second'
    RETURNING 1
)
SELECT count(*) AS pruned FROM pruned


-- name: api_key_insert
-- API keys of the HTTP API and dashboard (migration 0002): only token hashes are stored.
INSERT INTO {schema}.workhorse_api_keys
    (id, key_hash, name, tenant, admin, read_only, created_at)
VALUES (%(id)s, %(key_hash)s, %(name)s, %(tenant)s, %(admin)s, %(read_only)s,
        coalesce(%(now)s::timestamptz, now()))
RETURNING id, key_hash, name, tenant, admin, read_only, created_at, revoked_at

-- name: api_key_get
SELECT id, key_hash, name, tenant, admin, read_only, created_at, revoked_at
FROM {schema}.workhorse_api_keys
WHERE key_hash = %(key_hash)s

-- name: api_key_list
SELECT id, key_hash, name, tenant, admin, read_only, created_at, revoked_at
FROM {schema}.workhorse_api_keys
WHERE %(include_revoked)s OR revoked_at IS NULL
ORDER BY created_at, id

-- name: api_key_revoke
UPDATE {schema}.workhorse_api_keys
SET revoked_at = coalesce(%(now)s::timestamptz, now())
WHERE id = %(key_id)s AND revoked_at IS NULL
RETURNING id

-- name: session_revoke
-- Ended dashboard sessions (migration 0006). Records of sessions expired by now go on
-- the way: the cookie is refused by then anyway.
WITH pruned AS (
    DELETE FROM {schema}.workhorse_session_revocations
    WHERE expires_at < coalesce(%(now)s::timestamptz, now())
)
INSERT INTO {schema}.workhorse_session_revocations (session_id, expires_at)
VALUES (%(session_id)s, %(expires_at)s)
ON CONFLICT (session_id) DO NOTHING

-- name: session_revoked
SELECT 1 AS revoked FROM {schema}.workhorse_session_revocations
WHERE session_id = %(session_id)s


-- ===== periodic jobs, limits and webhooks (issue 5, migration 0004) =====

-- name: schedule_states
SELECT name, registered_at, last_tick_at, last_job_id
FROM {schema}.workhorse_schedules
WHERE name = ANY(%(names)s::text[])

-- name: schedule_register
INSERT INTO {schema}.workhorse_schedules (name, registered_at)
SELECT name, coalesce(%(now)s::timestamptz, now()) FROM unnest(%(names)s::text[]) AS name
ON CONFLICT (name) DO NOTHING

-- name: cron_tick_reserve
-- A scheduler trying a tick that another has reserved waits here for that transaction,
-- then inserts nothing (and enqueues nothing).
INSERT INTO {schema}.workhorse_schedule_ticks (name, tick_at)
VALUES (%(name)s, %(tick_at)s)
ON CONFLICT DO NOTHING
RETURNING name

-- name: cron_tick_enqueued
WITH tick AS (
    UPDATE {schema}.workhorse_schedule_ticks
    SET job_id = %(job_id)s
    WHERE name = %(name)s AND tick_at = %(tick_at)s
)
INSERT INTO {schema}.workhorse_schedules AS s (name, registered_at, last_tick_at, last_job_id)
VALUES (%(name)s, now(), %(tick_at)s, %(job_id)s)
ON CONFLICT (name) DO UPDATE
SET last_tick_at = excluded.last_tick_at, last_job_id = excluded.last_job_id
WHERE s.last_tick_at IS NULL OR s.last_tick_at < excluded.last_tick_at

-- name: cron_prune_ticks
WITH pruned AS (
    DELETE FROM {schema}.workhorse_schedule_ticks WHERE tick_at < %(before)s RETURNING 1
)
SELECT count(*) AS pruned FROM pruned

-- name: limit_running
-- Running jobs per limited bucket: of the queues and tasks named, and of every limit
-- key (read off the limit index).
SELECT 'queue:' || queue AS bucket, count(*) AS count
FROM {schema}.workhorse_jobs
WHERE state = 'running' AND queue = ANY(%(queues)s::text[])
GROUP BY queue
UNION ALL
SELECT 'task:' || task, count(*)
FROM {schema}.workhorse_jobs
WHERE state = 'running' AND task = ANY(%(tasks)s::text[])
GROUP BY task
UNION ALL
SELECT 'key:' || limit_key, count(*)
FROM {schema}.workhorse_jobs
WHERE state = 'running' AND limit_key IS NOT NULL
GROUP BY limit_key

-- name: limit_started
SELECT bucket, count(*) AS count
FROM {schema}.workhorse_rate_windows
WHERE expires_at > coalesce(%(now)s::timestamptz, now())
GROUP BY bucket

-- name: limit_prune_starts
-- Rows another claim is deleting are skipped: concurrent claims never wait on each other.
DELETE FROM {schema}.workhorse_rate_windows
WHERE ctid IN (
    SELECT ctid FROM {schema}.workhorse_rate_windows
    WHERE expires_at <= coalesce(%(now)s::timestamptz, now())
    FOR UPDATE SKIP LOCKED
)

-- name: limit_lock_buckets
-- Try to take each bucket's lock (held until commit), in the order given; says which
-- were taken. Never waits, so claims taking buckets in different orders cannot deadlock.
SELECT bucket, pg_try_advisory_xact_lock(hashtextextended(%(prefix)s || bucket, 0)) AS taken
FROM unnest(%(buckets)s::text[]) WITH ORDINALITY AS b (bucket, ord)
ORDER BY ord

-- name: limit_room
-- For pick_waiting: leaves out the jobs of full buckets.
queue <> ALL(%(full_queues)s::text[])
AND task <> ALL(%(full_tasks)s::text[])
AND (limit_key IS NULL OR limit_key <> ALL(%(full_keys)s::text[]))

-- name: pick_ids
-- For claim_jobs: jobs a limited claim chose (and already locked).
SELECT unnest(%(picked)s::bigint[]) AS id

-- name: limit_record_starts
INSERT INTO {schema}.workhorse_rate_windows (bucket, started_at, expires_at)
SELECT bucket, coalesce(%(now)s::timestamptz, now()),
       coalesce(%(now)s::timestamptz, now()) + period * interval '1 second'
FROM unnest(%(buckets)s::text[], %(periods)s::double precision[]) AS s (bucket, period)

-- name: webhook_secret_set
INSERT INTO {schema}.workhorse_webhook_secrets AS s (tenant, secret, created_at)
VALUES (%(tenant)s, %(secret)s, coalesce(%(now)s::timestamptz, now()))
ON CONFLICT (tenant) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at

-- name: webhook_secret_get
SELECT secret FROM {schema}.workhorse_webhook_secrets WHERE tenant = %(tenant)s

-- name: webhook_delivery_insert
INSERT INTO {schema}.workhorse_webhook_deliveries (
    job_id, delivery_job_id, url, attempt, status_code, error, at
) VALUES (
    %(job_id)s, %(delivery_job_id)s, %(url)s, %(attempt)s, %(status_code)s, %(error)s,
    coalesce(%(now)s::timestamptz, now())
)

-- name: webhook_delivery_list
SELECT job_id, delivery_job_id, url, attempt, status_code, error, at
FROM {schema}.workhorse_webhook_deliveries
WHERE job_id = %(job_id)s
ORDER BY id

-- name: webhook_delivery_prune
WITH pruned AS (
    DELETE FROM {schema}.workhorse_webhook_deliveries WHERE at < %(before)s RETURNING 1
)
SELECT count(*) AS pruned FROM pruned


-- ===== workflows, dependencies, pipelines (issue 5, migration 0003) =====

-- name: workflow_lock_deps
-- The stored jobs a new workflow waits on, locked in id order and flagged: from here on
-- whoever ends one of them settles the new parts (the trigger of migration 0007), and
-- the states read are those after any end that was racing this insert.
WITH locked AS (
    SELECT id
    FROM {schema}.workhorse_jobs
    WHERE id = ANY(%(ids)s::bigint[])
    ORDER BY id
    FOR UPDATE
)
UPDATE {schema}.workhorse_jobs AS j
SET has_dependents = true
FROM locked
WHERE j.id = locked.id
RETURNING j.id, j.state, j.task, j.expires_at

-- name: workflow_insert
INSERT INTO {schema}.workhorse_workflows (name, tenant, on_failure, created_at)
VALUES (%(name)s, %(tenant)s, %(on_failure)s, coalesce(%(now)s::timestamptz, now()))
RETURNING id, created_at

-- name: workflow_insert_parts
-- insert_jobs' columns, with the state each part starts in (null: by its run time).
WITH input AS (
    SELECT nextval('{schema}.workhorse_jobs_id_seq') AS id, u.*
    FROM (
        SELECT *
        FROM unnest(
            %(task)s::text[], %(queue)s::text[], %(priority)s::integer[],
            %(args)s::text[], %(kwargs)s::text[], %(run_at)s::timestamptz[],
            %(delay)s::double precision[], %(max_attempts)s::integer[],
            %(timeout)s::double precision[], %(tenant)s::text[], %(labels)s::text[],
            %(parent_id)s::bigint[], %(meta)s::text[], %(state)s::text[],
            %(has_dependents)s::boolean[], %(error_type)s::text[], %(error_message)s::text[],
            %(expires_at)s::timestamptz[]
        ) WITH ORDINALITY AS u (
            task, queue, priority, args, kwargs, run_at, delay, max_attempts, timeout,
            tenant, labels, parent_id, meta, fixed_state, has_dependents, error_type,
            error_message, expires_at, ord
        )
        ORDER BY ord
    ) AS u
),
{@timed_input},
inserted AS (
    INSERT INTO {schema}.workhorse_jobs (
        id, task, queue, state, priority, args, kwargs, run_at, max_attempts, timeout,
        tenant, labels, parent_id, meta, created_at, workflow_id, has_dependents,
        error_type, error_message, finished_at, expires_at
    )
    SELECT id, task, queue, coalesce(fixed_state, due_state), priority, args::jsonb,
           kwargs::jsonb, due_at, max_attempts, timeout, tenant, labels::jsonb, parent_id,
           meta::jsonb, coalesce(%(now)s::timestamptz, now()), %(workflow_id)s, has_dependents,
           error_type, error_message,
           CASE WHEN error_type IS NOT NULL THEN coalesce(%(now)s::timestamptz, now()) END,
           expires_at
    FROM timed
    ORDER BY ord
    RETURNING id, state, queue
),
{@announce_inserted}
SELECT id, coalesce(fixed_state, due_state) AS state
FROM timed
WHERE (SELECT count(*) FROM notified) >= 0
ORDER BY ord

-- name: workflow_insert_deps
INSERT INTO {schema}.workhorse_job_deps (job_id, depends_on_id, ordinal)
SELECT * FROM unnest(%(job_ids)s::bigint[], %(depends_on_ids)s::bigint[], %(ordinals)s::integer[])

-- name: workflow_get
SELECT id, name, tenant, on_failure, created_at, cancelled_at
FROM {schema}.workhorse_workflows
WHERE id = %(id)s AND (%(tenant)s::text IS NULL OR tenant = %(tenant)s::text)

-- name: workflow_parts
SELECT * FROM {schema}.workhorse_jobs WHERE workflow_id = %(id)s ORDER BY id

-- name: workflow_edges
SELECT d.job_id, d.depends_on_id
FROM {schema}.workhorse_jobs AS j
JOIN {schema}.workhorse_job_deps AS d ON d.job_id = j.id
WHERE j.workflow_id = %(id)s
ORDER BY d.job_id, d.ordinal

-- name: workflow_cancel
-- The workflow is marked first (its own statement), so that the settling trigger leaves
-- its parts to this cancel; parts are locked in id order like every multi-row write.
WITH parts AS (
    SELECT id
    FROM {schema}.workhorse_jobs
    WHERE workflow_id = %(id)s AND state IN ('scheduled', 'queued', 'blocked', 'running')
    ORDER BY id
    FOR UPDATE
)
UPDATE {schema}.workhorse_jobs AS j
SET state = CASE WHEN j.state = 'running' THEN 'running' ELSE 'cancelled' END,
    cancel_requested = (j.state = 'running'),
    finished_at = CASE WHEN j.state = 'running' THEN NULL
                       ELSE coalesce(%(now)s::timestamptz, now()) END
FROM parts
WHERE j.id = parts.id AND j.state IN ('scheduled', 'queued', 'blocked', 'running')

-- name: workflow_mark_cancelled
UPDATE {schema}.workhorse_workflows
SET cancelled_at = coalesce(cancelled_at, coalesce(%(now)s::timestamptz, now()))
WHERE id = %(id)s AND (%(tenant)s::text IS NULL OR tenant = %(tenant)s::text)
RETURNING id

-- name: job_dependencies
SELECT d.depends_on_id AS id, j.state, j.task, j.result
FROM {schema}.workhorse_job_deps AS d
LEFT JOIN {schema}.workhorse_jobs AS j ON j.id = d.depends_on_id
WHERE d.job_id = %(job_id)s
ORDER BY d.ordinal

-- name: job_waiting_on
-- The first dependency of a job that exists and has not completed (a retry must wait).
SELECT d.depends_on_id AS id, p.state
FROM {schema}.workhorse_job_deps AS d
JOIN {schema}.workhorse_jobs AS p ON p.id = d.depends_on_id
WHERE d.job_id = %(job_id)s AND p.state <> 'completed'
ORDER BY d.ordinal
LIMIT 1

-- name: job_set_meta
UPDATE {schema}.workhorse_jobs
SET meta = jsonb_set(meta, ARRAY[%(key)s::text], %(value)s::jsonb)
WHERE id = %(job_id)s AND lease_token = %(lease_token)s AND state = 'running'
RETURNING id


-- ===== job statistics (metrics and throughput, migration 0005) =====
-- Rows are written in key order, so that processes adding at the same time lock them in
-- the same order and never deadlock.

-- name: stats_count_add
INSERT INTO {schema}.workhorse_job_counts AS c (minute, tenant, queue, task, event, count)
SELECT *
FROM unnest(
    %(minutes)s::bigint[], %(tenants)s::text[], %(queues)s::text[], %(tasks)s::text[],
    %(events)s::text[], %(counts)s::bigint[]
) AS r (minute, tenant, queue, task, event, count)
ORDER BY minute, tenant, queue, task, event
ON CONFLICT (minute, tenant, queue, task, event) DO UPDATE SET count = c.count + excluded.count

-- name: stats_run_time_add
INSERT INTO {schema}.workhorse_job_run_times AS h (queue, task, le, count, seconds)
SELECT *
FROM unnest(
    %(queues)s::text[], %(tasks)s::text[], %(les)s::float8[], %(counts)s::bigint[],
    %(seconds)s::float8[]
) AS r (queue, task, le, count, seconds)
ORDER BY queue, task, le
ON CONFLICT (queue, task, le) DO UPDATE
SET count = h.count + excluded.count, seconds = h.seconds + excluded.seconds

-- name: stats_totals
SELECT queue, task, event, sum(count)::bigint AS count
FROM {schema}.workhorse_job_counts
WHERE minute = 0
GROUP BY queue, task, event
ORDER BY queue, task, event

-- name: stats_run_times
SELECT queue, task, le, count, seconds
FROM {schema}.workhorse_job_run_times
ORDER BY queue, task, le

-- name: stats_timeline
SELECT minute, event, sum(count)::bigint AS count
FROM {schema}.workhorse_job_counts
WHERE minute >= %(since)s AND minute > 0
  AND (%(tenant)s::text IS NULL OR tenant = %(tenant)s::text)
GROUP BY minute, event
ORDER BY minute, event

-- name: stats_prune
WITH pruned AS (
    DELETE FROM {schema}.workhorse_job_counts
    WHERE minute > 0 AND minute < %(before)s
    RETURNING 1
)
SELECT count(*) AS pruned FROM pruned
