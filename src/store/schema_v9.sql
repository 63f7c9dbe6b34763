-- looptop history, schema version 9: per-test results of test jobs (pytest through looptop's plugin, or any
-- runner's JUnit XML), one row per test per run, and each run's test summary.
CREATE TABLE test_cases (
    run_id           UUID NOT NULL,
    -- The runner's id: pytest's node id, or JUnit's classname::name.
    nodeid           VARCHAR NOT NULL,
    -- The test's file, relative to the project root, when known.
    file             VARCHAR,
    -- passed | failed | error | skipped | xfailed | xpassed
    outcome          VARCHAR NOT NULL,
    -- pytest: setup, call and teardown together; JUnit: `time`.
    duration_ms      DOUBLE,
    -- The first line of what went wrong, for a failure or error.
    message          VARCHAR,
    -- Its place in the run, from 0, in the order the runner reported.
    position         INTEGER,
    -- Set when it was flagged slower than its recent passing runs.
    regression_ratio DOUBLE,
    baseline_ms      DOUBLE,
    -- Whether the run's changes reached the test's file (NULL: looptop could not tell).
    affected         BOOLEAN,
    -- When its result was known, in ms after the run's start (pytest; NULL for JUnit XML).
    finished_ms      DOUBLE
);
-- Which tests a test job's run ran: full | first | only (NULL for other jobs). `only` runs are
-- never compared with whole-suite runs for regressions.
ALTER TABLE runs ADD COLUMN test_selection VARCHAR;
-- run_finished.tests as JSON text (without the per-test rows, which are in test_cases).
ALTER TABLE runs ADD COLUMN tests VARCHAR;
