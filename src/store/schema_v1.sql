-- looptop history, schema version 1. Later versions add columns with ALTER TABLE in new files.

-- One row per run: written as 'running' when it starts and completed when it ends.
CREATE TABLE runs (
    run_id          UUID PRIMARY KEY,
    job             VARCHAR NOT NULL,
    command         VARCHAR NOT NULL,
    kind            VARCHAR NOT NULL,
    started_at      TIMESTAMPTZ NOT NULL,
    duration_ms     DOUBLE,
    exit_code       INTEGER,
    signal          VARCHAR,
    -- running | pass | fail | killed | timeout | interrupted
    outcome         VARCHAR NOT NULL,
    cpu_user_ms     DOUBLE,
    cpu_sys_ms      DOUBLE,
    peak_rss_bytes  BIGINT,
    trigger_files   VARCHAR[] NOT NULL,
    git_commit      VARCHAR,
    git_dirty       BOOLEAN,
    host            VARCHAR NOT NULL,
    looptop_version VARCHAR NOT NULL,
    log_path        VARCHAR,
    -- "host:pid:start-ticks" of the looptop recording the run: tells a crash from a live run.
    recorder        VARCHAR
);

-- Resource readings during a run, at t_ms after its start (appended in batches).
CREATE TABLE samples (
    run_id    UUID NOT NULL,
    t_ms      DOUBLE NOT NULL,
    cpu_pct   DOUBLE,
    rss_bytes BIGINT
);

-- Numbers parsed from a run's output (loss, accuracy, rows/s), at t_ms after its start.
CREATE TABLE metrics (
    run_id UUID NOT NULL,
    name   VARCHAR NOT NULL,
    t_ms   DOUBLE,
    value  DOUBLE NOT NULL
);
