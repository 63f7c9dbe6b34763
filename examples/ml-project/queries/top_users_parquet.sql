-- The same from the Parquet copy: only the three columns it uses are read.
SELECT user_id, count(*) AS purchases, sum(amount) AS spent
FROM read_parquet('data/events.parquet')
WHERE ts >= TIMESTAMP '2026-10-01'
GROUP BY user_id
ORDER BY spent DESC
LIMIT 10;
