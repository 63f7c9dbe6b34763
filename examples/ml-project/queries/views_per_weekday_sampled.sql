-- The same on the sampled copy, while iterating on the query.
SELECT day % 7 AS weekday, count(*) AS views
FROM 'data/views_sample.parquet'
GROUP BY weekday
ORDER BY weekday;
