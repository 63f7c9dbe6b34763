-- looptop history, schema version 11: the data files each run's processes read (seen through
-- their open descriptors while the run was sampled), and the local cluster in its process tree.
-- Runs written before have no rows here and NULL cluster columns.
CREATE TABLE files_read (
    run_id        UUID NOT NULL,
    -- 1 for the file open longest (then by bytes read)
    rank          INTEGER NOT NULL,
    -- relative to the project root inside it, else absolute
    path          VARCHAR NOT NULL,
    -- csv | json | parquet | arrow | npy | pickle | hdf5 | avro | orc (from the name)
    format        VARCHAR NOT NULL,
    -- bytes read through its descriptors, as far as the samples saw
    bytes         BIGINT NOT NULL,
    size_bytes    BIGINT NOT NULL,
    -- share of the run's samples in which a process of the run had it open, in %
    open_pct      DOUBLE NOT NULL,
    -- when it was first seen open, in ms after the run's start
    first_open_ms DOUBLE NOT NULL
);
-- The local cluster (NULL without one): dask | spark | ray, its most workers at once, the time
-- from the run's start to its workers' first real work (the whole run when they never worked),
-- whether they worked, and the size of the data files the run read.
ALTER TABLE runs ADD COLUMN cluster_engine VARCHAR;
ALTER TABLE runs ADD COLUMN cluster_workers INTEGER;
ALTER TABLE runs ADD COLUMN cluster_startup_ms DOUBLE;
ALTER TABLE runs ADD COLUMN cluster_worked BOOLEAN;
ALTER TABLE runs ADD COLUMN input_bytes BIGINT;
