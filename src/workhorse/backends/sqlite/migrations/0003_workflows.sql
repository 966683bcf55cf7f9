-- workhorse schema, version 3 (SQLite): workflows (jobs that wait for other jobs), and
-- unique keys held in chosen states.

-- The workflow a job is a part of; whether other jobs wait for it (only such jobs wake
-- the trigger below); the states in which it holds its unique key, as bits: scheduled 1,
-- queued 2, blocked 4, running 8, completed 16, failed 32, cancelled 64. The live states
-- (15) are always in.
ALTER TABLE workhorse_jobs ADD COLUMN workflow_id INTEGER;
ALTER TABLE workhorse_jobs ADD COLUMN has_dependents INTEGER NOT NULL DEFAULT 0;
ALTER TABLE workhorse_jobs ADD COLUMN unique_states INTEGER NOT NULL DEFAULT 15;

CREATE TABLE workhorse_workflows (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT,
    tenant        TEXT,
    on_failure    TEXT NOT NULL DEFAULT 'fail' CHECK (on_failure IN ('fail', 'cancel')),
    created_at    REAL NOT NULL,
    cancelled_at  REAL
);

-- job_id waits for depends_on_id; ordinal keeps the order the dependencies were given.
-- Looked up both ways: a job's dependencies (the key), a job's dependents (the index).
CREATE TABLE workhorse_job_deps (
    job_id         INTEGER NOT NULL,
    depends_on_id  INTEGER NOT NULL,
    ordinal        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, depends_on_id)
) WITHOUT ROWID;
CREATE INDEX workhorse_job_deps_depends_on_idx ON workhorse_job_deps (depends_on_id, job_id);

CREATE INDEX workhorse_jobs_workflow_idx
    ON workhorse_jobs (workflow_id, id)
    WHERE workflow_id IS NOT NULL;

-- A unique key is held while its job is in one of its unique states.
DROP INDEX workhorse_jobs_unique_key_idx;
CREATE UNIQUE INDEX workhorse_jobs_unique_key_idx
    ON workhorse_jobs (unique_key)
    WHERE unique_key IS NOT NULL
      AND (unique_states & CASE state
                               WHEN 'scheduled' THEN 1 WHEN 'queued' THEN 2
                               WHEN 'blocked' THEN 4 WHEN 'running' THEN 8
                               WHEN 'completed' THEN 16 WHEN 'failed' THEN 32
                               WHEN 'cancelled' THEN 64 ELSE 0 END) <> 0;

-- A job others wait for just ended, whichever statement ended it (an outcome, a cancel,
-- a lease that expired on the last attempt, a workflow's cancel, this trigger): in the
-- same transaction, a completed job releases each waiting job whose dependencies have
-- all completed (a deleted dependency holds nobody back); a failed or cancelled one ends
-- every blocked job downstream of it, as the workflow of that job says (on_failure),
-- except the parts of a workflow being cancelled, which its cancel ends itself. Jobs
-- without dependents are settled by the first comparison.
CREATE TRIGGER workhorse_jobs_settle_dependents
AFTER UPDATE OF state ON workhorse_jobs
WHEN NEW.has_dependents
 AND NEW.state IN ('completed', 'failed', 'cancelled')
 AND OLD.state NOT IN ('completed', 'failed', 'cancelled')
BEGIN
    UPDATE workhorse_jobs
    SET state = CASE WHEN run_at > NEW.finished_at THEN 'scheduled' ELSE 'queued' END
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
        finished_at = NEW.finished_at,
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

-- The parts of a workflow are forgotten with the workflow once the last one is deleted.
CREATE TRIGGER workhorse_jobs_forget_part
AFTER DELETE ON workhorse_jobs
WHEN OLD.workflow_id IS NOT NULL
BEGIN
    DELETE FROM workhorse_job_deps WHERE job_id = OLD.id;
    DELETE FROM workhorse_workflows
    WHERE id = OLD.workflow_id
      AND NOT EXISTS (SELECT 1 FROM workhorse_jobs WHERE workflow_id = OLD.workflow_id);
END;
