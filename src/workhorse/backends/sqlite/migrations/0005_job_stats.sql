-- workhorse schema, version 5 (SQLite): job statistics for metrics and throughput.

-- How many jobs went through each event (enqueued, started, completed, retried, failed,
-- cancelled), per minute and in all: minute is the epoch second the minute starts at,
-- 0 for the all-time total that every write raises along with its minute. Processes
-- add what they counted about once a second; pruning drops old minutes, never totals.
CREATE TABLE workhorse_job_counts (
    minute  INTEGER NOT NULL,
    tenant  TEXT NOT NULL,  -- '' for jobs without a tenant
    queue   TEXT NOT NULL,
    task    TEXT NOT NULL,
    event   TEXT NOT NULL,
    count   INTEGER NOT NULL,
    PRIMARY KEY (minute, tenant, queue, task, event)
) WITHOUT ROWID;

-- The run-time histogram: attempts that ran at most le seconds (and more than the
-- bucket below), and their run time summed.
CREATE TABLE workhorse_job_run_times (
    queue    TEXT NOT NULL,
    task     TEXT NOT NULL,
    le       REAL NOT NULL,  -- Inf for the last bucket
    count    INTEGER NOT NULL,
    seconds  REAL NOT NULL,
    PRIMARY KEY (queue, task, le)
) WITHOUT ROWID;
