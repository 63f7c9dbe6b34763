-- The same, joined with each user's latest snapshot only.
SELECT u.country, count(*) AS purchases, sum(e.amount) AS spent
FROM 'data/events.parquet' e
JOIN (SELECT user_id, arg_max(country, snapshot) AS country
      FROM 'data/user_snapshots.parquet' GROUP BY user_id) u USING (user_id)
GROUP BY u.country
ORDER BY u.country;
