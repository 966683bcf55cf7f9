-- workhorse schema, version 7 (SQLite): a part waiting on a job is never settled before
-- it existed.

-- As in 0003, but the time a part is settled at is the end of the job it waited for,
-- never earlier than the part's own creation. The writer that ends a job stamps it with
-- the time it read when it was called, and another process may have inserted a part
-- waiting on that job in between (with a later clock): the part was then released with
-- a run_at "in the future" by a few microseconds, as scheduled instead of queued. A part
-- is due when released if its run_at is not past that time, so a part without a delay
-- is always queued, whichever clock ran ahead. (Every commit wakes the workers watching
-- the file, so a part released for later needs no announcement of its own.)
DROP TRIGGER workhorse_jobs_settle_dependents;
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
