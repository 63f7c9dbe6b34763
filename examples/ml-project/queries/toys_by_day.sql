-- Daily toy sales from files split by day: the filter is not on the partition key, so
-- every file is read (`no-pruning`).
SELECT day, sum(amount) AS spent
FROM read_parquet('data/by_day/*/*.parquet')
WHERE category = 'toys'
GROUP BY day
ORDER BY day;
