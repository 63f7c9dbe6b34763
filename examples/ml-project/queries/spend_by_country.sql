-- Spend per country, joined with user profiles kept as monthly snapshots: each user three
-- times, so every purchase counts three times (`join-fan-out`, under the GROUP BY).
SELECT u.country, count(*) AS purchases, sum(e.amount) AS spent
FROM 'data/events.parquet' e
JOIN 'data/user_snapshots.parquet' u USING (user_id)
GROUP BY u.country
ORDER BY u.country;
