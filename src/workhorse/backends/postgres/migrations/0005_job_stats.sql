-- workhorse schema, version 5: job statistics for metrics and throughput.
-- {schema} and {channel} are replaced when the migration is applied or printed.

-- How many jobs went through each event (enqueued, started, completed, retried, failed,
-- cancelled), per minute and in all: minute is the epoch second the minute starts at,
-- 0 for the all-time total that every write raises along with its minute. Processes
-- add what they counted about once a second; pruning drops old minutes, never totals.
CREATE TABLE {schema}.workhorse_job_counts (
    minute bigint NOT NULL,
    tenant text NOT NULL,  -- '' for jobs without a tenant
    queue  text NOT NULL,
    task   text NOT NULL,
    event  text NOT NULL,
    count  bigint NOT NULL,
    PRIMARY KEY (minute, tenant, queue, task, event)
);

-- The run-time histogram: attempts that ran at most le seconds (and more than the
-- bucket below), and their run time summed.
CREATE TABLE {schema}.workhorse_job_run_times (
    queue   text NOT NULL,
    task    text NOT NULL,
    le      double precision NOT NULL,  -- 'Infinity' for the last bucket
    count   bigint NOT NULL,
    seconds double precision NOT NULL,
    PRIMARY KEY (queue, task, le)
);
