-- looptop history, schema version 8: per-thread CPU. Each sample keeps the busiest threads of the
-- tree's busiest processes and of the job's main process (whose main thread consumes what loader
-- threads and worker processes produce).
CREATE TABLE thread_samples (
    run_id        UUID NOT NULL,
    t_ms          DOUBLE NOT NULL,
    pid           INTEGER NOT NULL,
    tid           INTEGER NOT NULL,
    -- The kernel's name of the thread (`comm`): `loader`, `pt_main_thread`, `python3`.
    name          VARCHAR,
    -- % of one core.
    cpu_pct       DOUBLE,
    -- Time runnable but waiting for a CPU, in % of the interval (NULL on a first reading).
    run_queue_pct DOUBLE,
    -- Whether `pid` is the job's main process.
    main_process  BOOLEAN
);
-- The verdict's evidence of a consumer waiting for its producer.
ALTER TABLE runs ADD COLUMN consumer_wait_pct DOUBLE;
ALTER TABLE runs ADD COLUMN producer_kind VARCHAR;
ALTER TABLE runs ADD COLUMN producer_name VARCHAR;
