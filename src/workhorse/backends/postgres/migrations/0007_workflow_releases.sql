-- workhorse schema, version 7: a part waiting on a job is never settled before it
-- existed, and a part released for later announces itself.
-- {schema}, {channel} and {next_channel} are replaced when the migration is applied or
-- printed.

-- As in 0003, with two changes.
--
-- The time a part is settled at is the end of the job it waited for, but never earlier
-- than the part's own creation. The statement that ends a job stamps it with its own
-- clock (its transaction's start, or the caller's now), and it may have waited for the
-- lock of a workflow insert that started after it: the part, inserted with that later
-- clock, was then released with a run_at "in the future" by a few microseconds, as
-- scheduled instead of queued. A part is due when released if its run_at is not past
-- that time, so a part without a delay is always queued, whichever clock ran ahead.
--
-- A release notifies once per queue, on {channel} when a part of that queue is
-- claimable now, else on {next_channel} (as an insert does), so that idle workers look
-- again when a part released for later is due instead of at their next poll.
CREATE OR REPLACE FUNCTION {schema}.workhorse_settle_dependents() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ended_at timestamptz := coalesce(NEW.finished_at, now());
    due_queue text;
    due_channel text;
BEGIN
    PERFORM 1
    FROM {schema}.workhorse_jobs AS j
    WHERE j.id IN (SELECT d.job_id FROM {schema}.workhorse_job_deps AS d
                   WHERE d.depends_on_id = NEW.id)
    ORDER BY j.id
    FOR UPDATE;

    IF NEW.state = 'completed' THEN
        FOR due_queue, due_channel IN
        WITH released AS (
            UPDATE {schema}.workhorse_jobs AS j
            SET state = CASE WHEN j.run_at > greatest(ended_at, j.created_at)
                             THEN 'scheduled' ELSE 'queued' END
            WHERE j.state = 'blocked'
              AND j.id IN (SELECT d.job_id FROM {schema}.workhorse_job_deps AS d
                           WHERE d.depends_on_id = NEW.id)
              AND NOT EXISTS (
                  SELECT 1
                  FROM {schema}.workhorse_job_deps AS d
                  JOIN {schema}.workhorse_jobs AS p ON p.id = d.depends_on_id
                  WHERE d.job_id = j.id AND p.state <> 'completed'
              )
            RETURNING j.queue, j.state
        )
        SELECT queue,
               CASE WHEN bool_or(state = 'queued') THEN {channel} ELSE {next_channel} END
        FROM released
        GROUP BY queue
        LOOP
            PERFORM pg_notify(due_channel, due_queue);
        END LOOP;
        RETURN NULL;
    END IF;

    WITH RECURSIVE downstream (id, via) AS (
        SELECT d.job_id, NULL::bigint
        FROM {schema}.workhorse_job_deps AS d
        JOIN {schema}.workhorse_jobs AS j ON j.id = d.job_id
        WHERE d.depends_on_id = NEW.id AND j.state = 'blocked'
        UNION
        SELECT d.job_id, d.depends_on_id
        FROM downstream AS r
        JOIN {schema}.workhorse_job_deps AS d ON d.depends_on_id = r.id
        JOIN {schema}.workhorse_jobs AS j ON j.id = d.job_id
        WHERE j.state = 'blocked'
    ),
    reached AS (
        -- One way in per job, the direct one first.
        SELECT DISTINCT ON (id) id, via FROM downstream ORDER BY id, via NULLS FIRST
    ),
    doomed AS (
        SELECT j.id
        FROM {schema}.workhorse_jobs AS j
        JOIN reached AS r ON r.id = j.id
        ORDER BY j.id
        FOR UPDATE OF j
    )
    UPDATE {schema}.workhorse_jobs AS j
    SET state = CASE WHEN (SELECT w.on_failure FROM {schema}.workhorse_workflows AS w
                           WHERE w.id = j.workflow_id) = 'cancel'
                     THEN 'cancelled' ELSE 'failed' END,
        error_type = 'DependencyFailedError',
        error_message = CASE WHEN r.via IS NULL THEN 'dependency '
                             ELSE 'dependency job ' || r.via || ' did not run: upstream '
                        END
                        || 'job ' || NEW.id || ' (' || NEW.task || ') ended ' || NEW.state,
        error_traceback = NULL,
        finished_at = greatest(ended_at, j.created_at),
        expires_at = NEW.expires_at
    FROM doomed
    JOIN reached AS r ON r.id = doomed.id
    WHERE j.id = doomed.id
      AND j.state = 'blocked'
      AND NOT EXISTS (
          SELECT 1 FROM {schema}.workhorse_workflows AS w
          WHERE w.id = j.workflow_id AND w.cancelled_at IS NOT NULL
      );
    RETURN NULL;
END
$$;
