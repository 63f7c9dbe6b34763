-- looptop history, schema version 2: what the sampler reads (the process tree, the host and
-- each GPU) and each run's usage summary.

-- The run's process tree (cpu_pct and rss_bytes are the tree's sums) and the host.
ALTER TABLE samples ADD COLUMN processes INTEGER;
ALTER TABLE samples ADD COLUMN threads INTEGER;
ALTER TABLE samples ADD COLUMN busiest_pid INTEGER;
ALTER TABLE samples ADD COLUMN busiest_name VARCHAR;
-- CPU of the tree's busiest process, in % of one core.
ALTER TABLE samples ADD COLUMN busiest_cpu_pct DOUBLE;
ALTER TABLE samples ADD COLUMN read_bytes_per_s DOUBLE;
ALTER TABLE samples ADD COLUMN write_bytes_per_s DOUBLE;
-- Busy share of all cores together, and of the busiest core, 0-100.
ALTER TABLE samples ADD COLUMN host_cpu_pct DOUBLE;
ALTER TABLE samples ADD COLUMN host_core_max_pct DOUBLE;
ALTER TABLE samples ADD COLUMN host_cores INTEGER;
ALTER TABLE samples ADD COLUMN host_mem_used_bytes BIGINT;
ALTER TABLE samples ADD COLUMN host_mem_total_bytes BIGINT;
ALTER TABLE samples ADD COLUMN host_swap_used_bytes BIGINT;
ALTER TABLE samples ADD COLUMN load_1m DOUBLE;

-- One row per GPU per sample. NULL is "could not be read", never 0.
CREATE TABLE gpu_samples (
    run_id          UUID NOT NULL,
    t_ms            DOUBLE NOT NULL,
    gpu             INTEGER NOT NULL,
    util_pct        INTEGER,
    mem_util_pct    INTEGER,
    mem_used_bytes  BIGINT,
    mem_total_bytes BIGINT,
    power_mw        INTEGER,
    temp_c          INTEGER,
    sm_clock_mhz    INTEGER,
    -- A process of the run held a context on this GPU.
    job_present     BOOLEAN,
    job_mem_bytes   BIGINT,
    job_sm_pct      INTEGER
);

-- The run's usage summary (peak_rss_bytes is in schema 1).
ALTER TABLE runs ADD COLUMN samples INTEGER;
ALTER TABLE runs ADD COLUMN cpu_mean_pct DOUBLE;
ALTER TABLE runs ADD COLUMN cpu_p95_pct DOUBLE;
ALTER TABLE runs ADD COLUMN gpu_util_mean_pct DOUBLE;
ALTER TABLE runs ADD COLUMN gpu_mem_peak_bytes BIGINT;
ALTER TABLE runs ADD COLUMN gpu_on_fraction DOUBLE;
