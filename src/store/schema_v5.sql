-- looptop history, schema version 5: time the job's threads spent runnable but waiting for a
-- CPU (the kernel's run-queue delay), in % of one thread: per sample, and its mean per run.
ALTER TABLE samples ADD COLUMN run_queue_delay_pct DOUBLE;
ALTER TABLE runs ADD COLUMN run_queue_delay_pct DOUBLE;
-- How many passing runs a regression was measured against (with regression_ratio and
-- baseline_ms, the regression's line can be told again from the history).
ALTER TABLE runs ADD COLUMN baseline_runs INTEGER;
