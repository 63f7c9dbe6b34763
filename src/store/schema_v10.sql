-- looptop history, schema version 10: where each run's Python time went, from the profiler's
-- stack samples. `runs.profile_samples` is how many samples a run's shares are of (NULL: not
-- profiled). Runs written before have no rows here.
ALTER TABLE runs ADD COLUMN profile_samples INTEGER;

-- The lines the run's threads were found at most (the innermost frame of each stack).
CREATE TABLE frames (
    run_id     UUID NOT NULL,
    -- 1 for the running line with the largest share (running lines first, then idle ones)
    rank       INTEGER NOT NULL,
    function   VARCHAR NOT NULL,
    -- relative to the project root inside it, else the library's own path
    file       VARCHAR NOT NULL,
    line       INTEGER NOT NULL,
    -- share of the samples in which a thread was at this line, in %
    share_pct  DOUBLE NOT NULL,
    -- the thread was waiting there, not running
    idle       BOOLEAN NOT NULL,
    -- the project's own pure-Python code (the evidence of `python-loop`)
    own_python BOOLEAN NOT NULL
);

-- The run's Python threads: how much of the run each ran, and where it waited most.
CREATE TABLE profile_threads (
    run_id   UUID NOT NULL,
    -- 1 for the most active
    rank     INTEGER NOT NULL,
    name     VARCHAR NOT NULL,
    cpu_pct  DOUBLE NOT NULL,
    idle_pct DOUBLE NOT NULL,
    waits_in VARCHAR
);
