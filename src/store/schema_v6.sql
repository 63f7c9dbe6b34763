-- looptop history, schema version 6: hints have stable ids. `hints` now holds the text of every
-- hint of a run (the verdict's, then a query's) and `hint_ids` their ids, in the same order.
ALTER TABLE runs ADD COLUMN hint_ids VARCHAR[];
-- Rows written before kept only the verdict's hint texts: their ids are told from the words,
-- which the hints of those versions always used.
UPDATE runs SET hint_ids = list_transform(hints, lambda h: CASE
    WHEN h LIKE '%num_workers%' THEN 'more-workers'
    WHEN h LIKE '%waits on disk reads%' THEN 'cache-or-prefetch'
    WHEN h LIKE '%the batch could grow%' THEN 'batch-could-grow'
    WHEN h LIKE '%other work kept the CPUs busy%' THEN 'busy-machine'
    WHEN h LIKE '%never touched the GPU%' THEN 'model-not-on-gpu'
    WHEN h LIKE '%no parallelism%' THEN 'no-parallelism'
    WHEN h LIKE '%start-up dominates%' THEN 'startup-dominates'
    ELSE 'unknown' END)
WHERE hints IS NOT NULL;
