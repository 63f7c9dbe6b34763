-- looptop history, schema version 4: query jobs' profiles and each run's metric summary.
ALTER TABLE runs ADD COLUMN query_rows BIGINT;
ALTER TABLE runs ADD COLUMN query_ms DOUBLE;
-- The profile summary as JSON text: operators (name, ms, rows), text_scans, hints.
ALTER TABLE runs ADD COLUMN query_profile VARCHAR;
-- Each metric's last value, mean and count, as JSON text (the values are in `metrics`).
ALTER TABLE runs ADD COLUMN metric_summary VARCHAR;
