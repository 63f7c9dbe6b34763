-- The 10 biggest spenders of the last quarter, from the CSV copy (`columnar`).
SELECT user_id, count(*) AS purchases, sum(amount) AS spent
FROM read_csv('data/events.csv')
WHERE ts >= TIMESTAMP '2026-10-01'
GROUP BY user_id
ORDER BY spent DESC
LIMIT 10;
