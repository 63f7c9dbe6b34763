-- looptop history, schema version 3: each run's diagnosis (the verdict with its evidence, and
-- a duration regression against the job's recent passing runs).
ALTER TABLE runs ADD COLUMN verdict VARCHAR;
ALTER TABLE runs ADD COLUMN verdict_cause VARCHAR;
ALTER TABLE runs ADD COLUMN verdict_summary VARCHAR;
ALTER TABLE runs ADD COLUMN gpu_busy_pct DOUBLE;
ALTER TABLE runs ADD COLUMN time_to_gpu_ms DOUBLE;
ALTER TABLE runs ADD COLUMN stalls INTEGER;
ALTER TABLE runs ADD COLUMN stall_ms DOUBLE;
ALTER TABLE runs ADD COLUMN hints VARCHAR[];
-- slower | faster | NULL
ALTER TABLE runs ADD COLUMN regression VARCHAR;
ALTER TABLE runs ADD COLUMN regression_ratio DOUBLE;
ALTER TABLE runs ADD COLUMN baseline_ms DOUBLE;
