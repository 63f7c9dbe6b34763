-- Feature summary from the file as the pipeline wrote it: whole numbers as DOUBLE, quarters
-- as DOUBLE (`narrow-types`).
SELECT tier, count(*) AS items, avg(clicks) AS clicks, avg(score) AS score, max(item_id) AS last_item
FROM 'data/features_wide.parquet'
GROUP BY tier
ORDER BY tier;
