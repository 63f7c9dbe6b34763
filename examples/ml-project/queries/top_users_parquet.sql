-- The 10 biggest spenders of the last quarter, from the Parquet copy.
SELECT user_id, count(*) AS purchases, round(sum(amount), 2) AS spent
FROM read_parquet('queries/events.parquet')
WHERE ts >= TIMESTAMP '2026-10-01'
GROUP BY user_id
ORDER BY spent DESC
LIMIT 10;
