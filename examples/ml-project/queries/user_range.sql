-- Purchases of a range of users, from events in time order: every row group holds every
-- user, so the filter skips none (`no-pruning`).
SELECT count(*) AS purchases, sum(amount) AS spent
FROM 'data/events.parquet'
WHERE user_id BETWEEN 1000 AND 1999;
