-- The same from files split by category: one file of five is read.
SELECT day, sum(amount) AS spent
FROM read_parquet('data/by_category/*/*.parquet')
WHERE category = 'toys'
GROUP BY day
ORDER BY day;
