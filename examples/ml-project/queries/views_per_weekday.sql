-- Page views per weekday: three million rows scanned on every run for seven (`sample`).
SELECT day % 7 AS weekday, count(*) AS views
FROM 'data/views.parquet'
GROUP BY weekday
ORDER BY weekday;
