-- The same from a copy sorted by user: the row groups' min/max skip all but one.
SELECT count(*) AS purchases, sum(amount) AS spent
FROM 'data/events_by_user.parquet'
WHERE user_id BETWEEN 1000 AND 1999;
